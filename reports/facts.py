"""Contact-center facts: what happened, once, with an idempotent key.

A fact is appended once and never updated; its ``key`` is deterministic (the
call's Linkedid, the visit's sequence number, the span's start…), so writing
the same fact again — after an AMI reconnect and resync, a restart, a replay —
is a no-op. Reports and live counters *fold* facts back into
:class:`reports.formulas.Visit` / :class:`~reports.formulas.AgentSpan` /
IVR sessions / survey answers and run the same formulas.

This module is pure: :func:`visits_from_call` reads a CTI ``Call`` (its event
log) and :func:`facts_for_call` turns it into facts; :func:`fold_visits` is
the way back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from reports.formulas import AgentSpan, Contact, IvrSession, QaScore, RecordingOutcome, SurveyAnswer, Visit

#: a caller still connected this long after app_queue said "abandoned" went on in the
#: dialplan (voicemail, IVR): Asterisk's queue *timeout* reaches AMI as QueueCallerAbandon
#: + QueueCallerLeave (queue_log says EXITWITHTIMEOUT), a real abandon hangs up at once
TIMEOUT_AFTER_ABANDON_SECONDS = 3.0


@dataclass(frozen=True)
class Fact:
    key: str
    kind: str
    at: float  # when it happened (epoch seconds)
    anchor_at: float  # the time it is reported at (a visit: when the caller entered the queue)
    call_id: str | None = None
    queue: str | None = None
    agent_id: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)

    def to_row(self) -> dict[str, Any]:
        return {
            "key": self.key, "kind": self.kind, "at": self.at, "anchor_at": self.anchor_at,
            "call_id": self.call_id, "queue": self.queue, "agent_id": self.agent_id, "data": dict(self.data),
        }

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "Fact":
        return cls(row["key"], row["kind"], row["at"], row["anchor_at"], row.get("call_id"), row.get("queue"),
                   row.get("agent_id"), row.get("data") or {})


# ------------------------------------------------------------ from a CTI call
def _ev(call: Any) -> list[dict[str, Any]]:
    return list(getattr(call, "events", None) or [])


def prior_visit(call: Any) -> Visit | None:
    """The visit a resync found a call in (it queued, or was answered, while callcore was not
    connected): from the call as the resync rebuilt it. Keep it: later events change the call."""
    if any(e.get("event") == "queued" for e in _ev(call)) or not getattr(call, "queue", None):
        return None
    # waiting since the QueueEntry's Wait, or already talking (entered no later than the call started)
    entered = call.queued_at if getattr(call, "queued_at", None) is not None else call.started_at
    v = Visit(call.id, 0, call.queue, float(entered), getattr(call, "caller_num", None))
    if getattr(call, "answered_at", None) is not None:
        v.answered_at, v.agent_id, v.outcome = float(call.answered_at), call.agent_id, "answered"
        v.wait = max(0.0, v.answered_at - v.entered_at)
    return v


def visits_from_call(call: Any, now: float, prior: Visit | None = None) -> list[Visit]:
    """The queue visits of one CTI call, from its event log (``Call.events``), as far as they
    are known at ``now``. Waits and talk prefer Asterisk's own numbers (AgentConnect
    HoldTime, AgentComplete TalkTime, QueueCallerAbandon HoldTime); a visit the call left
    for another (transfer, overflow) ends when the next one starts or the transfer happened.
    ``prior``: the visit a resync found the call in (:func:`prior_visit`), visit 0; without
    it, a call with no queue event is taken as the resync left it."""
    visits: list[Visit] = []
    events = _ev(call)
    ended_at = getattr(call, "ended_at", None)
    caller = getattr(call, "caller_num", None)
    holds: list[tuple[float, float | None]] = []
    abandon_at: dict[int, float] = {}
    transfer_at: dict[int, float] = {}
    left_at: dict[int, float] = {}
    talk_reported: dict[int, float] = {}
    first = prior if prior is not None else prior_visit(call)
    if first is not None:
        from dataclasses import replace

        visits.append(replace(first))
    for e in events:
        kind, at = e.get("event"), float(e.get("at", 0.0))
        cur = visits[-1] if visits else None
        if kind == "queued":
            if cur is not None and cur.answered_at is not None and not cur.transferred:
                cur.transferred = True
                transfer_at.setdefault(cur.seq, at)
            visits.append(Visit(call.id, len(visits), e.get("queue") or "", at, caller))
        elif cur is None:
            continue
        elif kind == "answered" and cur.answered_at is None and cur.outcome == "in_progress":
            cur.answered_at, cur.agent_id, cur.outcome = at, e.get("agent_id"), "answered"
            hold_time = e.get("hold_time")
            cur.wait = float(hold_time) if hold_time is not None else max(0.0, at - cur.entered_at)
        elif kind == "abandoned" and cur.answered_at is None:
            cur.outcome = "abandoned"
            hold_time = e.get("hold_time")
            cur.wait = float(hold_time) if hold_time is not None else max(0.0, at - cur.entered_at)
            abandon_at[cur.seq] = at
        elif kind == "left_queue" and cur.answered_at is None and cur.outcome == "in_progress":
            left_at[cur.seq] = at  # left unanswered without an abandon: timeout / moved on
        elif kind == "agent_called" and cur.answered_at is None:
            cur.rang_agent = True
        elif kind == "ring_no_answer" and cur.answered_at is None:
            cur.rang_agent = False
        elif kind == "completed":
            for v in reversed(visits):
                if v.agent_id == e.get("agent_id") and v.seq not in talk_reported:
                    if e.get("talk_time") is not None:
                        talk_reported[v.seq] = float(e["talk_time"])
                    break
        elif kind == "transferred" and cur.answered_at is not None:
            cur.transferred = True
            transfer_at.setdefault(cur.seq, at)
        elif kind == "hold":
            holds.append((at, None))
        elif kind == "unhold" and holds and holds[-1][1] is None:
            holds[-1] = (holds[-1][0], at)
    end = ended_at
    for i, v in enumerate(visits):
        nxt = visits[i + 1].entered_at if i + 1 < len(visits) else None
        if v.answered_at is None:
            if v.outcome == "abandoned":
                left = abandon_at.get(v.seq, v.entered_at)
                if end is not None and end - left >= TIMEOUT_AFTER_ABANDON_SECONDS and nxt is None:
                    v.outcome = "timeout"
            elif nxt is not None:  # moved on unanswered (callcore's overflow redirect)
                v.outcome = "overflowed"
                v.wait = max(0.0, left_at.get(v.seq, nxt) - v.entered_at)
            elif v.seq in left_at:  # QueueCallerLeave alone: Queue() returned (timeout) and the call went on
                v.outcome = "timeout"
                v.wait = max(0.0, left_at[v.seq] - v.entered_at)
            elif end is not None:
                v.outcome = "abandoned"  # hung up before any abandon event was seen (e.g. lost)
                v.wait = max(0.0, end - v.entered_at)
            continue
        stop = transfer_at.get(v.seq)
        if stop is None:
            stop = nxt if nxt is not None else end
        if stop is None:
            continue  # still talking
        measured = max(0.0, stop - v.answered_at)
        reported = talk_reported.get(v.seq)
        v.talk = min(reported, measured) if reported is not None and v.transferred else (
            reported if reported is not None else measured)
        v.hold = sum(
            max(0.0, min(h_end if h_end is not None else stop, stop) - max(h_start, v.answered_at))
            for h_start, h_end in holds
        )
        v.hold = min(v.hold, v.talk)
        v.completed = True
    return visits


def visit_facts(v: Visit) -> list[Fact]:
    base = f"v:{v.call_id}:{v.seq}"
    out = [Fact(f"{base}:entered", "visit.entered", v.entered_at, v.entered_at, v.call_id, v.queue, None,
                {"seq": v.seq, "caller": v.caller})]
    if v.answered_at is not None:
        out.append(Fact(f"{base}:answered", "visit.answered", v.answered_at, v.entered_at, v.call_id, v.queue,
                        v.agent_id, {"seq": v.seq, "wait": v.wait}))
        if v.completed:
            out.append(Fact(f"{base}:completed", "visit.completed", v.answered_at + v.talk, v.entered_at, v.call_id,
                            v.queue, v.agent_id, {"seq": v.seq, "talk": v.talk, "hold": v.hold,
                                                  "transferred": v.transferred}))
    elif v.outcome in ("abandoned", "timeout", "overflowed"):
        out.append(Fact(f"{base}:left", "visit.left", v.entered_at + (v.wait or 0.0), v.entered_at, v.call_id,
                        v.queue, None, {"seq": v.seq, "outcome": v.outcome, "wait": v.wait,
                                        "rang_agent": v.rang_agent, "caller": v.caller}))
    return out


def facts_for_call(call: Any, now: float, *, final: bool, prior: Visit | None = None) -> list[Fact]:
    """Every fact a CTI call implies so far. Before the call ended (``final`` False) only
    the facts that cannot change any more: entered, answered. At the end: all of them
    (visits left, completed; the call's end with its outcome and disposition)."""
    out: list[Fact] = []
    visits = visits_from_call(call, now, prior)
    for v in visits:
        for f in visit_facts(v):
            if final or f.kind in ("visit.entered", "visit.answered"):
                out.append(f)
    if final and getattr(call, "ended_at", None) is not None:
        first = visits[0].entered_at if visits else call.started_at  # FCR: when the contact first queued
        out.append(Fact(f"c:{call.id}:ended", "call.ended", float(call.ended_at), float(call.started_at), call.id,
                        call.queue, call.agent_id, {"outcome": call.outcome, "caller": call.caller_num,
                                                    "caller_name": getattr(call, "caller_name", None),
                                                    "customer": (getattr(call, "customer", None) or {}).get("id"),
                                                    "direction": call.direction, "first_queued_at": first}))
    return out


#: the reasons a ring stopped that count as the agent missing the call (CTI's ``call.missed``:
#: the agent did not pick up in the queue's ring time, or turned it down); a ring stopped because
#: the caller gave up or another agent answered is not the agent's miss
MISSED_RING_REASONS = ("no_answer", "rejected")


def ring_missed_fact(call_id: str, agent_id: str, queue: str | None, reason: str, at: float) -> Fact:
    """An agent was rung for a call and missed it (``reason``: no_answer | rejected); one fact per
    ring (an agent rung twice for the same caller and missing both has two)."""
    if reason not in MISSED_RING_REASONS:
        raise ValueError(f"a missed ring's reason is one of {', '.join(MISSED_RING_REASONS)}")
    return Fact(f"rm:{call_id}:{agent_id}:{at:.3f}", "ring.missed", at, at, call_id, queue, agent_id, {"reason": reason})


def disposition_fact(call_id: str, agent_id: str | None, code: str, resolved: bool | None, at: float,
                     anchor_at: float | None = None) -> Fact:
    return Fact(f"d:{call_id}", "disposition", at, anchor_at if anchor_at is not None else at, call_id, None,
                agent_id, {"code": code, "resolved": resolved})


def wrapup_fact(call_id: str | None, agent_id: str, start: float, end: float, queue: str | None,
                anchor_at: float | None = None) -> Fact:
    """A wrap-up span; ``anchor_at`` = when the caller entered the queue of the visit it follows,
    so it is reported with that visit."""
    return Fact(f"w:{call_id or '-'}:{agent_id}:{start:.3f}", "wrapup", end, anchor_at if anchor_at is not None else start,
                call_id, queue, agent_id,
                {"start": start, "end": end, "seconds": max(0.0, end - start)})


def span_fact(span: AgentSpan) -> Fact:
    assert span.end is not None
    state = span.state if span.queue is None else f"{span.state}:{span.queue}"
    return Fact(f"a:{span.agent_id}:{state}:{span.start:.3f}", f"agent.{span.state}", span.end, span.start,
                None, span.queue, span.agent_id, {"start": span.start, "end": span.end, "reason": span.reason})


def ivr_step_fact(session_id: str, seq: int, flow: str, node: str, at: float, call_id: str | None = None) -> Fact:
    return Fact(f"i:{session_id}:{seq}", "ivr.step", at, at, call_id, None, None,
                {"session": session_id, "seq": seq, "flow": flow, "node": node})


def ivr_end_fact(session_id: str, flow: str, outcome: str, started_at: float, at: float,
                 call_id: str | None = None) -> Fact:
    return Fact(f"i:{session_id}:end", "ivr.ended", at, started_at, call_id, None, None,
                {"session": session_id, "flow": flow, "outcome": outcome})


def survey_fact(call_id: str, question: str, value: int, at: float, agent_id: str | None = None,
                queue: str | None = None) -> Fact:
    return Fact(f"s:{call_id}:{question}", "survey.answer", at, at, call_id, queue, agent_id,
                {"question": question, "value": int(value)})


def callback_fact(callback_id: str, what: str, at: float, queue: str | None = None, caller: str | None = None) -> Fact:
    if what not in ("requested", "completed"):
        raise ValueError("callback facts are 'requested' or 'completed'")
    return Fact(f"cb:{callback_id}:{what}", f"callback.{what}", at, at, None, queue, None,
                {"callback": callback_id, "caller": caller})


RECORDING_STATUSES = ("pending", "ready", "failed", "discarded")


def recording_fact(call_id: str, status: str, *, required: bool, at: float, call_started_at: float,
                   agent_id: str | None = None, queue: str | None = None, direction: str | None = None,
                   reason: str | None = None) -> Fact:
    """The recording's fate, as the recording package decides it: at the call's end
    (``pending`` — to be processed — or ``discarded``), then once processed (``ready`` /
    ``failed``). One key per stage, so the later stage wins when folding."""
    if status not in RECORDING_STATUSES:
        raise ValueError(f"recording status must be one of {', '.join(RECORDING_STATUSES)}")
    stage = "processed" if status in ("ready", "failed") else "decided"
    return Fact(f"rec:{call_id}:{stage}", f"recording.{stage}", at, call_started_at, call_id, queue, agent_id,
                {"status": status, "required": bool(required), "direction": direction, "reason": reason})


def qa_score_fact(evaluation_id: str, revision: int, *, agent_id: str, form_id: str, total: float | None,
                  critical_failed: bool, at: float, call_started_at: float | None, call_id: str | None = None,
                  queue: str | None = None) -> Fact:
    """An evaluation's score at one revision (submitted, revised, dispute resolved with a change),
    reported with the evaluated call (``call_started_at``; the score's own time when unknown)."""
    return Fact(f"qa:{evaluation_id}:{int(revision)}", "qa.scored", at,
                call_started_at if call_started_at is not None else at, call_id, queue, agent_id,
                {"evaluation": str(evaluation_id), "revision": int(revision), "form": form_id,
                 "total": None if total is None else float(total), "critical_failed": bool(critical_failed)})


RECORDING_KINDS = ("recording.decided", "recording.processed")
QA_KINDS = ("qa.scored",)


# ------------------------------------------------------------------- folding
def unique(facts: Iterable[Fact]) -> list[Fact]:
    """One fact per key (the store guarantees it; a caller merging sources may not)."""
    return list({f.key: f for f in facts}.values())


class VisitFolder:
    """Folds ``visit.*`` and ``wrapup`` facts into visits one fact at a time, in any order
    (a fact that comes before its visit's ``visit.entered`` waits for it), duplicates ignored.
    :meth:`add` returns the visits the fact changed (the live counters update just those)."""

    def __init__(self) -> None:
        self.visits: dict[tuple[str, int], Visit] = {}
        self._keys: set[str] = set()
        self._early: dict[tuple[str, int], list[Fact]] = {}  # facts whose visit was not entered yet
        self._early_wraps: dict[tuple[str, str], list[Fact]] = {}
        self._answered_by: dict[tuple[str, str], list[Visit]] = {}  # (call, agent) -> its visits

    def add(self, f: Fact) -> list[Visit]:
        if f.key in self._keys or not (f.kind == "wrapup" or f.kind.startswith("visit.")):
            return []
        self._keys.add(f.key)
        if f.kind == "wrapup":
            return self._wrapup(f)
        key = (f.call_id or "", int(f.data.get("seq", 0)))
        if f.kind == "visit.entered":
            v = self.visits.setdefault(key, Visit(key[0], key[1], f.queue or "", f.anchor_at, f.data.get("caller")))
            for early in self._early.pop(key, []):
                self._apply(v, early)
            self._answered(v)
            return [v]
        v = self.visits.get(key)
        if v is None:
            self._early.setdefault(key, []).append(f)
            return []
        self._apply(v, f)
        self._answered(v)
        return [v]

    def _apply(self, v: Visit, f: Fact) -> None:
        if f.kind == "visit.answered":
            v.answered_at, v.agent_id, v.wait = f.at, f.agent_id, f.data.get("wait")
        elif f.kind == "visit.completed":
            v.talk, v.hold = float(f.data.get("talk") or 0.0), float(f.data.get("hold") or 0.0)
            v.transferred, v.completed = bool(f.data.get("transferred")), True
        elif f.kind == "visit.left":
            v.outcome = f.data.get("outcome") or "abandoned"
            v.wait, v.rang_agent = f.data.get("wait"), bool(f.data.get("rang_agent"))
        if v.answered_at is not None:
            v.outcome = "answered" if v.completed else "in_progress"

    def _answered(self, v: Visit) -> None:
        """Register an answered visit for wrap-ups; apply wrap-ups that came before it."""
        if not v.agent_id:
            return
        ca = (v.call_id, v.agent_id)
        mine = self._answered_by.setdefault(ca, [])
        if v not in mine:
            mine.append(v)
        for w in self._early_wraps.pop(ca, []):
            v.wrapup += float(w.data.get("seconds") or 0.0)

    def _wrapup(self, w: Fact) -> list[Visit]:
        ca = (w.call_id or "", w.agent_id or "")
        cands = self._answered_by.get(ca)
        if not cands:
            self._early_wraps.setdefault(ca, []).append(w)
            return []
        v = max(cands, key=lambda v: v.seq)
        v.wrapup += float(w.data.get("seconds") or 0.0)
        return [v]


def fold_visits(facts: Iterable[Fact]) -> list[Visit]:
    """Visits back from ``visit.*`` and ``wrapup`` facts (any order, duplicates harmless)."""
    folder = VisitFolder()
    for f in facts:
        folder.add(f)
    return sorted(folder.visits.values(), key=lambda v: (v.entered_at, v.call_id, v.seq))


SPAN_KINDS = ("agent.logged_in", "agent.paused", "agent.member")


def fold_spans(facts: Iterable[Fact]) -> list[AgentSpan]:
    out = []
    for f in unique(facts):
        if f.kind in SPAN_KINDS:
            out.append(AgentSpan(f.agent_id or "", f.kind.split(".", 1)[1], float(f.data["start"]),  # type: ignore[arg-type]
                                 float(f.data["end"]), f.data.get("reason"), f.queue))
    return out


def fold_ivr(facts: Iterable[Fact]) -> list[IvrSession]:
    steps: dict[str, list[tuple[int, str, str, float]]] = {}
    ends: dict[str, Fact] = {}
    for f in unique(facts):
        if f.kind == "ivr.step":
            steps.setdefault(f.data["session"], []).append((int(f.data["seq"]), f.data["node"], f.data["flow"], f.at))
        elif f.kind == "ivr.ended":
            ends[f.data["session"]] = f
    out = []
    for sid in sorted(set(steps) | set(ends)):
        ss = sorted(steps.get(sid, []))
        end = ends.get(sid)
        flow = end.data["flow"] if end is not None else ss[0][2]
        started = ss[0][3] if ss else (end.anchor_at if end is not None else 0.0)
        out.append(IvrSession(sid, flow, [s[1] for s in ss], end.data["outcome"] if end is not None else "in_progress",
                              started))
    return out


def fold_surveys(facts: Iterable[Fact], agent_of: Mapping[str, tuple[str | None, str | None]] | None = None) -> list[SurveyAnswer]:
    """Survey answers, joined to the agent (and queue) who handled the call (``agent_of``:
    call id → (agent, queue), from the call's last answered visit) when the answer lacks it."""
    agent_of = agent_of or {}
    out = []
    for f in unique(facts):
        if f.kind == "survey.answer":
            agent, queue = agent_of.get(f.call_id or "", (None, None))
            out.append(SurveyAnswer(f.call_id or "", f.data["question"], int(f.data["value"]),
                                    f.agent_id or agent, f.queue or queue, f.at))
    return out


def fold_contacts(facts: Iterable[Fact], resolved_codes: Iterable[str] = ("resolved",)) -> list[Contact]:
    """FCR contacts: one per ended inbound call that reached a queue, with the disposition's and
    the survey's say on resolution."""
    codes = set(resolved_codes)
    ended: dict[str, Fact] = {}
    disp: dict[str, Fact] = {}
    survey: dict[str, int] = {}
    for f in facts:
        if f.kind == "call.ended" and f.data.get("direction", "inbound") == "inbound" and f.queue:
            ended[f.call_id or ""] = f
        elif f.kind == "disposition":
            disp[f.call_id or ""] = f
        elif f.kind == "survey.answer" and f.data.get("question") == "resolved":
            survey[f.call_id or ""] = int(f.data["value"])
    out = []
    for cid, f in ended.items():
        d = disp.get(cid)
        dres = None
        if d is not None:
            dres = d.data.get("resolved")
            if dres is None:
                dres = d.data.get("code") in codes
        s = survey.get(cid)
        # the same customer (CRM record) calling from another number is a repeat too
        who = f"customer:{f.data['customer']}" if f.data.get("customer") is not None else f.data.get("caller")
        out.append(Contact(cid, who, float(f.data.get("first_queued_at") or f.anchor_at),
                           f.agent_id, dres, None if s not in (1, 2) else s == 1))
    return sorted(out, key=lambda c: c.at)


def fold_recordings(facts: Iterable[Fact]) -> list[RecordingOutcome]:
    """One outcome per call: the processed stage over the decided one (a ``required`` flag is
    the decision's)."""
    decided: dict[str, Fact] = {}
    processed: dict[str, Fact] = {}
    for f in facts:
        if f.kind == "recording.decided":
            decided[f.call_id or ""] = f
        elif f.kind == "recording.processed":
            processed[f.call_id or ""] = f
    out = []
    for cid in sorted(set(decided) | set(processed)):
        d, p = decided.get(cid), processed.get(cid)
        base = d or p
        assert base is not None
        required = bool(d.data.get("required")) if d is not None else True  # processed: it was recorded
        status = (p or d).data.get("status") or "pending"  # type: ignore[union-attr]
        direction = (d or p).data.get("direction") or "inbound"  # type: ignore[union-attr]
        out.append(RecordingOutcome(cid, required, status, base.agent_id, base.queue, base.anchor_at, direction))
    return out


def fold_scores(facts: Iterable[Fact]) -> list[QaScore]:
    return [QaScore(str(f.data["evaluation"]), int(f.data["revision"]), f.call_id, f.agent_id or "",
                    str(f.data.get("form") or ""), f.data.get("total"), bool(f.data.get("critical_failed")),
                    f.queue, f.anchor_at)
            for f in unique(facts) if f.kind == "qa.scored"]
