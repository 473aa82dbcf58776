"""Scenario 2, the primary killed under write load.

A writer pod sends idempotent order creates at 25 requests/s through the API
Service; ten seconds in, the primary's pod is force-deleted (no shutdown:
its connections die with it). The operator promotes the standby that has
every acknowledged commit (synchronous replication), PgBouncer reconnects to
the new primary behind the same Service, and the API, which is not
restarted, answers 503 with Retry-After meanwhile.
"""

from __future__ import annotations

import pytest

from tests.e2e.cnpg.conftest import Release, Writer
from tests.e2e.cnpg.writer import analyse


@pytest.mark.usefixtures("steady_api")
def test_primary_killed_under_write_load_loses_no_acknowledged_write(cnpg: Release, writer: Writer) -> None:
    cnpg.wait_healthy()
    killed = cnpg.primary()
    api_before = cnpg.api_restarts()

    def kill_primary() -> None:
        cnpg.kubectl("delete", "pod", killed, "--grace-period=0", "--force", "--wait=false")

    run, killed_at = cnpg.write_through(writer, "failover", duration=60, fault=kill_primary)
    status = cnpg.wait_healthy(timeout=300)
    outcome = analyse(run, cnpg.orders_of(writer.user_id), killed_at)
    cnpg.record("primary_killed", {**outcome.figures, "old_primary": killed, "new_primary": status["currentPrimary"]})

    assert status["currentPrimary"] != killed, "no failover happened"
    assert outcome.problems == []
    assert outcome.figures["lost"] == 0
    assert outcome.figures["duplicates"] == 0
    assert 20 <= outcome.figures["rate_per_second"] <= 50
    assert outcome.figures["failover_to_first_success_seconds"] < 60, "no write succeeded after the failover"
    cnpg.assert_no_api_pod_restarted(api_before)  # not restarted because the primary died
