"""The scheduled work-list build (qa/scheduler.py): due once per closed period, idempotent across
restarts and instances, an owned task cancelled on stop. Driven by a fake clock."""

from __future__ import annotations

import asyncio
from datetime import datetime, time, timedelta, timezone
from pathlib import Path

import pytest

from qa.registry import FormRegistry
from qa.repository import QaRepository, RecordingRef
from qa.sampling import Candidate
from qa.scheduler import WorkListScheduler, due_day
from qa.service import QaService

ROOT = Path(__file__).resolve().parents[3]
# Monday 2026-11-23 .. Sunday 2026-11-29 is ISO week 48; Monday 2026-11-30 starts week 49
WEEK48 = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)


def test_due_day_is_the_last_closed_period_after_the_hour():
    at = time(2, 0)
    assert due_day("week", datetime(2026, 11, 30, 1, 59, tzinfo=timezone.utc), at) is None  # before 02:00
    assert due_day("week", datetime(2026, 11, 30, 2, 0, tzinfo=timezone.utc), at).isoformat() == "2026-11-29"
    assert due_day("week", datetime(2026, 12, 2, 12, 0, tzinfo=timezone.utc), at) is None  # mid-week: week 48 was due Monday
    assert due_day("day", datetime(2026, 12, 2, 3, 0, tzinfo=timezone.utc), at).isoformat() == "2026-12-01"


class Recordings:
    """Two agents, five calls each in week 48, one short call (picked by the shorter_than rule)."""

    def __init__(self) -> None:
        self.calls = [
            Candidate(f"rec-{a}-{i}", a, WEEK48 + timedelta(hours=i), 15.0 if (a, i) == ("1001", 0) else 120.0, "support")
            for a in ("1001", "1002") for i in range(5)
        ]
        self.asked = 0

    async def recording(self, recording_id: str):
        return RecordingRef(recording_id, "1001", recording_id, 120.0, "support")

    async def candidates(self, start, end):
        self.asked += 1
        return [c for c in self.calls if start <= c.started_at < end]


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


RULES = """period: week
seed: test
form: customer-service
evaluators:
  - {id: qa1, daily_cap: 20}
rules:
  - {id: short-calls, kind: shorter_than, seconds: 20}
  - {id: per-agent, kind: per_agent, count: 2}
"""


@pytest.fixture
async def service(tmp_path: Path, db_sessionmaker):
    forms = tmp_path / "qa-forms"
    forms.mkdir()
    (forms / "cs.yaml").write_bytes((ROOT / "qa-forms" / "customer-service.yaml").read_bytes())
    (forms / "sampling.yaml").write_text(RULES, encoding="utf-8")
    repo = QaRepository(db_sessionmaker)
    svc = QaService(FormRegistry(forms, repo, watch=False), repo, Recordings())
    await svc.start()
    yield svc
    await svc.stop()


async def test_builds_a_closed_week_once_across_restarts_and_instances(service):
    clock = Clock(datetime(2026, 11, 29, 23, 0, tzinfo=timezone.utc))  # week 48 not over yet
    one = WorkListScheduler(service, clock=clock)
    assert await one.tick() is None and service.recordings.asked == 0
    clock.now = datetime(2026, 11, 30, 2, 5, tzinfo=timezone.utc)
    built = await one.tick()
    assert built is not None and built["period"] == "2026-W48"
    # 1001's short call by rule short-calls, then 2 random per agent among the rest
    assert built["picked"] == 5
    items = await service.repo.work_items(period="2026-W48")
    assert len(items) == 5 and sum(i["rule"] == "short-calls" for i in items) == 1
    assert {i["agent_id"] for i in items if i["rule"] == "per-agent"} == {"1001", "1002"}
    assert {i["assigned_on"] for i in items} == {"2026-11-30"} and {i["evaluator"] for i in items} == {"qa1"}
    # the same instance later that day, a restarted one, and a second instance: nothing added
    clock.now += timedelta(hours=3)
    assert await one.tick() is None
    restarted = WorkListScheduler(service, clock=clock)
    assert await restarted.tick() is None
    assert len(await service.repo.work_items()) == 5
    assert (await service.repo.worklist_run("worklist:2026-W48"))["picked"] == 5


async def test_two_instances_racing_build_the_period_once(service):
    clock = Clock(datetime(2026, 11, 30, 3, 0, tzinfo=timezone.utc))
    a, b = WorkListScheduler(service, clock=clock), WorkListScheduler(service, clock=clock)
    # both pass the "not built yet" check; the run row and the items commit together, so one wins
    results = await asyncio.gather(service.build_work_list(clock.now.date() - timedelta(days=1), once=True),
                                   service.build_work_list(clock.now.date() - timedelta(days=1), once=True))
    assert sorted(bool(r.get("already_built")) for r in results) == [False, True]
    assert len(await service.repo.work_items()) == 5
    assert await a.tick() is None and await b.tick() is None


async def test_owned_task_runs_on_its_schedule_and_is_cancelled_on_stop(service):
    clock = Clock(datetime(2026, 11, 30, 1, 0, tzinfo=timezone.utc))
    ticks: list[datetime] = []
    gate = asyncio.Event()

    async def fake_sleep(seconds: float) -> None:  # each "sleep" advances the fake clock by an hour
        ticks.append(clock.now)
        clock.now += timedelta(hours=1)
        if len(ticks) >= 3:
            gate.set()
            await asyncio.Event().wait()  # park until cancelled

    sched = WorkListScheduler(service, every=3600, clock=clock, sleep=fake_sleep)
    sched.start()
    await asyncio.wait_for(gate.wait(), 5)
    assert sched.last is not None and sched.last["period"] == "2026-W48"  # built at 02:00 or 03:00
    assert len(await service.repo.work_items()) == 5
    task = sched.task
    await sched.stop()
    assert task is not None and task.cancelled() and sched.task is None
