"""A generated day of a small center with every edge case docs/metrics.md lists, as facts
(what the facts subscriber and the IVR write) and as an Asterisk queue_log of the same
calls. The expected values are computed by hand in test_dataset.py, not by the code."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from reports.facts import (
    Fact, callback_fact, disposition_fact, ivr_end_fact, ivr_step_fact, qa_score_fact, recording_fact, span_fact,
    survey_fact, visit_facts, wrapup_fact,
)
from reports.formulas import AgentSpan, Visit
from tests.pbxsim.queuelog import QueueLogWriter

TZ = ZoneInfo("Asia/Seoul")


def t(hhmmss: str, day: int = 2) -> float:
    h, m, s = (int(x) for x in hhmmss.split(":"))
    return datetime(2026, 12, day, h, m, s, tzinfo=TZ).timestamp()


DAY = t("00:00:00")
NEXT_DAY = t("00:00:00", 3)
NOW = t("12:00:00", 6)  # report time: every FCR window of the 2nd is over


@dataclass
class Spec:
    call: str
    caller: str | None
    queue: str
    entered: float
    outcome: str  # answered | abandoned | timeout | in_progress
    wait: float = 0.0
    agent: str | None = None
    talk: float = 0.0
    hold: float = 0.0
    wrap: float = 0.0
    rang: bool = False
    transfer_to: tuple[str, float, str, float, float] | None = None  # (queue, wait, agent, talk, wrap)


SPECS = [
    Spec("c1", "01011110001", "sales", t("09:00:00"), "answered", 10, "1001", 100, hold=20, wrap=30),
    Spec("c2", "01011110002", "sales", t("09:01:00"), "answered", 30, "1002", 200, wrap=10),
    Spec("c3", "01011110001", "sales", t("09:02:00"), "abandoned", 3),  # short abandon, repeat of c1
    Spec("c4", "01011110004", "sales", t("09:03:00"), "abandoned", 40, rang=True),  # abandoned while ringing
    Spec("c5", "01011110005", "sales", t("09:04:00"), "abandoned", 15),
    Spec("c6", None, "sales", t("09:05:00"), "timeout", 60),  # unknown caller
    Spec("c7", "01011110007", "sales", t("09:14:50"), "answered", 15, "1002", 60),  # answered in the next interval
    Spec("c8", "01011110008", "sales", t("09:20:00"), "answered", 5, "1001", 60,
         transfer_to=("support", 25, "1002", 50, 10)),  # blind transfer to another queue
    Spec("c9", "01011110009", "sales", t("09:30:00"), "in_progress"),  # still waiting
    Spec("c10", "01011110010", "sales", t("23:59:50"), "answered", 10, "1001", 30),  # answered after midnight
    Spec("c11", "01011110008", "sales", t("23:00:00", 5), "answered", 5, "1001", 20),  # c8's caller, 3.6 days later
]

SPANS = [
    AgentSpan("1001", "logged_in", t("08:55:00"), t("12:00:00")),
    AgentSpan("1001", "paused", t("11:00:00"), t("11:30:00"), "lunch"),
    AgentSpan("1001", "paused", t("09:01:40"), t("09:02:10"), "wrapup"),
    AgentSpan("1002", "logged_in", t("09:00:00"), t("10:00:00")),
    AgentSpan("1002", "paused", t("09:40:00"), t("09:50:00"), "break"),
    AgentSpan("1002", "paused", t("09:55:00"), t("10:00:00"), "break"),
    AgentSpan("1001", "member", t("08:55:00"), t("12:00:00"), queue="sales"),
    AgentSpan("1002", "member", t("09:00:00"), t("10:00:00"), queue="sales"),
    AgentSpan("1002", "member", t("09:30:00"), t("10:00:00"), queue="support"),
]


def visits() -> list[Visit]:
    out = []
    for s in SPECS:
        v = Visit(s.call, 0, s.queue, s.entered, s.caller, outcome=s.outcome if s.outcome != "in_progress" else "in_progress")
        if s.outcome == "answered":
            v.wait, v.answered_at, v.agent_id = s.wait, s.entered + s.wait, s.agent
            v.talk, v.hold, v.wrapup, v.completed = s.talk, s.hold, s.wrap, True
            v.transferred = s.transfer_to is not None
        elif s.outcome in ("abandoned", "timeout"):
            v.wait, v.rang_agent = s.wait, s.rang
        out.append(v)
        if s.transfer_to:
            q, wait, agent, talk, wrap = s.transfer_to
            entered = s.entered + s.wait + s.talk
            out.append(Visit(s.call, 1, q, entered, s.caller, "answered", wait, entered + wait, agent, talk,
                             wrapup=wrap, completed=True))
    return out


def ended_at(call: str) -> float:
    vs = [v for v in visits() if v.call_id == call]
    last = vs[-1]
    return (last.answered_at + last.talk) if last.answered_at is not None else last.entered_at + (last.wait or 0)


def facts() -> list[Fact]:
    out: list[Fact] = []
    for v in visits():
        out += visit_facts(v)
        if v.wrapup:
            start = v.answered_at + v.talk
            out.append(wrapup_fact(v.call_id, v.agent_id, start, start + v.wrapup, v.queue, anchor_at=v.entered_at))
    for s in SPECS:
        if s.outcome == "in_progress":
            continue
        vs = [v for v in visits() if v.call_id == s.call]
        last = vs[-1]
        out.append(Fact(f"c:{s.call}:ended", "call.ended", ended_at(s.call), s.entered, s.call, last.queue,
                        last.agent_id, {"outcome": s.outcome, "caller": s.caller, "direction": "inbound",
                                        "first_queued_at": s.entered}))
    out += [span_fact(sp) for sp in SPANS]
    out += [
        disposition_fact("c1", "1001", "resolved", True, t("09:02:30"), t("09:00:00")),
        disposition_fact("c2", "1002", "callback_needed", False, t("09:05:00"), t("09:01:00")),
        disposition_fact("c7", "1002", "resolved", True, t("09:17:00"), t("09:14:50")),
    ]
    surveys = {"c1": (5, 10, 2), "c2": (3, 6, 1), "c8": (4, 8, 1), "c10": (4, 9, None)}
    for call, (sat, nps, resolved) in surveys.items():
        at = ended_at(call) + 20
        out.append(survey_fact(call, "satisfaction", sat, at))
        out.append(survey_fact(call, "nps", nps, at))
        if resolved is not None:
            out.append(survey_fact(call, "resolved", resolved, at))
    out.append(survey_fact("c7", "satisfaction", 7, ended_at("c7") + 20))  # out of the 1-5 scale: ignored
    ivr = [
        ("s1", ["welcome", "menu", "queue_sales"], "queue"),
        ("s2", ["welcome", "menu", "hours"], "completed"),
        ("s3", ["welcome", "menu"], "hangup"),
        ("s4", ["welcome"], "hangup"),
        ("s5", ["welcome", "menu", "menu", "faq"], "completed"),
        ("s6", ["welcome"], None),  # still in the IVR
    ]
    for i, (sid, nodes, outcome) in enumerate(ivr):
        start = t("10:00:00") + 60 * i
        for seq, node in enumerate(nodes):
            out.append(ivr_step_fact(sid, seq, "main", node, start + seq))
        if outcome:
            out.append(ivr_end_fact(sid, "main", outcome, start, start + 30))
    out += [
        callback_fact("cb1", "requested", t("10:10:00"), "sales", "01011110002"),
        callback_fact("cb1", "completed", t("10:40:00"), None, "01011110002"),  # the queue is the request's
        callback_fact("cb2", "requested", t("10:20:00"), "sales", "01011110005"),
    ]
    out += quality_facts()
    return out


def quality_facts() -> list[Fact]:
    """Recording fates and QA scores (worked by hand in expected.py, QUALITY_*)."""
    start = {s.call: s.entered for s in SPECS}
    start["o1"] = t("10:30:00")  # a click-to-call by 1001 (no queue visit)

    def rec(call: str, status: str, required: bool, agent: str | None, queue: str | None,
            direction: str = "inbound") -> list[Fact]:
        out = [recording_fact(call, "pending" if status in ("ready", "failed") else status, required=required,
                              at=start[call] + 300, call_started_at=start[call], agent_id=agent, queue=queue,
                              direction=direction)]
        if status in ("ready", "failed"):
            out.append(recording_fact(call, status, required=True, at=start[call] + 400, call_started_at=start[call],
                                      agent_id=agent, queue=queue, direction=direction))
        return out

    def qa(ev: str, rev: int, call: str, agent: str, form: str, total: float | None, critical: bool = False) -> Fact:
        return qa_score_fact(ev, rev, agent_id=agent, form_id=form, total=total, critical_failed=critical,
                             at=t("15:00:00", 3) + rev, call_started_at=start[call], call_id=call, queue=None)

    return [
        *rec("c1", "ready", True, "1001", "sales"),
        *rec("c2", "failed", True, "1002", "sales"),
        *rec("c4", "discarded", False, None, "sales"),  # unanswered: nothing kept, not a handled call
        *rec("c7", "discarded", False, "1002", "sales"),  # the policy said don't record
        *rec("c8", "ready", True, "1001", "sales"),
        *rec("c10", "pending", True, "1001", "sales"),
        *rec("o1", "ready", True, "1001", None, direction="click-to-call"),
        *rec("c11", "ready", True, "1001", "sales"),  # the 5th: outside the day
        qa("e1", 1, "c1", "1001", "customer-service", 80.0),
        qa("e1", 2, "c1", "1001", "customer-service", 90.0),  # revised: the latest revision counts
        qa("e2", 1, "c8", "1002", "customer-service", 0.0, critical=True),  # 1002 took c8 in support
        qa("e3", 1, "o1", "1001", "outbound", 70.0),
        qa("e4", 1, "c8", "1001", "customer-service", None),  # nothing counted (all N/A)
        qa("e5", 1, "c11", "1001", "customer-service", 50.0),  # the 5th's call
    ]


def queue_log() -> list[str]:
    """The same day as Asterisk's app_queue would log it (integer seconds)."""
    w = QueueLogWriter()
    events: list[tuple[float, int, callable]] = []

    def at(time_: float, fn, *a, order: int = 0) -> None:
        events.append((time_, order, lambda: fn(*a, at=time_)))

    member = {"1001": "Agent 1001", "1002": "Agent 1002"}
    for sp in SPANS:
        m = member[sp.agent_id]
        if sp.state == "member":
            at(sp.start, w.add_member, sp.queue, m, order=-1)
            at(sp.end, w.remove_member, sp.queue, m, order=5)
        elif sp.state == "paused" and sp.reason != "wrapup":
            at(sp.start, w.pause, ["sales"], m, sp.reason)
            at(sp.end, w.unpause, ["sales"], m, "")
    for s in SPECS:
        at(s.entered, w.enter, s.call, s.queue, s.caller or "", 1)
        if s.outcome == "answered":
            m = member[s.agent]
            ans = s.entered + s.wait
            at(ans, w.connect, s.call, s.queue, m, s.wait, s.call + "-agent", 2, order=1)
            if s.transfer_to:
                q, wait2, agent2, talk2, wrap2 = s.transfer_to
                t2 = ans + s.talk
                at(t2, w.enter, s.call, q, s.caller or "", 1)
                m2 = member[agent2]
                at(t2 + wait2, w.connect, s.call, q, m2, wait2, s.call + "-agent2", 2, order=1)
                end = t2 + wait2 + talk2
                # after a Redirect out of Queue(), app_queue logs both at the caller's final hangup
                at(end, w.complete, s.call, q, m2, wait2, talk2, True, order=2)
                at(end, w.complete, s.call, s.queue, m, s.wait, end - ans, True, order=3)
                at(end, w.pause, ["support"], m2, "wrapup", order=4)
                at(end + wrap2, w.unpause, ["support"], m2, "", order=4)
            else:
                end = ans + s.talk
                at(end, w.complete, s.call, s.queue, m, s.wait, s.talk, False, order=2)
                if s.wrap:
                    at(end, w.pause, ["sales"], m, "wrapup", order=4)
                    at(end + s.wrap, w.unpause, ["sales"], m, "", order=4)
        elif s.outcome == "abandoned":
            if s.rang:
                at(s.entered + s.wait, w.write, s.call, s.queue, "Agent 1002", "RINGCANCELED", 1000)
            at(s.entered + s.wait, w.abandon, s.call, s.queue, 1, 1, s.wait, order=1)
        elif s.outcome == "timeout":
            at(s.entered + s.wait, w.timeout, s.call, s.queue, 1, 1, s.wait, order=1)
    for time_, _, fn in sorted(events, key=lambda e: (e[0], e[1])):
        fn()
    return w.lines
