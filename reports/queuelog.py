"""Asterisk ``queue_log`` → visits and agent spans (the same inputs the formulas take
from callcore's fact store), for a center migrating to callcore and as an independent
cross-check of callcore's own figures.

Format (``apps/app_queue.c`` ``ast_queue_log``): ``time|callid|queue|agent|EVENT|data1|data2|…``.
Read here: ENTERQUEUE (url|callerid|position), CONNECT (holdtime|bridged uniqueid|ringtime),
COMPLETECALLER / COMPLETEAGENT (holdtime|talktime|origposition), ABANDON
(position|origposition|waittime), EXITWITHTIMEOUT (position|origposition|waittime),
EXITEMPTY (same), EXITWITHKEY (key|position|origposition|waittime), RINGNOANSWER (ringtime),
RINGCANCELED (ringtime), TRANSFER / BLINDTRANSFER (exten|context|holdtime|calltime|origposition),
ATTENDEDTRANSFER (method|…|holdtime|calltime|origposition), ADDMEMBER / REMOVEMEMBER,
PAUSE / UNPAUSE / PAUSEALL / UNPAUSEALL (reason). Other events (CONFIGRELOAD, QUEUESTART,
SYSCOMPAT, AGENTLOGIN…) are counted and ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from reports.formulas import AgentSpan, Visit

_AGENT_NUM = re.compile(r"(\d+)\s*$")
_INTERFACE = re.compile(r"^[A-Za-z0-9]+/([^@/;]+)")  # Local/1001@agents/n, PJSIP/1001


def agent_id_of(member: str, mapping: dict[str, str] | None = None) -> str:
    """The callcore agent id of a queue_log member name: an explicit mapping first, else the
    device of an interface (``Local/1001@agents/n`` → ``1001``), else the trailing number of
    the name (``Agent 9101`` → ``9101``), else the name itself."""
    if mapping and member in mapping:
        return mapping[member]
    m = _INTERFACE.match(member) or _AGENT_NUM.search(member)
    return m.group(1) if m else member


@dataclass
class QueueLog:
    visits: list[Visit] = field(default_factory=list)
    spans: list[AgentSpan] = field(default_factory=list)
    lines: int = 0
    ignored_events: dict[str, int] = field(default_factory=dict)
    bad_lines: list[int] = field(default_factory=list)
    first_at: float | None = None
    last_at: float | None = None


class QueueLogError(ValueError):
    pass


def _num(s: str | None) -> float | None:
    try:
        return float(s) if s not in (None, "") else None
    except ValueError:
        return None


def parse_file(path: str | Path, *, agent_map: dict[str, str] | None = None, now: float | None = None) -> QueueLog:
    p = Path(path)
    if not p.is_file():
        raise QueueLogError(f"{p}: no such file")
    with p.open(encoding="utf-8", errors="replace") as fh:
        return parse(fh, agent_map=agent_map, now=now)


def parse(lines: Iterable[str], *, agent_map: dict[str, str] | None = None, now: float | None = None) -> QueueLog:
    """Parse queue_log lines. Open spans (still logged in or paused at the end) end at ``now``
    (default: the last line's time); visits without an outcome stay ``in_progress``."""
    out = QueueLog()
    open_visit: dict[tuple[str, str], Visit] = {}  # (callid, queue) -> visit
    seqs: dict[str, int] = {}
    by_call: dict[str, list[Visit]] = {}
    last_done: dict[str, Visit] = {}  # agent -> last visit it completed (for the wrap-up pause)
    member_of: dict[str, set[str]] = {}
    login_start: dict[str, float] = {}
    member_start: dict[tuple[str, str], float] = {}
    paused: dict[str, tuple[float, str | None]] = {}
    wrap_target: dict[str, Visit | None] = {}
    pending_talk: list[tuple[Visit, float]] = []

    def close_pause(agent: str, at: float) -> None:
        start, reason = paused.pop(agent)
        out.spans.append(AgentSpan(agent, "paused", start, at, reason))
        if reason == "wrapup":
            target = wrap_target.pop(agent, None)
            if target is not None:
                target.wrapup += max(0.0, at - start)

    for lineno, raw in enumerate(lines, 1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            continue
        parts = line.split("|")
        if len(parts) < 5:
            out.bad_lines.append(lineno)
            continue
        at = _num(parts[0])
        if at is None:
            out.bad_lines.append(lineno)
            continue
        out.lines += 1
        out.first_at = at if out.first_at is None else min(out.first_at, at)
        out.last_at = at if out.last_at is None else max(out.last_at, at)
        callid, queue, member, event = parts[1], parts[2], parts[3], parts[4]
        data = parts[5:]
        agent = agent_id_of(member, agent_map) if member not in ("NONE", "") else None
        d = lambda i: data[i] if i < len(data) else None  # noqa: E731

        if event == "ENTERQUEUE":
            seq = seqs.get(callid, 0)
            seqs[callid] = seq + 1
            for prev in by_call.get(callid, []):  # the call moved on: a previous visit's part ended
                if prev.answered_at is not None and not prev.transferred:
                    prev.transferred = True
                    pending_talk.append((prev, at - prev.answered_at))
            v = Visit(callid, seq, queue, at, d(1) or None)
            open_visit[(callid, queue)] = v
            by_call.setdefault(callid, []).append(v)
            out.visits.append(v)
            continue
        v = open_visit.get((callid, queue))
        if event == "CONNECT" and v is not None:
            v.answered_at, v.agent_id, v.outcome = at, agent, "answered"
            v.wait = _num(d(0)) if _num(d(0)) is not None else at - v.entered_at
        elif event in ("COMPLETECALLER", "COMPLETEAGENT") and v is not None:
            _complete(v, _num(d(1)))
            open_visit.pop((callid, queue), None)
            if agent:
                last_done[agent] = v
        elif event in ("TRANSFER", "BLINDTRANSFER", "ATTENDEDTRANSFER") and v is not None:
            _complete(v, _num(data[-2]) if len(data) >= 2 else None)
            v.transferred = True
            open_visit.pop((callid, queue), None)
            if agent:
                last_done[agent] = v
        elif event in ("ABANDON", "EXITWITHTIMEOUT", "EXITEMPTY", "EXITWITHKEY") and v is not None:
            wait_idx = 3 if event == "EXITWITHKEY" else 2
            v.outcome = {"ABANDON": "abandoned", "EXITWITHKEY": "overflowed"}.get(event, "timeout")  # type: ignore[assignment]
            w = _num(d(wait_idx))
            v.wait = w if w is not None else at - v.entered_at
            open_visit.pop((callid, queue), None)
        elif event == "RINGCANCELED" and v is not None:
            v.rang_agent = True
        elif event == "RINGNOANSWER" and v is not None:
            v.rang_agent = False
        elif event == "ADDMEMBER" and agent:
            queues = member_of.setdefault(agent, set())
            if not queues:
                login_start[agent] = at
            queues.add(queue)
            member_start.setdefault((agent, queue), at)
        elif event == "REMOVEMEMBER" and agent:
            queues = member_of.setdefault(agent, set())
            queues.discard(queue)
            if (agent, queue) in member_start:
                out.spans.append(AgentSpan(agent, "member", member_start.pop((agent, queue)), at, queue=queue))
            if not queues:
                if agent in paused:
                    close_pause(agent, at)
                if agent in login_start:
                    out.spans.append(AgentSpan(agent, "logged_in", login_start.pop(agent), at))
        elif event in ("PAUSE", "PAUSEALL") and agent:
            if agent not in paused:
                reason = d(0) or None
                paused[agent] = (at, reason)
                if reason == "wrapup":
                    wrap_target[agent] = last_done.get(agent)
        elif event in ("UNPAUSE", "UNPAUSEALL") and agent:
            if agent in paused:
                close_pause(agent, at)
        else:
            out.ignored_events[event] = out.ignored_events.get(event, 0) + 1
    if out.lines == 0 and out.bad_lines:
        raise QueueLogError(f"not a queue_log: no line of the form time|callid|queue|agent|EVENT (bad lines: "
                            f"{', '.join(map(str, out.bad_lines[:5]))})")
    for v, cap in pending_talk:  # Asterisk's talktime of a transferred-away visit runs to the final hangup
        if v.completed:
            v.talk = min(v.talk, max(0.0, cap))
    end = now if now is not None else out.last_at
    if end is not None:
        for agent, (start, reason) in list(paused.items()):
            out.spans.append(AgentSpan(agent, "paused", start, None if now is None else end, reason))
        for agent, start in login_start.items():
            out.spans.append(AgentSpan(agent, "logged_in", start, None if now is None else end))
        for (agent, queue), start in member_start.items():
            out.spans.append(AgentSpan(agent, "member", start, None if now is None else end, queue=queue))
    for v in out.visits:
        if v.answered_at is not None and not v.completed:
            v.outcome = "in_progress"
    return out


def _complete(v: Visit, talk: float | None) -> None:
    if v.answered_at is None:
        return
    v.talk = talk if talk is not None else 0.0
    v.completed = True
    v.outcome = "answered"
