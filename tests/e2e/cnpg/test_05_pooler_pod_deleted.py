"""Scenario 4, a PgBouncer pod deleted under write load: the API's
connections to it end, the Service sends new ones to the other pod, the
Deployment replaces it. The writer follows Retry-After (same key)."""

from __future__ import annotations

import pytest

from tests.e2e.cnpg.conftest import Release, Writer
from tests.e2e.cnpg.writer import analyse


@pytest.mark.usefixtures("steady_api")
def test_pooler_pod_deleted_under_write_load_loses_nothing(cnpg: Release, writer: Writer) -> None:
    cnpg.wait_healthy()
    victim = sorted(cnpg.pooler_pods())[0]
    api_before = cnpg.api_restarts()

    run, deleted_at = cnpg.write_through(
        writer, "pooler", duration=40,
        fault=lambda: cnpg.kubectl("delete", "pod", victim, "--wait=false"), follow_retry_after=True,
    )  # fmt: skip
    cnpg.wait_healthy(timeout=180)
    outcome = analyse(run, cnpg.orders_of(writer.user_id), deleted_at)
    cnpg.record("pooler_pod_deleted", {**outcome.figures, "deleted": victim})

    assert victim not in cnpg.pooler_pods()
    assert outcome.problems == []
    assert outcome.figures["unacknowledged"] == 0
    assert outcome.figures["lost"] == outcome.figures["duplicates"] == 0
    cnpg.assert_no_api_pod_restarted(api_before)
