"""Recording events reach the desks of the agents on the call and supervisors; each is documented."""

from __future__ import annotations

import yaml

from callcore.bus import Bus
from recording.notifier import EVENTS_FILE
from recording.storage import MemoryStorage
from tests.unit.recording.helpers import Clock, make_call, make_service
from tests.unit.recording.test_service import recorded_call


async def test_pause_resume_and_processing_are_published_and_documented(db_sessionmaker, tmp_path):
    bus = Bus()
    desk = bus.subscribe({"agent:1001"})
    other = bus.subscribe({"agent:1002"})
    sup = bus.subscribe({"supervisor"})
    clock = Clock()
    svc = make_service(db_sessionmaker, tmp_path, clock=clock, storage=MemoryStorage(), bus=bus)
    await recorded_call(svc, clock, make_call())
    await svc.run_due_jobs()
    got = [(await desk.get()) for _ in range(2)]
    assert [m.name for m in got] == ["recording.paused", "recording.resumed"]
    assert got[0].payload["by"] == "1001" and got[0].payload["offset"] == 1.0
    assert got[1].payload["span"]["end"] == 2.0
    names = [(await sup.get()).name for _ in range(3)]
    assert names == ["recording.paused", "recording.resumed", "recording.processed"]
    assert other.queue.empty()  # an agent not on the call hears nothing
    documented = yaml.safe_load(EVENTS_FILE.read_text())["events"]
    assert set(names) <= set(documented)
    source = (EVENTS_FILE.parent / "notifier.py").read_text()
    assert {n for n in documented if f'"{n}"' in source} == set(documented)
