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
    #: what changed since :meth:`take_changes` (issue 18 round five: a push rebuilds and compares
    #: only these rows, not the 2,000 of the grid): agent ids whose row may differ, or every row
    #: (``_all_changed``: a new day, a fresh book), and whether the abandoned list did
    _changed: set[str] = field(default_factory=set)
    _all_changed: bool = True
    _abandoned_changed: bool = True
    _agents_of_call: dict[str, set[str]] = field(default_factory=dict)  # call id -> agents whose row shows it
    #: the abandoned list's keys as last sent (newest 200) and the keys added since: the next list
    #: is merged from those, not sorted from every abandoned call of the day (issue 18 round five)
    _abandoned_top: list[str] = field(default_factory=list)
    _abandoned_new: list[str] = field(default_factory=list)

    # ------------------------------------------------------------ input
    def observe(self, name: str, payload: dict[str, Any], now: float) -> None:
        """Take one bus message (``call.*``, ``agent.status``); others are ignored."""
        self._roll_day(now)
        if name == "agent.status":
            agent_id = payload.get("agent_id")
            if agent_id:
                self.set_agent(str(agent_id), payload)
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
        else:
            return
        showing = self._agents_of_call.get(call_id)
        if showing:  # the rows that show this call
            self._changed.update(showing)

    # ------------------------------------------------------------ agents
    def set_agent(self, agent_id: str, state: dict[str, Any]) -> None:
        """An agent's live state (an ``agent.status`` payload, or the directory's placeholder)."""
        old = self.agents.get(agent_id)
        if old is not None:
            self._unlink(agent_id, old)
        a = self.agents[agent_id] = dict(state)
        call_id = a.get("current_call") or a.get("ringing_call")
        if call_id:
            self._agents_of_call.setdefault(call_id, set()).add(agent_id)
        self._changed.add(agent_id)

    def drop_agent(self, agent_id: str) -> None:
        """An agent gone from the directory."""
        old = self.agents.pop(agent_id, None)
        if old is not None:
            self._unlink(agent_id, old)
            self._changed.add(agent_id)

    def _unlink(self, agent_id: str, a: dict[str, Any]) -> None:
        call_id = a.get("current_call") or a.get("ringing_call")
        showing = self._agents_of_call.get(call_id) if call_id else None
        if showing is not None:
            showing.discard(agent_id)
            if not showing:
                del self._agents_of_call[call_id]

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
                self._changed.add(f.agent_id)
            elif f.kind == "ring.missed" and f.agent_id and data.get("reason") in MISSED_REASONS:
                self.missed[f.agent_id] = self.missed.get(f.agent_id, 0) + 1
                self._changed.add(f.agent_id)
            elif f.kind == "visit.left" and data.get("outcome") == "abandoned" and f.queue:
                self._abandoned_changed = True
                self._abandoned_new.append(f.key)
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
                        self._abandoned_changed = True
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
            self._abandoned_top.clear()
            self._abandoned_new.clear()
            self.handled.clear()
            self.missed.clear()
            self.facts_seen.clear()
            self._names.clear()
            self._abandoned_of.clear()
            self._all_changed = self._abandoned_changed = True  # every row's handled/missed went back to 0

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

    def snapshot(self, queue_stats: list[dict[str, Any]], now: float, agents: bool = True) -> dict[str, Any]:
        """CTI's queue stats plus this book's numbers: the wallboard (``agents=False``: without
        the agents grid and the abandoned list, for a push where only the queues changed).
        With the grid, what changed since the last :meth:`changes` counts as sent."""
        snap = self._queues(queue_stats, now)
        if agents:
            self._grid(snap)
        return snap

    def changes(self, queue_stats: list[dict[str, Any]] | None, now: float) -> dict[str, Any]:
        """What may have changed since the last :meth:`changes` / :meth:`snapshot`, as the input
        of :meth:`WallboardFeed.delta`: the rows of the agents whose state, call or counts
        changed (``agents_partial``: the other rows are unchanged; ``agents_removed``: gone from
        the book), the abandoned list only when it changed, and the queue tiles and the waiting
        list when ``queue_stats`` is given (left out: unchanged). After a new day (every row's
        counts went back to 0) it is the whole grid. Its cost is the changed rows, not the
        2,000 of a big center's grid (issue 18 round five)."""
        snap = self._queues(queue_stats, now) if queue_stats is not None else {"at": now}
        self._roll_day(now)
        if self._all_changed:
            self._grid(snap)
            return snap
        ids, self._changed = sorted(self._changed), set()
        agents = self.agents
        snap["agents"] = [self._row(i, agents[i]) for i in ids if i in agents]
        snap["agents_partial"] = True
        snap["agents_removed"] = [i for i in ids if i not in agents]
        if self._abandoned_changed:
            self._abandoned_changed = False
            snap["abandoned"] = self._abandoned_list()
        return snap

    def _grid(self, snap: dict[str, Any]) -> None:
        self._changed.clear()
        self._all_changed = self._abandoned_changed = False
        snap["agents"] = [self._row(agent_id, a) for agent_id, a in sorted(self.agents.items())]
        snap["abandoned"] = self._abandoned_list()

    def _queues(self, queue_stats: list[dict[str, Any]], now: float) -> dict[str, Any]:
        self._roll_day(now)
        queues = []
        waiting: list[dict[str, Any]] = []
        for q in queue_stats:
            sl, offered = self.service_level_window(q, now)
            queues.append({**q, "service_level_30m": sl, "offered_30m": offered})
            for c in q.get("callers") or []:
                waiting.append({**c, "queue": q["queue"]})
        waiting.sort(key=lambda c: -(c.get("waited") or 0))
        return {"at": now, "queues": queues, "waiting": waiting}

    def _row(self, agent_id: str, a: dict[str, Any]) -> dict[str, Any]:
        call_id = a.get("current_call") or a.get("ringing_call")
        return {
            **a,
            "handled_today": self.handled.get(agent_id, 0),
            "missed_today": self.missed.get(agent_id, 0),
            "call": dict(call) if call_id and (call := self.calls.get(call_id)) else None,  # a copy: the
            # book's dict changes in place, and the feed compares the next row with this one
        }

    def _abandoned_list(self) -> list[dict[str, Any]]:
        # copies: a caller name filled in later changes the book's dict, the feed compares with the last list
        # the newest 200 are among those sent last time and those added since (an entry is never
        # removed but by the day's roll, which clears both)
        entries = self.abandoned
        if self._abandoned_new:
            keys = set(self._abandoned_top).union(self._abandoned_new)
            self._abandoned_top = sorted(keys, key=lambda k: abandoned_order(entries[k]))[:MAX_ABANDONED]
            self._abandoned_new.clear()
        return [dict(entries[k]) for k in self._abandoned_top]


def abandoned_order(c: dict[str, Any]) -> tuple[float, str]:
    """The abandoned list's order: newest first, then by call id (the page's too: wallboard.js)."""
    return (-c["ended_at"], c["call_id"] or "")


# ------------------------------------------------------------ the feed
#: the parts of a wallboard a delta can carry; a part absent from a delta did not change
DELTA_LISTS = ("waiting", "abandoned")


@dataclass
class WallboardFeed:
    """Successive wallboard snapshots → numbered ``wallboard.update`` payloads (pure).

    :meth:`delta` compares a snapshot (:meth:`WallboardBook.snapshot` plus ``kpis``; a part
    left out of it — ``agents``, ``queues``, ``waiting``, ``abandoned``, ``kpis`` — is taken as
    unchanged) with the last one sent (the *baseline*) and returns only what changed:

    * ``seq`` (one more than the previous payload's), ``at``, ``full: false``;
    * ``agents`` / ``queues``: the changed or new entries, whole (an upsert by ``agent_id`` /
      ``queue``), ``agents_removed`` / ``queues_removed``: the ids gone;
    * ``waiting``, ``abandoned``, ``kpis``: the whole part, only when it changed — but the
      abandoned list (newest first, the newest 200) goes out as ``abandoned_changed`` (the calls
      added or changed, upserted by ``(call_id, ended_at)``) and ``abandoned_removed`` (the
      ``[call_id, ended_at]`` of those gone) when that is shorter; the page sorts by
      :func:`abandoned_order`. A scope's cut of it stays exact (``auth/scope.py``).

    :meth:`full` is the baseline itself with the same ``seq`` (``full: true``): what a page
    loads after it connected or saw a gap in the numbers (``GET /api/web/wallboard``), then
    applies every delta with a higher ``seq`` to it.
    """

    seq: int = 0
    at: float | None = None
    agents: dict[str, dict[str, Any]] = field(default_factory=dict)
    queues: dict[str, dict[str, Any]] = field(default_factory=dict)
    waiting: list[dict[str, Any]] = field(default_factory=list)
    abandoned: list[dict[str, Any]] = field(default_factory=list)
    kpis: Any = None

    def delta(self, snap: dict[str, Any]) -> dict[str, Any]:
        self.seq += 1
        self.at = snap["at"]
        out: dict[str, Any] = {"seq": self.seq, "at": self.at, "full": False}
        if snap.get("agents_partial"):  # only these rows may have changed (WallboardBook.changes)
            base_agents = self.agents
            changed_rows = []
            for e in snap["agents"]:
                if base_agents.get(e["agent_id"]) != e:
                    base_agents[e["agent_id"]] = e
                    changed_rows.append(e)
            gone = [k for k in snap.get("agents_removed") or () if base_agents.pop(k, None) is not None]
            if changed_rows:
                out["agents"] = changed_rows
            if gone:
                out["agents_removed"] = gone
            snap = {k: v for k, v in snap.items() if k not in ("agents", "agents_partial", "agents_removed")}
        for part, key in (("agents", "agent_id"), ("queues", "queue")):
            if part not in snap:
                continue
            base: dict[str, dict[str, Any]] = getattr(self, part)
            now = {e[key]: e for e in snap[part]}
            changed = [e for k, e in now.items() if base.get(k) != e]
            removed = [k for k in base if k not in now]
            if changed:
                out[part] = changed
            if removed:
                out[f"{part}_removed"] = removed
            setattr(self, part, now)
        if "waiting" in snap and snap["waiting"] != self.waiting:
            out["waiting"] = self.waiting = snap["waiting"]
        if "abandoned" in snap and snap["abandoned"] != self.abandoned:
            new, old = snap["abandoned"], self.abandoned
            # the calls added or changed, and those gone (fell off the newest 200), by their
            # (call_id, ended_at): not the whole list (issue 18 round five: it was 80 % of the bytes)
            before = {(e["call_id"], e["ended_at"]): e for e in old}
            changed = [e for e in new if before.get((e["call_id"], e["ended_at"])) != e]
            now_ids = {(e["call_id"], e["ended_at"]) for e in new}
            removed = [[c, t] for (c, t) in before if (c, t) not in now_ids]
            if new and len(changed) + len(removed) < len(new):
                if changed:
                    out["abandoned_changed"] = changed
                if removed:
                    out["abandoned_removed"] = removed
            else:
                out["abandoned"] = new
            self.abandoned = new
        if "kpis" in snap and snap["kpis"] != self.kpis:
            out["kpis"] = self.kpis = snap["kpis"]
        return out

    def full(self) -> dict[str, Any]:
        return {"seq": self.seq, "at": self.at, "full": True,
                "queues": list(self.queues.values()), "waiting": self.waiting,
                "agents": [self.agents[k] for k in sorted(self.agents)],
                "abandoned": self.abandoned, "kpis": self.kpis}


def apply_update(board: dict[str, Any] | None, update: dict[str, Any]) -> tuple[dict[str, Any] | None, bool]:
    """What the page does with a ``wallboard.update`` (``web/static/wallboard/wallboard.js``
    ``applyUpdate``, kept in step with it; the tests use this one): returns (the board after it,
    whether a full snapshot must be fetched because a delta was missed)."""
    if update.get("full"):
        return {**update, "agents": list(update["agents"]), "queues": list(update["queues"])}, False
    if board is None:
        return None, True
    if update["seq"] <= board["seq"]:
        return board, False  # already in the snapshot
    if update["seq"] != board["seq"] + 1:
        return board, True  # a gap: the numbers in between are lost
    out = dict(board, seq=update["seq"], at=update["at"])
    for part, key in (("agents", "agent_id"), ("queues", "queue")):
        if part not in update and f"{part}_removed" not in update:
            continue
        rows = {e[key]: e for e in board[part]}
        for k in update.get(f"{part}_removed") or ():
            rows.pop(k, None)
        for e in update.get(part) or ():
            rows[e[key]] = e
        out[part] = [rows[k] for k in sorted(rows)]
    for part in (*DELTA_LISTS, "kpis"):
        if part in update:
            out[part] = update[part]
    if "abandoned_changed" in update or "abandoned_removed" in update:
        rows = {(e["call_id"], e["ended_at"]): e for e in board["abandoned"]}
        for c, t in update.get("abandoned_removed") or ():
            rows.pop((c, t), None)
        for e in update.get("abandoned_changed") or ():
            rows[(e["call_id"], e["ended_at"])] = e
        out["abandoned"] = sorted(rows.values(), key=abandoned_order)
    return out, False
