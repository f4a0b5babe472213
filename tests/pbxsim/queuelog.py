"""The emulator's ``queue_log``: the lines app_queue appends, in Asterisk 20's format
(``time|callid|queue|agent|EVENT|data…``, epoch seconds), as in the real capture
``tests/fixtures/asterisk-captures/live-2026-12/*.queue_log``.

One small writer with one method per line app_queue writes; the emulator calls them from
its queue hooks (``tests/pbxsim/queueapp.py``, ``pbx.py``), the report tests also use it
to write a queue_log of a generated dataset. ``path=None`` keeps the lines in memory.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable


class QueueLogWriter:
    def __init__(self, path: str | Path | None = None, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path) if path is not None else None
        self.clock = clock
        self.lines: list[str] = []

    def write(self, callid: str, queue: str, agent: str, event: str, *data: object, at: float | None = None) -> str:
        t = int(self.clock() if at is None else at)
        fields = [str(t), callid, queue, agent, event, *("" if d is None else str(d) for d in data)]
        line = "|".join(fields)
        self.lines.append(line)
        if self.path is not None:
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(line + "\n")
        return line

    # ---- one method per app_queue line (app_queue.c), data fields as Asterisk writes them
    def add_member(self, queue: str, member: str, at: float | None = None) -> str:
        return self.write("MANAGER", queue, member, "ADDMEMBER", "", at=at)

    def remove_member(self, queue: str, member: str, at: float | None = None) -> str:
        return self.write("MANAGER", queue, member, "REMOVEMEMBER", "", at=at)

    def pause(self, queue: str | None, member: str, reason: str = "", at: float | None = None) -> list[str]:
        """A QueuePause without a queue pauses every queue: PAUSEALL then one PAUSE per queue."""
        return self._pause("PAUSE", queue, member, reason, at)

    def unpause(self, queue: str | None, member: str, reason: str = "", at: float | None = None) -> list[str]:
        return self._pause("UNPAUSE", queue, member, reason, at)

    def _pause(self, event: str, queues: str | list[str] | None, member: str, reason: str, at: float | None) -> list[str]:
        out = []
        if queues is None or isinstance(queues, list):
            out.append(self.write("NONE", "NONE", member, f"{event}ALL", reason, at=at))
            for q in queues or []:
                out.append(self.write("NONE", q, member, event, reason, at=at))
        else:
            out.append(self.write("NONE", queues, member, event, reason, at=at))
        return out

    def enter(self, callid: str, queue: str, caller: str, position: int = 1, at: float | None = None) -> str:
        return self.write(callid, queue, "NONE", "ENTERQUEUE", "", caller, position, at=at)

    def connect(self, callid: str, queue: str, member: str, holdtime: float, bridged: str, ringtime: float,
                at: float | None = None) -> str:
        return self.write(callid, queue, member, "CONNECT", int(holdtime), bridged, int(ringtime), at=at)

    def complete(self, callid: str, queue: str, member: str, holdtime: float, talktime: float, by_caller: bool,
                 origpos: int = 1, at: float | None = None) -> str:
        return self.write(callid, queue, member, "COMPLETECALLER" if by_caller else "COMPLETEAGENT",
                          int(holdtime), int(talktime), origpos, at=at)

    def abandon(self, callid: str, queue: str, position: int, origpos: int, waittime: float,
                at: float | None = None) -> str:
        return self.write(callid, queue, "NONE", "ABANDON", position, origpos, int(waittime), at=at)

    def timeout(self, callid: str, queue: str, position: int, origpos: int, waittime: float,
                at: float | None = None) -> str:
        return self.write(callid, queue, "NONE", "EXITWITHTIMEOUT", position, origpos, int(waittime), at=at)

    def ring_no_answer(self, callid: str, queue: str, member: str, ringtime_ms: float, at: float | None = None) -> str:
        return self.write(callid, queue, member, "RINGNOANSWER", int(ringtime_ms), at=at)

    def attended_transfer(self, callid: str, queue: str, member: str, bridge: str, holdtime: float, calltime: float,
                          origpos: int = 1, at: float | None = None) -> str:
        return self.write(callid, queue, member, "ATTENDEDTRANSFER", "BRIDGE", bridge, int(holdtime), int(calltime),
                          origpos, at=at)
