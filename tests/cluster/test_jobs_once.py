"""Scheduled work runs once across instances (issue 19 item 2): webhook deliveries are claimed
(compare-and-set), purge/orphan recovery and rollups run on the AMI holder only. The recording
post-processing jobs were already claimed with a compare-and-set lease (recording/repository.py
``claim_due``) and the QA work-list build is leased per period (qa/scheduler.py)."""

from __future__ import annotations

import asyncio

from outbox.models import PENDING, WebhookDeliveryRow
from outbox.repository import OutboxRepository


async def _idle_until_leader(svc, loop, calls: list) -> None:
    """Run ``loop`` as a standby (nothing may run), then as the leader, for 0.1 s each."""
    task = asyncio.create_task(loop())
    try:
        await asyncio.sleep(0.1)
        assert calls == []
        svc.leader = lambda: True
        await asyncio.sleep(0.1)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_two_instances_never_claim_one_delivery(db_sessionmaker) -> None:
    a, b = OutboxRepository(db_sessionmaker), OutboxRepository(db_sessionmaker)
    await a.add([WebhookDeliveryRow(id=f"d{n}", hook_url="http://127.0.0.1:9/h", event="call.ended", body="{}",
                                    status=PENDING, attempts=0, max_attempts=5, next_attempt_at=10.0 + n, created_at=1.0)
                 for n in range(6)])
    got_a, got_b = await asyncio.gather(a.claim_due(100.0, 10, lease=60), b.claim_due(100.0, 10, lease=60))
    ids_a, ids_b = {r.id for r in got_a}, {r.id for r in got_b}
    assert ids_a | ids_b == {f"d{n}" for n in range(6)} and not ids_a & ids_b
    # claimed: not due again until the lease runs out (a worker that died mid-send)
    assert await a.claim_due(150.0, 10) == []
    assert {r.id for r in await b.claim_due(161.0, 10)} == {f"d{n}" for n in range(6)}


async def test_rollups_run_only_on_the_leader() -> None:
    from reports.service import ReportService

    svc = ReportService.__new__(ReportService)
    calls = []
    svc.rollup_every = 0.01
    svc.leader = lambda: False

    async def roll() -> None:
        calls.append(1)

    svc.roll_up_pending = roll
    await _idle_until_leader(svc, svc._rollup_loop, calls)
    assert calls


async def test_purge_and_orphan_recovery_run_only_on_the_leader() -> None:
    from recording.service import RecordingService

    svc = RecordingService.__new__(RecordingService)
    calls = []
    svc.purge_interval_seconds = 0.01
    svc.leader = lambda: False

    async def recover(*a, **k) -> int:
        calls.append("recover")
        return 0

    async def purge() -> list[int]:
        calls.append("purge")
        return []

    svc.recover_orphans, svc.purge_once = recover, purge
    await _idle_until_leader(svc, svc._purge_loop, calls)
    assert calls[:2] == ["recover", "purge"]
