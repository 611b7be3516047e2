"""A test run on a shared NATS server leaves none of its streams behind (the shared server here once
held 392 streams of earlier runs, and a scan that read only the first page of 256 saw none of its own)."""

from __future__ import annotations

import secrets

import pytest

from baoxue.events.bus import EventBus
from baoxue.testing.infrastructure import delete_run_streams


async def test_the_streams_of_a_run_are_deleted_and_no_others(baoxue_infra):
    if baoxue_infra.kind == "embedded":
        pytest.skip("the embedded nats-server is discarded with the run")
    run_id, other = secrets.token_hex(3), secrets.token_hex(3)
    # namespace → whether its streams belong to the run being cleaned up
    names = {f"t{run_id}n1": True, f"e2e{run_id}": True, f"k{run_id}reg": True, f"t{other}n1": False}
    buses = [EventBus(baoxue_infra.nats_url, namespace=ns, client_name="cleanup-test") for ns in names]
    for bus in buses:
        await bus.connect()
        await bus.ensure_streams()
    try:
        assert delete_run_streams(baoxue_infra.nats_url, run_id) == 3 * 4  # four services' streams each
        for bus, of_run in zip(buses, names.values(), strict=True):
            for service in ("registry", "enrollment", "casework", "notify"):
                present = True
                try:
                    await bus.stream_info(service)
                except Exception:
                    present = False
                assert present is not of_run, (bus.namespace, service)
    finally:
        for bus in buses:
            await bus.delete_streams()
            await bus.close()
