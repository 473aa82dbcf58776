"""Scenario 3, a planned switchover under write load.

What `kubectl cnpg promote CLUSTER INSTANCE` does: set the Cluster's
status.targetPrimary to a standby; the operator shuts the primary down
cleanly, promotes the standby and makes the old primary follow it. The
writer follows Retry-After (same key), so every write ends acknowledged.
"""

from __future__ import annotations

import datetime
import json

import pytest

from tests.e2e.cnpg.conftest import CLUSTER, Release, Writer
from tests.e2e.cnpg.writer import analyse


def promote(cnpg: Release, instance: str) -> None:
    """The status patch of `kubectl cnpg promote` (internal/cmd/plugin/promote)."""
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    patch = {
        "status": {
            "targetPrimary": instance,
            "targetPrimaryTimestamp": now,
            "phase": "Switchover in progress",
            "phaseReason": f"Switching over to {instance}",
        }
    }
    cnpg.kubectl("patch", "cluster", CLUSTER, "--subresource=status", "--type=merge", "-p", json.dumps(patch))


@pytest.mark.usefixtures("steady_api")
def test_switchover_under_write_load_loses_nothing_and_every_5xx_is_a_retry_after(
    cnpg: Release, writer: Writer
) -> None:
    cnpg.wait_healthy()
    old = cnpg.primary()
    standby = sorted(
        p["metadata"]["name"] for p in cnpg.pods(f"cnpg.io/cluster={CLUSTER},cnpg.io/instanceRole=replica")
    )[0]
    api_before = cnpg.api_restarts()

    run, promoted_at = cnpg.write_through(
        writer, "switchover", duration=45, fault=lambda: promote(cnpg, standby), follow_retry_after=True
    )
    status = cnpg.wait_healthy(timeout=300)
    outcome = analyse(run, cnpg.orders_of(writer.user_id), promoted_at)
    cnpg.record("switchover", {**outcome.figures, "old_primary": old, "new_primary": status["currentPrimary"]})

    assert status["currentPrimary"] == standby
    assert outcome.problems == []
    # Every 5xx was a 503 whose Retry-After the writer followed to an acknowledgement.
    assert outcome.figures["unacknowledged"] == 0
    assert outcome.figures["lost"] == outcome.figures["duplicates"] == 0
    cnpg.assert_no_api_pod_restarted(api_before)
