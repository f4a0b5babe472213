"""Contact-center metrics: pure functions over queue visits, agent spans, IVR
sessions and survey answers. No I/O, no clock (``now`` is an argument).

Every formula here is defined in ``docs/metrics.md``; a change here is a
change there. Inputs come from two independent sources that must agree: the
fact store (``reports.facts``, written from the CTI changes) and an Asterisk
``queue_log`` (``reports.queuelog``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Iterable, Literal, Sequence

Outcome = Literal["answered", "abandoned", "timeout", "overflowed", "in_progress"]

#: the four service-level formulas (ICMI); ``T`` is the queue's threshold
SL_FORMULAS: dict[str, str] = {
    "answered": "answered within T / answered",
    "offered": "answered within T / (answered + abandoned)",
    "abandoned_in_t_positive": "(answered within T + abandoned within T) / (answered + abandoned)",
    "abandoned_after_t": "answered within T / (answered + abandoned after T)",
}
DEFAULT_SL_FORMULA = "offered"


@dataclass(frozen=True)
class QueueConfig:
    """What a queue's report depends on (per queue; ``reports.service`` reads it from settings)."""

    service_level_seconds: float = 20.0
    sl_formula: str = DEFAULT_SL_FORMULA
    short_abandon_seconds: float = 5.0
    exclude_short_abandons: bool = True

    def __post_init__(self) -> None:
        if self.sl_formula not in SL_FORMULAS:
            raise ValueError(f"unknown service-level formula {self.sl_formula!r}; one of {', '.join(SL_FORMULAS)}")
        if self.service_level_seconds < 0 or self.short_abandon_seconds < 0:
            raise ValueError("service-level and short-abandon thresholds must be >= 0 seconds")


@dataclass
class Visit:
    """One caller's stay in one queue (a call that is transferred to another queue has two)."""

    call_id: str
    seq: int  # 0, 1, … in the order the call entered queues
    queue: str
    entered_at: float
    caller: str | None = None
    outcome: Outcome = "in_progress"
    wait: float | None = None  # entered → answered / left the queue
    answered_at: float | None = None
    agent_id: str | None = None
    talk: float = 0.0  # connected time, hold included (as Asterisk's TalkTime)
    hold: float = 0.0  # time the caller spent on hold while connected
    wrapup: float = 0.0  # the agent's after-call work for this visit
    completed: bool = False  # the agent's part is over (talk final)
    transferred: bool = False  # the agent passed the call on (blind, attended, to a queue)
    rang_agent: bool = False  # an agent's phone was ringing when the caller abandoned

    @property
    def handle(self) -> float:
        """talk (without hold) + hold + wrap-up = connected time + wrap-up."""
        return self.talk + self.wrapup


@dataclass
class QueueMetrics:
    queue: str
    offered: int = 0
    answered: int = 0
    abandoned: int = 0  # short abandons excluded when the queue excludes them
    short_abandoned: int = 0
    abandoned_ringing: int = 0  # of ``abandoned``: while an agent's phone rang
    timeouts: int = 0
    overflowed: int = 0  # left unanswered for another queue (offered here, counted there again)
    in_progress: int = 0
    answered_in_sl: int = 0
    abandoned_in_sl: int = 0
    wait_answered_total: float = 0.0
    wait_unanswered_total: float = 0.0  # abandoned (not short) and timed-out callers' waits
    longest_wait: float = 0.0
    handled: int = 0  # answered visits whose agent part is over (AHT's denominator)
    talk_total: float = 0.0
    hold_total: float = 0.0
    wrapup_total: float = 0.0
    transfers: int = 0
    sl_seconds: float = 20.0
    sl_formula: str = DEFAULT_SL_FORMULA

    @property
    def abandon_rate(self) -> float | None:
        denom = self.answered + self.abandoned + self.timeouts
        return _pct(self.abandoned, denom)

    @property
    def asa(self) -> float | None:
        return self.wait_answered_total / self.answered if self.answered else None

    @property
    def aht(self) -> float | None:
        return (self.talk_total + self.wrapup_total) / self.handled if self.handled else None

    @property
    def service_level(self) -> float | None:
        abandoned = self.abandoned + self.timeouts
        f = self.sl_formula
        if f == "answered":
            return _pct(self.answered_in_sl, self.answered)
        if f == "offered":
            return _pct(self.answered_in_sl, self.answered + abandoned)
        if f == "abandoned_in_t_positive":
            return _pct(self.answered_in_sl + self.abandoned_in_sl, self.answered + abandoned)
        return _pct(self.answered_in_sl, self.answered + abandoned - self.abandoned_in_sl)

    SUMS = ("offered", "answered", "abandoned", "short_abandoned", "abandoned_ringing", "timeouts", "overflowed",
            "in_progress", "answered_in_sl", "abandoned_in_sl", "wait_answered_total", "wait_unanswered_total",
            "handled", "talk_total", "hold_total", "wrapup_total", "transfers")

    def add(self, other: "QueueMetrics", sign: int = 1) -> None:
        """Merge counts of the same queue (interval rollups → a longer period); ``sign=-1`` takes
        a visit's old contribution out again (live counters). The longest wait only grows."""
        for name in self.SUMS:
            setattr(self, name, getattr(self, name) + sign * getattr(other, name))
        self.longest_wait = max(self.longest_wait, other.longest_wait)

    def to_dict(self) -> dict[str, object]:
        talk_only = self.talk_total - self.hold_total
        return {
            "queue": self.queue,
            "offered": self.offered,
            "answered": self.answered,
            "abandoned": self.abandoned,
            "short_abandoned": self.short_abandoned,
            "abandoned_ringing": self.abandoned_ringing,
            "timeouts": self.timeouts,
            "overflowed": self.overflowed,
            "in_progress": self.in_progress,
            "abandon_rate_pct": _r(self.abandon_rate),
            "asa_seconds": _r(self.asa),
            "service_level_pct": _r(self.service_level),
            "service_level_seconds": self.sl_seconds,
            "service_level_formula": self.sl_formula,
            "answered_in_sl": self.answered_in_sl,
            "aht_seconds": _r(self.aht),
            "avg_talk_seconds": _r(talk_only / self.handled if self.handled else None),
            "avg_hold_seconds": _r(self.hold_total / self.handled if self.handled else None),
            "avg_wrapup_seconds": _r(self.wrapup_total / self.handled if self.handled else None),
            "longest_wait_seconds": _r(self.longest_wait),
            "handled": self.handled,
            "transfers": self.transfers,
        }


def _pct(num: float, denom: float) -> float | None:
    return 100.0 * num / denom if denom > 0 else None


def _r(v: float | None, nd: int = 2) -> float | None:
    return None if v is None else round(float(v), nd)


def is_short_abandon(v: Visit, cfg: QueueConfig) -> bool:
    return v.outcome == "abandoned" and (v.wait or 0.0) < cfg.short_abandon_seconds


def queue_metrics(queue: str, visits: Iterable[Visit], cfg: QueueConfig = QueueConfig()) -> QueueMetrics:
    """Aggregate the visits of one queue (callers count in the period they *entered* the queue)."""
    m = QueueMetrics(queue, sl_seconds=cfg.service_level_seconds, sl_formula=cfg.sl_formula)
    add_visits(m, visits, cfg)
    return m


def add_visits(m: QueueMetrics, visits: Iterable[Visit], cfg: QueueConfig) -> None:
    t = cfg.service_level_seconds
    for v in visits:
        m.offered += 1
        wait = v.wait or 0.0
        if v.outcome == "in_progress":
            m.in_progress += 1
            if v.answered_at is None:
                continue
        if v.outcome in ("answered", "in_progress") and v.answered_at is not None:
            m.answered += 1
            m.wait_answered_total += wait
            m.longest_wait = max(m.longest_wait, wait)
            if wait <= t:
                m.answered_in_sl += 1
            if v.transferred:
                m.transfers += 1
            if v.completed:
                m.handled += 1
                m.talk_total += v.talk
                m.hold_total += v.hold
                m.wrapup_total += v.wrapup
            continue
        if v.outcome == "abandoned":
            if cfg.exclude_short_abandons and is_short_abandon(v, cfg):
                m.short_abandoned += 1
                continue
            if is_short_abandon(v, cfg):
                m.short_abandoned += 1
            m.abandoned += 1
            m.abandoned_ringing += int(v.rang_agent)
            m.wait_unanswered_total += wait
            m.longest_wait = max(m.longest_wait, wait)
            if wait <= t:
                m.abandoned_in_sl += 1
        elif v.outcome == "overflowed":
            m.overflowed += 1
        elif v.outcome == "timeout":
            m.timeouts += 1
            m.wait_unanswered_total += wait
            m.longest_wait = max(m.longest_wait, wait)
            if wait <= t:
                m.abandoned_in_sl += 1


def queues_report(
    visits: Iterable[Visit], configs: dict[str, QueueConfig] | None = None, default: QueueConfig = QueueConfig()
) -> list[QueueMetrics]:
    configs = configs or {}
    by_queue: dict[str, list[Visit]] = {}
    for v in visits:
        by_queue.setdefault(v.queue, []).append(v)
    return [queue_metrics(q, vs, configs.get(q, default)) for q, vs in sorted(by_queue.items())]


# --------------------------------------------------------------- agents
@dataclass(frozen=True)
class AgentSpan:
    """A stretch of an agent's state: ``logged_in`` (member of at least one queue), ``paused``
    (with its reason) or ``member`` of one ``queue``; ``end`` None = still going (cut at ``now``)."""

    agent_id: str
    state: Literal["logged_in", "paused", "member"]
    start: float
    end: float | None = None
    reason: str | None = None
    queue: str | None = None


def clip(start: float, end: float | None, lo: float, hi: float) -> float:
    """Seconds of [start, end) inside [lo, hi)."""
    end = hi if end is None else end
    return max(0.0, min(end, hi) - max(start, lo))


@dataclass
class AgentMetrics:
    agent_id: str
    answered: int = 0
    handled: int = 0
    talk_total: float = 0.0
    hold_total: float = 0.0
    wrapup_total: float = 0.0
    transfers: int = 0
    login_seconds: float = 0.0
    pause_seconds: dict[str, float] = field(default_factory=dict)  # reason -> seconds (wrap-up excluded)

    @property
    def aht(self) -> float | None:
        return (self.talk_total + self.wrapup_total) / self.handled if self.handled else None

    @property
    def occupancy(self) -> float | None:
        """Handle time ÷ (login time − pause time): the share of available time spent on calls."""
        available = self.login_seconds - sum(self.pause_seconds.values())
        return _pct(self.talk_total + self.wrapup_total, available)

    def to_dict(self) -> dict[str, object]:
        return {
            "agent_id": self.agent_id,
            "answered": self.answered,
            "handled": self.handled,
            "aht_seconds": _r(self.aht),
            "talk_seconds": _r(self.talk_total - self.hold_total),
            "hold_seconds": _r(self.hold_total),
            "wrapup_seconds": _r(self.wrapup_total),
            "transfers": self.transfers,
            "login_seconds": _r(self.login_seconds),
            "pause_seconds": {k: _r(v) for k, v in sorted(self.pause_seconds.items())},
            "pause_seconds_total": _r(sum(self.pause_seconds.values())),
            "occupancy_pct": _r(self.occupancy),
        }


def agents_report(
    visits: Iterable[Visit], spans: Iterable[AgentSpan], lo: float, hi: float
) -> list[AgentMetrics]:
    """Per-agent figures for [lo, hi): calls by the interval they entered the queue,
    login and pause time clipped to the period (spans still open end at ``hi``)."""
    out: dict[str, AgentMetrics] = {}

    def get(a: str) -> AgentMetrics:
        return out.setdefault(a, AgentMetrics(a))

    for v in visits:
        if v.agent_id is None or v.answered_at is None:
            continue
        m = get(v.agent_id)
        m.answered += 1
        m.transfers += int(v.transferred)
        if v.completed:
            m.handled += 1
            m.talk_total += v.talk
            m.hold_total += v.hold
            m.wrapup_total += v.wrapup
    for s in spans:
        secs = clip(s.start, s.end, lo, hi)
        if secs <= 0:
            continue
        m = get(s.agent_id)
        if s.state == "logged_in":
            m.login_seconds += secs
        elif s.state == "paused" and s.reason != "wrapup":
            key = s.reason or "(none)"
            m.pause_seconds[key] = m.pause_seconds.get(key, 0.0) + secs
    return [out[k] for k in sorted(out)]


# ------------------------------------------------------------------ FCR
@dataclass(frozen=True)
class Contact:
    """One customer contact for FCR: the call, who called, when, and what the agent and
    the survey said about resolution (None: not recorded)."""

    call_id: str
    caller: str | None
    at: float
    agent_id: str | None = None
    disposition_resolved: bool | None = None
    survey_resolved: bool | None = None


@dataclass
class FcrMetrics:
    contacts: int = 0
    repeat_resolved: int = 0
    repeat_unresolved: int = 0
    repeat_pending: int = 0  # window not over at report time
    repeat_unknown_caller: int = 0
    disposition_resolved: int = 0
    disposition_total: int = 0
    survey_resolved: int = 0
    survey_total: int = 0

    def to_dict(self) -> dict[str, object]:
        return {
            "contacts": self.contacts,
            "fcr_repeat_pct": _r(_pct(self.repeat_resolved, self.repeat_resolved + self.repeat_unresolved)),
            "fcr_repeat_resolved": self.repeat_resolved,
            "fcr_repeat_repeated": self.repeat_unresolved,
            "fcr_repeat_pending": self.repeat_pending,
            "fcr_repeat_unknown_caller": self.repeat_unknown_caller,
            "fcr_disposition_pct": _r(_pct(self.disposition_resolved, self.disposition_total)),
            "fcr_disposition_total": self.disposition_total,
            "fcr_survey_pct": _r(_pct(self.survey_resolved, self.survey_total)),
            "fcr_survey_total": self.survey_total,
        }


def fcr(contacts: Sequence[Contact], later: Sequence[Contact], window_seconds: float, now: float) -> FcrMetrics:
    """FCR three ways for ``contacts`` (the period's). ``later`` are every contact that may be a
    repeat (the period's and those after it, up to ``now``). A contact is resolved first time
    (repeat method) when the same caller has no other contact in (at, at + window]; when that
    window is not over at ``now`` and no repeat came yet, it is *pending* and left out."""
    by_caller: dict[str, list[float]] = {}
    for c in later:
        if c.caller:
            by_caller.setdefault(c.caller, []).append(c.at)
    for times in by_caller.values():
        times.sort()
    m = FcrMetrics()
    for c in contacts:
        m.contacts += 1
        if not c.caller:
            m.repeat_unknown_caller += 1
        else:
            repeated = any(c.at < t <= c.at + window_seconds for t in by_caller.get(c.caller, ()))
            if repeated:
                m.repeat_unresolved += 1
            elif c.at + window_seconds > now:
                m.repeat_pending += 1
            else:
                m.repeat_resolved += 1
        if c.disposition_resolved is not None:
            m.disposition_total += 1
            m.disposition_resolved += int(c.disposition_resolved)
        if c.survey_resolved is not None:
            m.survey_total += 1
            m.survey_resolved += int(c.survey_resolved)
    return m


# ------------------------------------------------------------------ IVR
@dataclass
class IvrSession:
    """One caller's walk through an IVR flow: nodes in order, how it ended."""

    session_id: str
    flow: str
    nodes: list[str]
    outcome: Literal["queue", "transfer", "completed", "hangup", "in_progress"]
    started_at: float = 0.0


@dataclass
class IvrMetrics:
    flow: str
    sessions: int = 0
    contained: int = 0
    handed_off: int = 0
    dropped: int = 0
    in_progress: int = 0
    visits_by_node: dict[str, int] = field(default_factory=dict)
    dropoff_by_node: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        ended = self.sessions - self.in_progress
        return {
            "flow": self.flow,
            "sessions": self.sessions,
            "contained": self.contained,
            "handed_off": self.handed_off,
            "dropped": self.dropped,
            "in_progress": self.in_progress,
            "containment_pct": _r(_pct(self.contained, ended)),
            "nodes": [
                {"node": n, "visits": c, "dropoff": self.dropoff_by_node.get(n, 0),
                 "dropoff_pct": _r(_pct(self.dropoff_by_node.get(n, 0), c))}
                for n, c in sorted(self.visits_by_node.items())
            ],
        }


def ivr_report(sessions: Iterable[IvrSession]) -> list[IvrMetrics]:
    """Containment = sessions that ended in the IVR having finished the flow (``completed``)
    ÷ sessions that ended; a caller hanging up mid-flow is a drop-off at the last node
    reached, not containment; a hand-off to a queue or a transfer is not contained."""
    out: dict[str, IvrMetrics] = {}
    for s in sessions:
        m = out.setdefault(s.flow, IvrMetrics(s.flow))
        m.sessions += 1
        for n in dict.fromkeys(s.nodes):  # a node visited twice (menu retry) counts once per session
            m.visits_by_node[n] = m.visits_by_node.get(n, 0) + 1
        if s.outcome == "in_progress":
            m.in_progress += 1
        elif s.outcome == "completed":
            m.contained += 1
        elif s.outcome in ("queue", "transfer"):
            m.handed_off += 1
        else:
            m.dropped += 1
            if s.nodes:
                last = s.nodes[-1]
                m.dropoff_by_node[last] = m.dropoff_by_node.get(last, 0) + 1
    return [out[k] for k in sorted(out)]


# -------------------------------------------------------------- surveys
@dataclass(frozen=True)
class SurveyAnswer:
    call_id: str
    question: str  # "csat" (1-5), "nps" (0-10), "resolved" (yes/no, 1/2)
    value: int
    agent_id: str | None = None
    queue: str | None = None
    at: float = 0.0


@dataclass
class SurveyMetrics:
    key: str  # agent id, queue or "all"
    csat_answers: int = 0
    csat_top2: int = 0
    nps_answers: int = 0
    promoters: int = 0
    detractors: int = 0
    resolved_answers: int = 0
    resolved_yes: int = 0

    def to_dict(self) -> dict[str, object]:
        nps = None
        if self.nps_answers:
            nps = 100.0 * (self.promoters - self.detractors) / self.nps_answers
        return {
            "key": self.key,
            "csat_answers": self.csat_answers,
            "csat_pct": _r(_pct(self.csat_top2, self.csat_answers)),
            "nps_answers": self.nps_answers,
            "nps": _r(nps),
            "promoters": self.promoters,
            "detractors": self.detractors,
            "resolved_answers": self.resolved_answers,
            "resolved_pct": _r(_pct(self.resolved_yes, self.resolved_answers)),
        }


CSAT_SCALE = 5


def survey_report(answers: Iterable[SurveyAnswer], by: Literal["agent", "queue", "all"] = "agent") -> list[SurveyMetrics]:
    """CSAT = answers 4 or 5 on the 1-5 scale ÷ CSAT answers; NPS = % promoters (9-10) −
    % detractors (0-6) of the 0-10 answers; ``resolved`` = 1 (yes) ÷ answers (1 yes, 2 no).
    Out-of-range values are ignored (never counted); by agent: the agent who handled the call."""
    out: dict[str, SurveyMetrics] = {}
    for a in answers:
        key = (a.agent_id if by == "agent" else a.queue if by == "queue" else "all") or "(none)"
        m = out.setdefault(key, SurveyMetrics(key))
        if a.question == "csat" and 1 <= a.value <= CSAT_SCALE:
            m.csat_answers += 1
            m.csat_top2 += int(a.value >= CSAT_SCALE - 1)
        elif a.question == "nps" and 0 <= a.value <= 10:
            m.nps_answers += 1
            m.promoters += int(a.value >= 9)
            m.detractors += int(a.value <= 6)
        elif a.question == "resolved" and a.value in (1, 2):
            m.resolved_answers += 1
            m.resolved_yes += int(a.value == 1)
    return [out[k] for k in sorted(out)]


# ---------------------------------------------------- recording and QA coverage
@dataclass(frozen=True)
class RecordingOutcome:
    """What became of one call's recording: ``required`` = the call was answered and the
    recording policy said record; ``status`` = pending | ready | failed | discarded."""

    call_id: str
    required: bool
    status: str
    agent_id: str | None = None
    queue: str | None = None
    at: float = 0.0  # the call's start
    direction: str = "inbound"  # inbound | outbound | click-to-call | callback


@dataclass(frozen=True)
class QaScore:
    """One evaluation's current score (its latest revision; calibration sessions excluded)."""

    evaluation_id: str
    revision: int
    call_id: str | None
    agent_id: str
    form_id: str
    total: float | None  # 0-100; None: nothing counted
    critical_failed: bool = False
    queue: str | None = None
    at: float = 0.0  # the evaluated call's start


@dataclass
class QualityMetrics:
    key: str  # a queue, an agent, a form or "all"
    handled_calls: int = 0  # answered calls (a call answered in two queues counts in each)
    recording_required: int = 0
    recorded: int = 0  # a ready recording
    recording_failed: int = 0
    recording_pending: int = 0
    evaluated_calls: int = 0
    evaluations: int = 0
    scored: int = 0
    score_total: float = 0.0
    critical_failed: int = 0

    def to_dict(self) -> dict[str, object]:
        return {
            "key": self.key,
            "handled_calls": self.handled_calls,
            "recording_required": self.recording_required,
            "recorded": self.recorded,
            "recording_failed": self.recording_failed,
            "recording_pending": self.recording_pending,
            "recorded_pct": _r(_pct(self.recorded, self.handled_calls)),
            "recording_compliance_pct": _r(_pct(self.recorded, self.recording_required)),
            "evaluated_calls": self.evaluated_calls,
            "evaluations": self.evaluations,
            "qa_coverage_pct": _r(_pct(self.evaluated_calls, self.recorded)),
            "qa_coverage_of_handled_pct": _r(_pct(self.evaluated_calls, self.handled_calls)),
            "qa_avg_score": _r(self.score_total / self.scored if self.scored else None),
            "qa_critical_failed": self.critical_failed,
            "qa_critical_failed_pct": _r(_pct(self.critical_failed, self.evaluations)),
        }


QualityBy = Literal["queue", "agent", "form", "all"]


def latest_scores(scores: Iterable[QaScore]) -> list[QaScore]:
    """One score per evaluation: its highest revision (a revision or a dispute resolved with a
    change replaces the score; the first one is not counted as well)."""
    out: dict[str, QaScore] = {}
    for s in scores:
        cur = out.get(s.evaluation_id)
        if cur is None or s.revision > cur.revision:
            out[s.evaluation_id] = s
    return list(out.values())


def quality_report(visits: Iterable[Visit], recordings: Iterable[RecordingOutcome], scores: Iterable[QaScore],
                   by: QualityBy = "queue") -> list[QualityMetrics]:
    """Recording and QA coverage and QA scores (docs/metrics.md §3a).

    *Handled calls* are the answered calls, by the queue / agent of each answered visit, plus
    the answered calls with a recording decision but no queue visit (outbound, click-to-call:
    by their agent). A call's recording counts for each (queue or agent) that handled it.
    ``recorded_pct`` = handled calls with a ready recording ÷ handled calls;
    ``recording_compliance_pct`` = ready ÷ calls the policy required to record;
    ``qa_coverage_pct`` = handled calls with at least one evaluation ÷ handled calls with a
    ready recording; ``qa_avg_score`` = mean of the evaluations' current totals (evaluations
    with no total — nothing counted — are left out of the mean, not of the count).
    By ``form`` only the QA columns have a meaning (a call has no form until it is evaluated)."""
    recs = {r.call_id: r for r in recordings}
    handled: dict[str, set[str]] = {}  # key -> call ids
    queue_of: dict[tuple[str, str], str] = {}  # (call, agent) -> the queue the agent answered it in

    def key_of(queue: str | None, agent: str | None) -> str | None:
        if by == "all":
            return "all"
        if by == "queue":
            return queue
        if by == "agent":
            return agent
        return None

    for v in visits:
        if v.answered_at is None:
            continue
        if v.agent_id:
            queue_of.setdefault((v.call_id, v.agent_id), v.queue)
        k = key_of(v.queue, v.agent_id)
        if k is not None:
            handled.setdefault(k, set()).add(v.call_id)
    seen = {c for cs in handled.values() for c in cs}
    for r in recs.values():
        if r.call_id not in seen and r.required and r.direction != "inbound":  # outbound, click-to-call: no visit
            k = key_of(r.queue, r.agent_id)
            if k is not None:
                handled.setdefault(k, set()).add(r.call_id)
    out: dict[str, QualityMetrics] = {}
    for k, calls in handled.items():
        m = out.setdefault(k, QualityMetrics(k))
        for c in calls:
            m.handled_calls += 1
            r = recs.get(c)
            if r is None:
                continue
            m.recording_required += int(r.required)
            m.recorded += int(r.status == "ready")
            m.recording_failed += int(r.status == "failed")
            m.recording_pending += int(r.status == "pending")
    evaluated: dict[str, set[str]] = {}
    for s in latest_scores(scores):
        if by == "form":
            k: str | None = s.form_id
        else:
            q = queue_of.get((s.call_id or "", s.agent_id)) or s.queue
            k = key_of(q, s.agent_id)
        if k is None:
            continue
        m = out.setdefault(k, QualityMetrics(k))
        m.evaluations += 1
        m.critical_failed += int(s.critical_failed)
        if s.total is not None:
            m.scored += 1
            m.score_total += s.total
        evaluated.setdefault(k, set()).add(s.call_id or f"evaluation:{s.evaluation_id}")
    for k, calls in evaluated.items():  # coverage: of the calls this key handled in the period
        out[k].evaluated_calls = len(calls if by == "form" else calls & handled.get(k, set()))
    return [out[k] for k in sorted(out)]


# ------------------------------------------------------- agent day rollups
@dataclass
class AgentDay:
    """The sums behind one agent's report row — agent figures, survey answers, recording and QA
    counts — that add up over days (every figure shown is a ratio of these). An agent day
    rollup stores one; a report of a month adds up the month's days."""

    agent: AgentMetrics
    survey: SurveyMetrics
    quality: QualityMetrics

    @classmethod
    def empty(cls, agent_id: str) -> "AgentDay":
        return cls(AgentMetrics(agent_id), SurveyMetrics(agent_id), QualityMetrics(agent_id))

    def add(self, other: "AgentDay") -> None:
        for mine, theirs in ((self.agent, other.agent), (self.survey, other.survey), (self.quality, other.quality)):
            for f in fields(mine):
                a, b = getattr(mine, f.name), getattr(theirs, f.name)
                if isinstance(a, dict):
                    for k, v in b.items():
                        a[k] = a.get(k, 0.0) + v
                elif isinstance(a, (int, float)) and not isinstance(a, bool):
                    setattr(mine, f.name, a + b)

    def to_counts(self) -> dict[str, dict[str, object]]:
        def part(dc: object) -> dict[str, object]:
            return {f.name: getattr(dc, f.name) for f in fields(dc) if f.name not in ("agent_id", "key")}  # type: ignore[arg-type]
        return {"agent": part(self.agent), "survey": part(self.survey), "quality": part(self.quality)}

    @classmethod
    def from_counts(cls, agent_id: str, counts: dict[str, dict[str, object]]) -> "AgentDay":
        out = cls.empty(agent_id)
        for name, dc in (("agent", out.agent), ("survey", out.survey), ("quality", out.quality)):
            for k, v in (counts.get(name) or {}).items():
                if hasattr(dc, k):
                    setattr(dc, k, dict(v) if isinstance(v, dict) else v)  # type: ignore[arg-type]
        return out


def agent_days(visits: Iterable[Visit], spans: Iterable[AgentSpan], surveys: Iterable[SurveyAnswer],
               recordings: Iterable[RecordingOutcome], scores: Iterable[QaScore], lo: float, hi: float) -> dict[str, AgentDay]:
    """Every agent's :class:`AgentDay` for [lo, hi) (inputs already cut to the period)."""
    vs = list(visits)
    out: dict[str, AgentDay] = {}
    for m in agents_report(vs, spans, lo, hi):
        out.setdefault(m.agent_id, AgentDay.empty(m.agent_id)).agent = m
    for s in survey_report(surveys, "agent"):
        if s.key != "(none)":
            out.setdefault(s.key, AgentDay.empty(s.key)).survey = s
    for q in quality_report(vs, recordings, scores, "agent"):
        out.setdefault(q.key, AgentDay.empty(q.key)).quality = q
    return out
