"""The wallboard's own numbers (pure, no I/O).

CTI's ``queue.stats`` gives the live queue view and today's totals (waiting, longest wait,
answered/abandoned today, service level today, agents by state). What a wallboard needs
on top, and what this book adds:

* service level over the **last 30 minutes** per queue — CTI's own "today" formula
  (answered within the queue's service-level seconds ÷ (answered + abandoned)) applied to
  the change of CTI's counters over the window: each tick's ``answered_today``,
  ``abandoned_today`` and ``answered_within_sl`` are kept as samples, and the window's
  figure is now minus the sample of 30 minutes ago (or of the first tick, while the
  process is younger than that; a midnight reset of the counters starts the samples anew);
* from the **KPI fact store** (the reports package's facts, :meth:`observe_facts`: live as
  they are recorded, and read back from the database at start-up and at the day's roll,
  :meth:`seed`), so a restart shows the same figures as before it:
  - per agent, calls **handled** today (``visit.answered``: a queue call the agent answered)
    and rings **missed** today (``ring.missed``: no answer or rejected);
  - the **abandoned calls** of today (``visit.left`` with outcome ``abandoned``: who, which
    queue, how long they waited, when they gave up), the caller's name from ``call.ended``;
* from ``call.*`` / ``agent.status`` bus messages (:meth:`observe`): the agents' live state
  and the caller/queue of each agent's current call.

"Today" is the center's calendar day (``day_of``; the report time zone when wired) of a
fact's ``anchor_at`` — the day the reports count it on. Every fact is counted once (by its
key), so a seed that overlaps the live feed never double-counts.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

WINDOW_SECONDS = 30 * 60
MAX_ABANDONED = 200  # newest sent; a wallboard lists the latest
#: the fact kinds the book reads (reports.facts)
FACT_KINDS = ("visit.answered", "ring.missed", "visit.left", "call.ended")
MISSED_REASONS = ("no_answer", "rejected")


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
    #: the day whose stored facts were read back (:meth:`seed`); None: a seed is due
    seeded_day: str | None = None
    samples: dict[str, deque[_Sample]] = field(default_factory=dict)  # queue -> CTI counters per tick
    abandoned: dict[str, dict[str, Any]] = field(default_factory=dict)  # fact key -> abandoned call
    handled: dict[str, int] = field(default_factory=dict)
    missed: dict[str, int] = field(default_factory=dict)
    facts_seen: set[str] = field(default_factory=set)  # keys of today's facts already counted
    calls: dict[str, dict[str, Any]] = field(default_factory=dict)  # live call id -> caller/queue
    agents: dict[str, dict[str, Any]] = field(default_factory=dict)  # agent id -> last agent.status
    _names: dict[str, str] = field(default_factory=dict)  # call id -> caller name (from call.ended)
    _abandoned_of: dict[str, list[str]] = field(default_factory=dict)  # call id -> keys in ``abandoned``

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
        elif name == "call.ended":
            self.calls.pop(call_id, None)

    def observe_facts(self, facts: Iterable[Any], now: float) -> int:
        """Count today's facts (``reports.facts.Fact``) not counted yet; returns how many were new."""
        self._roll_day(now)
        return self._count(facts)

    def _count(self, facts: Iterable[Any]) -> int:
        new = 0
        for f in facts:
            if f.kind not in FACT_KINDS or f.key in self.facts_seen or self.day_of(f.anchor_at) != self.day:
                continue
            self.facts_seen.add(f.key)
            new += 1
            data = f.data or {}
            if f.kind == "visit.answered" and f.agent_id:
                self.handled[f.agent_id] = self.handled.get(f.agent_id, 0) + 1
            elif f.kind == "ring.missed" and f.agent_id and data.get("reason") in MISSED_REASONS:
                self.missed[f.agent_id] = self.missed.get(f.agent_id, 0) + 1
            elif f.kind == "visit.left" and data.get("outcome") == "abandoned" and f.queue:
                live = self.calls.get(f.call_id or "") or {}
                self.abandoned[f.key] = {
                    "call_id": f.call_id,
                    "caller_num": data.get("caller") or live.get("caller_num"),
                    "caller_name": self._names.get(f.call_id or "") or live.get("caller_name"),
                    "queue": f.queue,
                    "waited": None if data.get("wait") is None else round(float(data["wait"]), 1),
                    "ended_at": f.at,
                }
                self._abandoned_of.setdefault(f.call_id or "", []).append(f.key)
            elif f.kind == "call.ended" and data.get("caller_name"):
                self._names[f.call_id or ""] = data["caller_name"]
                for key in self._abandoned_of.get(f.call_id or "", ()):
                    if not self.abandoned[key]["caller_name"]:
                        self.abandoned[key]["caller_name"] = data["caller_name"]
        return new

    def seed(self, facts: Iterable[Any], day: str) -> int:
        """Today's stored facts, read back from the database (start-up, the day's roll). A seed
        for a day that is over by now is dropped; overlapping the live feed is harmless."""
        if day != self.day:
            return 0
        new = self._count(sorted(facts, key=lambda f: 0 if f.kind == "call.ended" else 1))  # names first
        self.seeded_day = day
        return new

    def _roll_day(self, now: float) -> None:
        day = self.day_of(now)
        if day != self.day:
            self.day = day
            self.seeded_day = None  # the new day's stored facts are read back (WebService)
            self.abandoned.clear()
            self.handled.clear()
            self.missed.clear()
            self.facts_seen.clear()
            self._names.clear()
            self._abandoned_of.clear()

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
        abandoned = sorted(self.abandoned.values(), key=lambda c: -c["ended_at"])[:MAX_ABANDONED]
        return {"at": now, "queues": queues, "waiting": waiting, "agents": agents, "abandoned": abandoned}

