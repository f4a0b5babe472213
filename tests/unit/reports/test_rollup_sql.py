"""The set-based rollup build (``reports.rollup_sql``, issue 18) gives the rollups the Python fold
gives (``ReportService.set_based = False``), and reports from those rollups equal reports from the
facts — on generated days full of edge cases: calls across midnight in Asia/Seoul (answered,
wrapped up and surveyed the next day), short and long abandons, timeouts, overflows, transfers
(a call answered in two queues, twice by the same agent), calls still in progress, repeat callers
inside and outside the FCR window (by number and by CRM customer), dispositions with and without
a resolved flag, surveys (CSAT, NPS, resolved; out of range; for a call of another day), QA scores
with revisions and without a total, recordings ready / failed / pending / outbound without a
visit, agent spans across midnight, pauses with and without a reason, callbacks. Both stores."""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from reports.facts import (
    Fact, callback_fact, disposition_fact, qa_score_fact, recording_fact, span_fact, survey_fact, visit_facts,
    wrapup_fact,
)
from reports.formulas import AgentSpan, QueueConfig, Visit
from reports.models import AgentRollupRow, RollupRow
from reports.repository import ReportRepository
from reports.service import ReportConfig, ReportService

pytestmark = pytest.mark.db

TZ = ZoneInfo("Asia/Seoul")
DAYS = 4


def day0(d: int) -> float:
    return datetime(2026, 11, 2 + d, tzinfo=TZ).timestamp()


NOW = day0(DAYS + 5)  # every FCR window over


def generate(seed: int = 18) -> list[Fact]:
    rng = random.Random(seed)
    facts: list[Fact] = []
    queues = ["sales", "support", "vip"]
    agents = [f"10{i:02d}" for i in range(8)]
    callers = [f"0105555{i:04d}" for i in range(40)] + [None]
    ev = 0
    for d in range(DAYS):
        base = day0(d)
        for a in agents:  # spans: a late shift across midnight for two agents
            late = a in ("1006", "1007")
            start = base + (20 if late else 9) * 3600 + rng.uniform(-300, 300)
            end = start + (7 if late else 9) * 3600
            facts.append(span_fact(AgentSpan(a, "logged_in", start, end)))
            facts.append(span_fact(AgentSpan(a, "member", start, end, queue=rng.choice(queues))))
            for reason in ("lunch", None, "wrapup"):
                p = start + rng.uniform(3600, 5 * 3600)
                facts.append(span_fact(AgentSpan(a, "paused", p, p + rng.uniform(60, 1800), reason)))
        for i in range(60):
            cid = f"c{d}.{i}"
            caller = rng.choice(callers)
            near_midnight = i % 9 == 0
            entered = base + (86400 - rng.uniform(5, 400) if near_midnight else rng.uniform(9 * 3600, 19 * 3600))
            q = rng.choice(queues)
            r = rng.random()
            visits: list[Visit] = []
            last_agent = None
            if r < 0.55 or (d == DAYS - 1 and i == 59):  # answered (perhaps transferred to another queue)
                agent = rng.choice(agents)
                v = Visit(cid, 0, q, entered, caller, "answered", rng.uniform(0, 40), entered + 10, agent)
                v.answered_at = entered + v.wait
                v.talk, v.hold = rng.uniform(20, 600), rng.choice([0.0, 0.0, 15.0])
                v.completed = not (d == DAYS - 1 and i == 59)  # the last call is still talking
                if not v.completed:
                    v.outcome = "in_progress"
                v.transferred = rng.random() < 0.25 and v.completed
                visits.append(v)
                last_agent = agent
                if v.transferred:
                    q2 = rng.choice([x for x in queues if x != q])
                    at2 = v.answered_at + v.talk
                    agent2 = agent if rng.random() < 0.4 else rng.choice(agents)  # same agent again, sometimes
                    v2 = Visit(cid, 1, q2, at2, caller, "answered", rng.uniform(0, 30), None, agent2)
                    v2.answered_at = at2 + v2.wait
                    v2.talk, v2.completed = rng.uniform(20, 300), True
                    visits.append(v2)
                    last_agent = agent2
            elif r < 0.70:
                w = rng.choice([1.0, 3.0, 7.0, 45.0, 300.0])
                visits.append(Visit(cid, 0, q, entered, caller, "abandoned", w, rang_agent=rng.random() < 0.5))
            elif r < 0.78:
                visits.append(Visit(cid, 0, q, entered, caller, "timeout", rng.uniform(60, 600)))
            elif r < 0.84:  # overflowed, then answered in the next queue
                visits.append(Visit(cid, 0, q, entered, caller, "overflowed", 30.0))
                agent = rng.choice(agents)
                v = Visit(cid, 1, "vip", entered + 30, caller, "answered", 5.0, entered + 35, agent, talk=90.0,
                          completed=True)
                visits.append(v)
                last_agent = agent
            elif r < 0.88:  # still waiting (only on the last day: earlier days settle)
                if d == DAYS - 1:
                    visits.append(Visit(cid, 0, q, entered, caller))
                else:
                    visits.append(Visit(cid, 0, q, entered, caller, "abandoned", 12.0))
            else:
                visits.append(Visit(cid, 0, q, entered, caller, "abandoned", rng.uniform(0.2, 20)))
            for v in visits:
                facts += visit_facts(v)
                if v.completed and v.agent_id:
                    end = v.answered_at + v.talk  # type: ignore[operator]
                    for k in range(2 if rng.random() < 0.2 else 1):  # sometimes two wrap-up spans
                        facts.append(wrapup_fact(cid, v.agent_id, end + k * 100, end + k * 100 + rng.uniform(5, 60),
                                                 v.queue, anchor_at=v.entered_at))
            ended_at = max((v.answered_at or v.entered_at) + v.talk + (v.wait or 0) for v in visits) + 1
            if visits[-1].outcome != "in_progress":
                customer = rng.choice([None, None, None, "crm-7", "crm-9"])
                facts.append(Fact(f"c:{cid}:ended", "call.ended", ended_at, entered, cid, visits[0].queue, last_agent,
                                  {"outcome": visits[-1].outcome, "caller": caller, "customer": customer,
                                   "direction": "inbound", "first_queued_at": entered}))
            if last_agent and visits[-1].completed:
                pick = rng.random()
                if pick < 0.3:
                    facts.append(disposition_fact(cid, last_agent, "resolved", True, ended_at, entered))
                elif pick < 0.5:
                    facts.append(disposition_fact(cid, last_agent, rng.choice(["resolved", "sale", "callback"]), None,
                                                  ended_at, entered))
                if rng.random() < 0.4:
                    at = ended_at + (3600 if near_midnight else 30)  # a midnight call's survey: the next day
                    facts.append(survey_fact(cid, "csat", rng.choice([1, 3, 4, 5, 9]), at))
                    facts.append(survey_fact(cid, "nps", rng.randrange(12), at))
                    facts.append(survey_fact(cid, "resolved", rng.choice([1, 2, 3]), at))
                status = rng.choice(["ready", "ready", "failed", None])
                facts.append(recording_fact(cid, "pending", required=rng.random() < 0.9, at=ended_at,
                                            call_started_at=entered, agent_id=last_agent, queue=visits[-1].queue,
                                            direction="inbound"))
                if status:
                    facts.append(recording_fact(cid, status, required=True, at=ended_at + 60, call_started_at=entered,
                                                agent_id=last_agent, queue=visits[-1].queue, direction="inbound"))
                if rng.random() < 0.3:
                    ev += 1
                    facts.append(qa_score_fact(str(ev), 1, agent_id=last_agent, form_id="cs", total=rng.uniform(40, 100),
                                               critical_failed=rng.random() < 0.2, at=ended_at + 86400,
                                               call_started_at=entered, call_id=cid, queue=visits[-1].queue))
                    if rng.random() < 0.5:  # revised; sometimes to "nothing counted"
                        facts.append(qa_score_fact(str(ev), 2, agent_id=last_agent, form_id="cs",
                                                   total=rng.choice([None, 77.5]), critical_failed=False,
                                                   at=ended_at + 2 * 86400, call_started_at=entered, call_id=cid,
                                                   queue=visits[-1].queue))
        # an outbound call (no queue visit), recorded; a survey for a call nobody has; callbacks
        out = f"o{d}"
        facts.append(recording_fact(out, "ready", required=True, at=base + 40000, call_started_at=base + 39000,
                                    agent_id="1003", direction="outbound"))
        facts.append(survey_fact(f"ghost{d}", "csat", 5, base + 41000))
        facts.append(callback_fact(f"cb{d}", "requested", base + 42000, "sales", "01055550001"))
        facts.append(callback_fact(f"cb{d}", "completed", base + 50000))
    return facts


def _norm(v: Any) -> Any:
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return round(float(v), 6)
    if isinstance(v, dict):
        return {k: _norm(x) for k, x in v.items()}
    return v


async def _rollups(sm: Any) -> tuple[dict, dict]:
    async with sm() as s:
        q = {(r.span, r.interval_start, r.queue): (r.config, _norm(r.counts))
             for r in (await s.execute(select(RollupRow))).scalars()}
        a = {(r.interval_start, r.agent_id): _norm(r.counts) for r in (await s.execute(select(AgentRollupRow))).scalars()}
    for k, (cfg, counts) in list(q.items()):
        if k[0] == "fcr_day" and counts:  # the Python build leaves out a zero callback count
            counts.setdefault("callbacks_requested", 0.0)
            counts.setdefault("callbacks_completed", 0.0)
    return q, a


def _strip(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [_norm({k: v for k, v in r.items()}) for r in rows]


@pytest.fixture
async def svc(db_sessionmaker):
    config = ReportConfig(timezone="Asia/Seoul", queues={"vip": QueueConfig(10.0, "answered", 2.0, False)},
                          survey_questions={"csat": "csat", "nps": "nps", "resolved": "resolved"})
    s = ReportService(ReportRepository(db_sessionmaker), config, clock=lambda: NOW, rollup_every=None,
                      open_spans=lambda now: [AgentSpan("1005", "logged_in", day0(DAYS - 1) + 80000, None),
                                              AgentSpan("1005", "paused", day0(DAYS - 1) + 81000, None, "break")])
    await s.repository.add_facts(generate())
    return s


async def test_set_based_rollups_equal_the_python_build(svc, db_sessionmaker):
    lo, hi = day0(0), day0(DAYS)
    svc.set_based = False
    await svc.rebuild_rollups(lo, hi, NOW)
    py_q, py_a = await _rollups(db_sessionmaker)
    svc.set_based = True
    await svc.rebuild_rollups(lo, hi, NOW)
    sql_q, sql_a = await _rollups(db_sessionmaker)
    assert {k[0] for k in py_q} == {"15min", "day", "fcr_day"}
    assert len(py_a) >= 8 * (DAYS - 1)  # the last day has calls still going
    assert sql_q == py_q
    assert sql_a == py_a
    # day by day (the benchmark's and the rollup loop's way) gives the same rows again
    for d in range(DAYS):
        await svc.rebuild_rollups(day0(d), day0(d + 1), NOW)
    assert await _rollups(db_sessionmaker) == (py_q, py_a)


async def test_unsettled_slots_and_days_are_left_to_the_facts(svc, db_sessionmaker):
    """The last day has a call still talking and one still waiting: neither its day rollups nor the
    slots of those calls are built, by either build."""
    last = day0(DAYS - 1)
    out = {}
    for set_based in (False, True):
        svc.set_based = set_based
        await svc.rebuild_rollups(last, day0(DAYS), NOW)
        out[set_based] = await _rollups(db_sessionmaker)
    assert out[True] == out[False]
    q, a = out[True]
    assert ("day", last, "sales") not in q and not any(k[0] == last for k in a)
    assert any(k[0] == "15min" and k[1] >= last for k in q)


async def test_reports_from_set_based_rollups_equal_reports_from_facts(svc):
    await svc.rebuild_rollups(day0(0), day0(DAYS), NOW)
    lo, hi = day0(0), day0(DAYS)
    for args in ((lo, hi), (lo, hi, "day"), (day0(1), day0(2)), (day0(1), day0(2), "15min"), (lo + 1800, hi, "week")):
        svc.use_rollups = True
        rolled = await svc.queue_report(*args)
        svc.use_rollups = False
        facts = await svc.queue_report(*args)
        assert _strip(rolled) == _strip(facts), args
        svc.use_rollups = True
        rolled = await svc.agent_report(*args[:2])
        svc.use_rollups = False
        facts = await svc.agent_report(*args[:2])
        assert rolled and _strip(rolled) == _strip(facts), args
