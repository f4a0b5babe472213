"""A recording service on the test database with a fake AMI and a controllable clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cti.state import Call, Leg
from recording.checker import parse_policy
from recording.service import RecordingService
from recording.storage import MemoryStorage

T0 = 1795395000.0
POLICY = """\
defaults: {action: record, retention_days: 30}
rules:
  - name: unanswered
    match: {outcome: [abandoned, unanswered]}
    action: dont_record
  - name: sales
    match: {queue: [sales]}
    retention_days: 365
    qa_sampling: true
"""


@dataclass
class Resp:
    success: bool = True
    message: str = ""


@dataclass
class FakeAmi:
    actions: list[Any] = field(default_factory=list)
    fail: bool = False

    async def send(self, action, timeout=None):
        if self.fail:
            raise ConnectionError("AMI down")
        self.actions.append(action)
        return Resp()


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def make_service(sessionmaker, tmp_path: Path, *, storage=None, clock=None, ami=None, **kw) -> RecordingService:
    (tmp_path / "monitor").mkdir(exist_ok=True)
    return RecordingService(
        sessionmaker, storage if storage is not None else MemoryStorage(), parse_policy(POLICY, "p.yaml").policy,
        ami=ami if ami is not None else FakeAmi(), monitor_dir=tmp_path / "monitor", clock=clock or Clock(),
        job_backoff_seconds=10, **kw,
    )


def make_call(call_id: str = "1795395000.1", queue: str = "support", caller: str = "01055551234") -> Call:
    call = Call(id=call_id, started_at=T0, caller_num=caller, caller_name="홍길동", dialed="0212345678", queue=queue)
    call.legs[call_id] = Leg(call_id, f"PJSIP/trunk-{call_id[-4:]}", "caller")
    call.status = "queued"
    call.queued_at = T0
    return call


def answered(service: RecordingService, call: Call, agent: str, now: float) -> None:
    call.status, call.agent_id = "talking", agent
    if call.answered_at is None:
        call.answered_at = now
    service.call_changed("call.answered", call, agent, now)


def start(service: RecordingService, call: Call, now: float) -> None:
    call.recording = True
    service.call_changed("call.updated", call, None, now)
    service.call_changed("call.queued", call, None, now)


def end(service: RecordingService, call: Call, now: float, outcome: str = "answered") -> None:
    call.status, call.outcome, call.ended_at = "ended", outcome, now
    service.call_changed("call.ended", call, call.agent_id, now)
