"""The facts subscriber: CTI changes → facts (a ``ChangeDispatcher`` subscriber).

Synchronous and cheap (it runs inline with the AMI event): it reads the live
``CtiState`` it was given, derives facts and hands them to the sink
(``ReportService.record``), which applies them to the live counters at once and
writes them to the database in its own task. Every fact has an idempotent key, so
the same change seen twice, a resync, or the call's final re-derivation never
double-counts.

Agent state spans (logged in, paused with reason) and wrap-up spans are tracked
here while open and become facts when they close.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from reports.facts import (
    MISSED_RING_REASONS, Fact, callback_fact, disposition_fact, facts_for_call, prior_visit, qa_score_fact, recording_fact, ring_missed_fact, span_fact,
    visits_from_call, wrapup_fact,
)
from reports.formulas import AgentSpan

KINDS = (
    "call.queued", "call.answered", "call.missed", "call.abandoned", "call.transferred", "call.ended", "call.held", "call.unheld",
    "agent.updated", "agent.wrapup", "state.resynced", "asterisk.shutdown",
)


class FactsSubscriber:
    def __init__(self, state: Any, sink: Callable[[list[Fact]], None], *,
                 resolved_codes: Iterable[str] = ("resolved",)) -> None:
        self.state = state
        self.sink = sink
        self.resolved_codes = set(resolved_codes)
        self._login: dict[str, float] = {}
        self._pause: dict[str, tuple[float, str | None]] = {}
        self._member: dict[tuple[str, str], float] = {}  # (agent, queue) -> member since
        self._prior: dict[str, Any] = {}  # call id -> the visit a resync found it in (reports.facts.prior_visit)
        self._wrap: dict[str, tuple[str | None, str | None, float]] = {}  # agent -> (call, queue, start)

    # the dispatcher calls handler(change, now)
    def __call__(self, change: Any, now: float) -> None:
        kind = change.kind
        if kind in ("call.queued", "call.answered"):
            call = self.state.calls.get(change.call_id or "")
            if call is not None:
                self.sink(facts_for_call(call, now, final=False, prior=self._prior.get(call.id)))
        elif kind == "call.ended":
            call = self.state.ended.get(change.call_id or "")
            if call is not None:
                facts = facts_for_call(call, now, final=True, prior=self._prior.pop(call.id, None))
                if call.disposition:
                    facts.append(self._disposition(call, now))
                facts += _callback_done(call)
                self.sink(facts)
        elif kind == "call.missed" and change.agent_id and change.call_id:
            reason = (change.data or {}).get("reason")
            if reason in MISSED_RING_REASONS:  # a miss of the agent's, not a ring the caller or a colleague ended
                self.sink([ring_missed_fact(change.call_id, change.agent_id, change.queue, reason, now)])
        elif kind == "agent.wrapup" and change.agent_id:
            self._close_wrap(change.agent_id, now)
            self._wrap[change.agent_id] = (change.call_id, change.queue, now)
        elif kind == "agent.updated" and change.agent_id:
            self._agent(change.agent_id, now)
        elif kind in ("state.resynced", "asterisk.shutdown"):
            if kind == "state.resynced":  # calls that queued / were answered while callcore was away
                for call in list(self.state.calls.values()):
                    if call.id not in self._prior:
                        prior = prior_visit(call)
                        if prior is not None:
                            self._prior[call.id] = prior
                    self.sink(facts_for_call(call, now, final=False, prior=self._prior.get(call.id)))
            known = set(self._login) | set(self._pause) | set(self._wrap) | {a for a, _ in self._member}
            for agent_id in set(self.state.agents) | known:
                self._agent(agent_id, now)

    def _agent(self, agent_id: str, now: float) -> None:
        agent = self.state.agents.get(agent_id)
        out: list[Fact] = []
        logged = bool(agent is not None and agent.logged_in)
        if logged and agent_id not in self._login:
            self._login[agent_id] = now
        elif not logged and agent_id in self._login:
            out.append(span_fact(AgentSpan(agent_id, "logged_in", self._login.pop(agent_id), now)))
        paused = bool(agent is not None and agent.paused and logged)
        reason = agent.pause_reason if paused and agent is not None else None
        cur = self._pause.get(agent_id)
        if cur is not None and (not paused or cur[1] != reason):
            out.append(span_fact(AgentSpan(agent_id, "paused", cur[0], now, cur[1])))
            del self._pause[agent_id]
            cur = None
        if paused and cur is None:
            self._pause[agent_id] = (now, reason)
        queues = set(agent.queues) if agent is not None else set()
        for q in queues:
            self._member.setdefault((agent_id, q), now)
        for (a, q) in [k for k in self._member if k[0] == agent_id and k[1] not in queues]:
            out.append(span_fact(AgentSpan(a, "member", self._member.pop((a, q)), now, queue=q)))
        if agent_id in self._wrap and (agent is None or agent.wrapup_until is None):
            self._close_wrap(agent_id, now)
        if out:
            self.sink(out)

    def _close_wrap(self, agent_id: str, now: float) -> None:
        w = self._wrap.pop(agent_id, None)
        if w is None:
            return
        call_id, queue, start = w
        call = self.state.get_call(call_id) if call_id else None
        anchor = start
        if call is not None:
            mine = [v for v in visits_from_call(call, now, self._prior.get(call.id)) if v.agent_id == agent_id]
            if mine:
                anchor = mine[-1].entered_at
                queue = queue or mine[-1].queue
        facts = [wrapup_fact(call_id, agent_id, start, now, queue, anchor_at=anchor)]
        if call is not None and call.disposition:
            facts.append(self._disposition(call, now))  # set during wrap-up (after the call's end)
        self.sink(facts)

    def _disposition(self, call: Any, now: float) -> Fact:
        anchor = call.queued_at if call.queued_at is not None else call.started_at
        return disposition_fact(call.id, call.agent_id, call.disposition, call.disposition in self.resolved_codes,
                                now, anchor_at=anchor)

    def open_spans(self, now: float) -> list[AgentSpan]:
        """Spans still open (for reports that include the present)."""
        out = [AgentSpan(a, "logged_in", s, None) for a, s in self._login.items()]
        out += [AgentSpan(a, "paused", s, None, r) for a, (s, r) in self._pause.items()]
        out += [AgentSpan(a, "member", s, None, queue=q) for (a, q), s in self._member.items()]
        return out

    def close_all(self, now: float) -> None:
        """On shutdown: every open span ends now (a restart's resync opens them again)."""
        for agent_id in list(self._wrap):
            self._close_wrap(agent_id, now)
        out = [span_fact(AgentSpan(a, "logged_in", s, now)) for a, s in self._login.items()]
        out += [span_fact(AgentSpan(a, "paused", s, now, r)) for a, (s, r) in self._pause.items()]
        out += [span_fact(AgentSpan(a, "member", s, now, queue=q)) for (a, q), s in self._member.items()]
        self._login.clear()
        self._pause.clear()
        self._member.clear()
        if out:
            self.sink(out)


def _callback_done(call: Any) -> list[Fact]:
    """A callback call (click-to-call with a callback id) the customer answered: the callback is done."""
    events = getattr(call, "events", None) or []
    ids = [e.get("callback_id") for e in events if e.get("event") == "click_to_call" and e.get("callback_id")]
    answered = [e for e in events if e.get("event") == "customer_answered"]
    if not ids or not answered:
        return []
    return [callback_fact(str(ids[0]), "completed", float(answered[0]["at"]), None, call.caller_num)]


class QualityFacts:
    """The recording package's and QA's observers → facts (``RecordingService.observer``,
    ``QaService.observer``; wired in callcore/wiring.py). Neither package imports reports."""

    def __init__(self, sink: Callable[[list[Fact]], None]) -> None:
        self.sink = sink

    def recording(self, stage: str, info: dict[str, Any]) -> None:
        self.sink([recording_fact(
            info["call_id"], info["status"], required=bool(info.get("required")), at=float(info["at"]),
            call_started_at=float(info["call_started_at"]), agent_id=info.get("agent_id"), queue=info.get("queue"),
            direction=info.get("direction"), reason=info.get("reason"),
        )])

    def qa(self, info: dict[str, Any]) -> None:
        self.sink([qa_score_fact(
            info["evaluation_id"], int(info["revision"]), agent_id=info["agent_id"], form_id=info["form_id"],
            total=info.get("total"), critical_failed=bool(info.get("critical_failed")), at=float(info["at"]),
            call_started_at=info.get("call_started_at"), call_id=info.get("call_id"), queue=info.get("queue"),
        )])
