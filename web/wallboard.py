"""The wallboard's own numbers, kept from the CTI events callcore already publishes (pure, no I/O).

CTI's ``queue.stats`` gives the live queue view and today's totals (waiting, longest wait,
answered/abandoned today, service level today, agents by state). What a wallboard needs
on top, and what this book adds from ``call.*`` / ``agent.status`` messages:

* service level over the **last 30 minutes** per queue — CTI's own "today" formula
  (answered within the queue's service-level seconds ÷ (answered + abandoned)) applied to
  the change of CTI's counters over the window: each tick's ``answered_today``,
  ``abandoned_today`` and ``answered_within_sl`` are kept as samples, and the window's
  figure is now minus the sample of 30 minutes ago (or of the first tick, while the
  process is younger than that; a midnight reset of the counters starts the samples anew);
* **abandoned calls today** (who, which queue, when, how long they waited) for "call back";
* per agent: calls **handled** and **missed** today, and the caller/queue of the current call.

"Today" is the calendar day of ``day_of(now)`` (local time by default); the book starts
empty at process start (the KPI fact store of the reports package is the durable source).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

WINDOW_SECONDS = 30 * 60
MAX_ABANDONED = 200  # newest kept; a wallboard lists the latest


def local_day(now: float) -> str:
    return time.strftime("%Y-%m-%d", time.localtime(now))


@dataclass(frozen=True, slots=True)
class _Sample:
    at: float
    answered: int
    abandoned: int
    within: int


@dataclass
class WallboardBook:
    day_of: Callable[[float], str] = local_day
    window: float = WINDOW_SECONDS
    day: str | None = None
    samples: dict[str, deque[_Sample]] = field(default_factory=dict)  # queue -> CTI counters per tick
    abandoned: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=MAX_ABANDONED))
    handled: dict[str, int] = field(default_factory=dict)
    missed: dict[str, int] = field(default_factory=dict)
    handled_calls: set[tuple[str, str]] = field(default_factory=set)  # (call id, agent id)
    calls: dict[str, dict[str, Any]] = field(default_factory=dict)  # live call id -> caller/queue
    agents: dict[str, dict[str, Any]] = field(default_factory=dict)  # agent id -> last agent.status

    # ------------------------------------------------------------ input
    def observe(self, name: str, payload: dict[str, Any], now: float) -> None:
        """Take one bus message (``call.*``, ``agent.status``); others are ignored."""
        self._roll_day(now)
        if name == "agent.status":
            agent_id = payload.get("agent_id")
            if agent_id:
                self.agents[str(agent_id)] = dict(payload)
            return
        if not name.startswith("call."):
            return
        call_id = payload.get("call_id")
        if not call_id:
            return
        if name in ("call.ringing", "call.answered", "call.updated", "call.transferred"):
            known = self.calls.setdefault(call_id, {"call_id": call_id, "caller_num": None, "caller_name": None, "queue": None, "status": None})
            fresh = {
                "caller_num": payload.get("caller_num"),
                "caller_name": payload.get("caller_name") or (payload.get("customer") or {}).get("name"),
                "queue": payload.get("queue"),
                "status": payload.get("status"),
            }
            known.update({k: v for k, v in fresh.items() if v is not None})
        queue = payload.get("queue")
        if name == "call.answered":
            agent_id = payload.get("agent_id")
            if agent_id and (call_id, agent_id) not in self.handled_calls:
                self.handled_calls.add((call_id, agent_id))
                self.handled[agent_id] = self.handled.get(agent_id, 0) + 1
        elif name == "call.missed":
            agent_id = payload.get("agent_id")
            if agent_id and payload.get("reason") in ("no_answer", "rejected"):
                self.missed[agent_id] = self.missed.get(agent_id, 0) + 1
        elif name == "call.ended":
            self.calls.pop(call_id, None)
            if payload.get("outcome") == "abandoned" and queue:
                self.abandoned.appendleft({
                    "call_id": call_id,
                    "caller_num": payload.get("caller_num"),
                    "caller_name": payload.get("caller_name") or (payload.get("customer") or {}).get("name"),
                    "queue": queue,
                    "waited": payload.get("waited"),
                    "ended_at": now,
                })

    def _roll_day(self, now: float) -> None:
        day = self.day_of(now)
        if day != self.day:
            self.day = day
            self.abandoned.clear()
            self.handled.clear()
            self.missed.clear()
            self.handled_calls.clear()

    # ----------------------------------------------------------- output
    def service_level_window(self, q: dict[str, Any], now: float) -> tuple[float | None, int]:
        """Record this tick's counters of queue stats ``q``; return (percent answered within
        the service level over the window or None, calls offered in the window)."""
        sample = _Sample(now, int(q.get("answered_today") or 0), int(q.get("abandoned_today") or 0), int(q.get("answered_within_sl") or 0))
        samples = self.samples.setdefault(q["queue"], deque())
        if samples and (sample.answered < samples[-1].answered or sample.abandoned < samples[-1].abandoned):
            samples.clear()  # CTI's counters were reset (a new day): the window starts again
        last = samples[-1] if samples else None
        if last is None or (last.answered, last.abandoned, last.within) != (sample.answered, sample.abandoned, sample.within):
            samples.append(sample)  # only changes are kept: between two samples the counters stood still
        # keep one sample at or before the window's start: it is the baseline
        while len(samples) > 1 and samples[1].at <= now - self.window:
            samples.popleft()
        base = samples[0]
        offered = (sample.answered - base.answered) + (sample.abandoned - base.abandoned)
        if offered <= 0:
            return None, 0
        return round(100.0 * (sample.within - base.within) / offered, 1), offered

    def snapshot(self, queue_stats: list[dict[str, Any]], now: float) -> dict[str, Any]:
        """CTI's queue stats plus this book's numbers: the ``wallboard.update`` payload."""
        self._roll_day(now)
        queues = []
        waiting: list[dict[str, Any]] = []
        for q in queue_stats:
            sl, offered = self.service_level_window(q, now)
            queues.append({**q, "service_level_30m": sl, "offered_30m": offered})
            for c in q.get("callers") or []:
                waiting.append({**c, "queue": q["queue"]})
        waiting.sort(key=lambda c: -(c.get("waited") or 0))
        agents = []
        for agent_id, a in sorted(self.agents.items()):
            call_id = a.get("current_call") or a.get("ringing_call")
            call = self.calls.get(call_id) if call_id else None
            agents.append({
                **a,
                "handled_today": self.handled.get(agent_id, 0),
                "missed_today": self.missed.get(agent_id, 0),
                "call": call,
            })
        return {"at": now, "queues": queues, "waiting": waiting, "agents": agents, "abandoned": list(self.abandoned)}
