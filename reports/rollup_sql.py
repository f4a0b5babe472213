"""Set-based rollup builds (issue 18): the statements that fold a period's facts into visits and
sum them into ``report_rollups`` / ``report_agent_rollups`` inside the database, in one
``INSERT … SELECT … GROUP BY`` per rollup table, instead of reading the facts into Python.

They compute what :func:`reports.facts.fold_visits` + :func:`reports.formulas.queue_metrics`,
:func:`reports.formulas.agent_days` and :func:`reports.formulas.fcr` compute from the same facts
(the equivalence is tested on both stores: ``tests/unit/reports/test_rollup_sql.py``). Pure:
these functions only build SQL text (SQLite and PostgreSQL dialects) and its parameters; the
repository runs them.

How the visit fold maps to SQL (``VisitFolder``):

* a visit is its ``visit.entered`` fact, joined by (call, seq) with its ``answered``,
  ``completed`` and ``left`` facts (facts of a visit never entered in the period are dropped);
* a wrap-up goes to the highest-seq visit of its (call, agent) registered before it in the
  folder's order (anchor_at, id), or, when none was, to the first one registered — a window
  function over the (call, agent) partition.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any, Iterable, Mapping

from reports import formulas as fm

VISIT_KINDS = ("visit.entered", "visit.answered", "visit.completed", "visit.left", "wrapup")
SPAN_KINDS = ("agent.logged_in", "agent.paused", "agent.member")
REC_QA_KINDS = ("recording.decided", "recording.processed", "qa.scored")
#: the sums of a queue rollup's ``counts`` (``reports.service.COUNT_FIELDS``)
QUEUE_SUMS = ("offered", "answered", "abandoned", "short_abandoned", "abandoned_ringing", "timeouts", "overflowed",
              "in_progress", "answered_in_sl", "abandoned_in_sl", "wait_answered_total", "wait_unanswered_total",
              "longest_wait", "handled", "talk_total", "hold_total", "wrapup_total", "transfers")


class Dialect:
    """The few spellings that differ between SQLite and PostgreSQL."""

    def __init__(self, name: str) -> None:
        if name not in ("sqlite", "postgresql"):
            raise ValueError(f"unsupported dialect {name!r}")
        self.name = name
        self.pg = name == "postgresql"

    def f(self, key: str, col: str = "data") -> str:
        """A JSON field as a float (NULL when absent or null)."""
        return f"CAST({col} ->> '{key}' AS DOUBLE PRECISION)" if self.pg else f"CAST(json_extract({col}, '$.{key}') AS REAL)"

    def i(self, key: str, col: str = "data") -> str:
        return f"CAST({col} ->> '{key}' AS INTEGER)" if self.pg else f"CAST(json_extract({col}, '$.{key}') AS INTEGER)"

    def s(self, key: str, col: str = "data") -> str:
        """A JSON field as text (a number as its text on PostgreSQL)."""
        return f"({col} ->> '{key}')" if self.pg else f"CAST(json_extract({col}, '$.{key}') AS TEXT)"

    def b(self, key: str, col: str = "data") -> str:
        """A JSON field's truth as 0/1 (Python's ``bool(data.get(key))`` for booleans and numbers)."""
        if self.pg:
            return (f"CASE WHEN json_typeof({col} -> '{key}') = 'boolean' THEN CAST(CAST({col} ->> '{key}' AS BOOLEAN) AS INTEGER) "
                    f"WHEN json_typeof({col} -> '{key}') = 'number' THEN CASE WHEN CAST({col} ->> '{key}' AS DOUBLE PRECISION) <> 0 "
                    f"THEN 1 ELSE 0 END WHEN json_typeof({col} -> '{key}') = 'string' THEN CASE WHEN {col} ->> '{key}' <> '' "
                    f"THEN 1 ELSE 0 END ELSE 0 END")
        return f"CASE WHEN json_extract({col}, '$.{key}') THEN 1 WHEN json_extract({col}, '$.{key}') <> '' AND json_type({col}, '$.{key}') = 'text' THEN 1 ELSE 0 END"

    def isnull(self, key: str, col: str = "data") -> str:
        """The field is absent or JSON null."""
        return f"({col} -> '{key}' IS NULL OR json_typeof({col} -> '{key}') = 'null')" if self.pg else \
            f"(json_type({col}, '$.{key}') IS NULL OR json_type({col}, '$.{key}') = 'null')"

    def fields(self, spec: Mapping[str, str], col: str = "data", alias: str = "x") -> tuple[str, dict[str, str]]:
        """Several JSON fields of ``col`` read at once: (a FROM suffix, {name: typed SQL}); ``spec``
        maps a field to f(loat) | i(nteger) | s(tring) | b(oolean 0/1). PostgreSQL parses the
        document once (``json_to_record``: a ``json`` column is re-parsed by every ``->>``)."""
        if not self.pg:
            return "", {k: getattr(self, t)(k, col) for k, t in spec.items()}
        lateral = f" CROSS JOIN LATERAL json_to_record({col}) AS {alias}(" + ", ".join(f'"{k}" text' for k in spec) + ")"
        out = {}
        for k, t in spec.items():
            v = f'{alias}."{k}"'
            out[k] = {"f": f"CAST({v} AS DOUBLE PRECISION)", "i": f"CAST({v} AS INTEGER)", "s": v,
                      "b": f"CASE WHEN {v} IS NULL OR {v} IN ('false', '0', '0.0', '', 'null') THEN 0 ELSE 1 END"}[t]
        return lateral, out

    def obj(self, pairs: Iterable[tuple[str, str]]) -> str:
        fn = "json_build_object" if self.pg else "json_object"
        return f"{fn}(" + ", ".join(f"'{k}', {v}" for k, v in pairs) + ")"

    def obj_agg(self, key: str, value: str) -> str:
        return f"json_object_agg({key}, {value})" if self.pg else f"json_group_object({key}, {value})"

    def empty_obj(self) -> str:
        return "CAST('{}' AS JSON)" if self.pg else "json('{}')"

    def json_or_empty(self, expr: str) -> str:
        """A JSON value, ``{}`` when NULL (SQLite: ``json()`` keeps it JSON inside ``json_object``)."""
        return f"COALESCE({expr}, CAST('{{}}' AS JSON))" if self.pg else f"json(COALESCE({expr}, '{{}}'))"

    def json_text(self, param: str) -> str:
        """A bound JSON text as a JSON value to insert."""
        return f"CAST({param} AS JSON)" if self.pg else param

    def greatest(self, a: str, b: str) -> str:
        return f"GREATEST({a}, {b})" if self.pg else f"MAX({a}, {b})"

    def least(self, a: str, b: str) -> str:
        return f"LEAST({a}, {b})" if self.pg else f"MIN({a}, {b})"


def _in(values: Iterable[str]) -> str:
    return "(" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + ")"


def _lit(v: Any) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, (int, float)):
        return repr(float(v))
    return "'" + str(v).replace("'", "''") + "'"


def _case(col: str, by_value: Mapping[str, Any], default: Any) -> str:
    """``CASE col WHEN k THEN v … ELSE default END`` (just the default when nothing differs)."""
    diff = {k: v for k, v in by_value.items() if v != default}
    if not diff:
        return _lit(default)
    return f"CASE {col} " + " ".join(f"WHEN {_lit(k)} THEN {_lit(v)}" for k, v in sorted(diff.items())) + \
        f" ELSE {_lit(default)} END"


def visits_cte(d: Dialect, lo: str = ":lo", hi: str = ":hi") -> str:
    """CTEs ``vf`` (the period's visit facts), ``vis`` (one row per visit: call_id, seq, queue,
    entered_at, agent_id, answered, completed, talk, hold, transferred, outcome, wait, rang,
    wrapup) — the visits :func:`reports.facts.fold_visits` gives for the facts anchored in
    [lo, hi)."""
    lat, x = d.fields({"seq": "i", "wait": "f", "talk": "f", "hold": "f", "transferred": "b", "outcome": "s",
                       "rang_agent": "b", "seconds": "f"})
    return f"""
vf AS (
  SELECT id, kind, at, anchor_at, COALESCE(call_id, '') AS call_id, queue, agent_id, COALESCE({x['seq']}, 0) AS seq,
         {x['wait']} AS wait, {x['talk']} AS talk, {x['hold']} AS hold, {x['transferred']} AS transferred,
         {x['outcome']} AS outcome, {x['rang_agent']} AS rang, {x['seconds']} AS seconds
  FROM report_facts{lat} WHERE anchor_at >= {lo} AND anchor_at < {hi} AND kind IN {_in(VISIT_KINDS)}
),
ve AS (SELECT id AS eid, anchor_at AS e_at, call_id, seq, COALESCE(queue, '') AS queue FROM vf WHERE kind = 'visit.entered'),
va AS (SELECT id AS aid, anchor_at AS a_at, call_id, seq, at AS answered_at, agent_id, wait FROM vf WHERE kind = 'visit.answered'),
vc AS (SELECT id AS cid, call_id, seq, COALESCE(talk, 0.0) AS talk, COALESCE(hold, 0.0) AS hold, transferred
       FROM vf WHERE kind = 'visit.completed'),
vl AS (SELECT id AS lid, call_id, seq, outcome, wait, rang FROM vf WHERE kind = 'visit.left'),
v0 AS (
  SELECT ve.call_id, ve.seq, ve.queue, ve.e_at AS entered_at, ve.eid, va.aid, va.a_at, va.agent_id,
         CASE WHEN va.aid IS NULL THEN 0 ELSE 1 END AS answered,
         CASE WHEN vc.cid IS NULL THEN 0 ELSE 1 END AS completed,
         COALESCE(vc.talk, 0.0) AS talk, COALESCE(vc.hold, 0.0) AS hold, COALESCE(vc.transferred, 0) AS transferred,
         CASE WHEN va.aid IS NOT NULL THEN CASE WHEN vc.cid IS NOT NULL THEN 'answered' ELSE 'in_progress' END
              WHEN vl.lid IS NOT NULL THEN COALESCE(NULLIF(vl.outcome, ''), 'abandoned') ELSE 'in_progress' END AS outcome,
         COALESCE(CASE WHEN va.aid IS NOT NULL THEN va.wait ELSE vl.wait END, 0.0) AS wait,
         COALESCE(vl.rang, 0) AS rang
  FROM ve LEFT JOIN va ON va.call_id = ve.call_id AND va.seq = ve.seq
          LEFT JOIN vc ON vc.call_id = ve.call_id AND vc.seq = ve.seq
          LEFT JOIN vl ON vl.call_id = ve.call_id AND vl.seq = ve.seq
),
wev AS (
  SELECT call_id, agent_id, seq, 1 AS isv,
         CASE WHEN a_at > entered_at OR (a_at = entered_at AND aid > eid) THEN a_at ELSE entered_at END AS o1,
         CASE WHEN a_at > entered_at OR (a_at = entered_at AND aid > eid) THEN aid ELSE eid END AS o2, 0.0 AS secs
  FROM v0 WHERE aid IS NOT NULL AND agent_id IS NOT NULL AND agent_id <> ''
  UNION ALL
  SELECT call_id, COALESCE(agent_id, '') AS agent_id, NULL AS seq, 0 AS isv, anchor_at AS o1, id AS o2,
         COALESCE(seconds, 0.0) AS secs
  FROM vf WHERE kind = 'wrapup'
),
wseq AS (
  SELECT isv, call_id, secs,
         MAX(CASE WHEN isv = 1 THEN seq END) OVER (PARTITION BY call_id, agent_id ORDER BY o1, o2
                                                   ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS before_seq,
         FIRST_VALUE(seq) OVER (PARTITION BY call_id, agent_id ORDER BY isv DESC, o1, o2
                                ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS first_seq
  FROM wev
),
wt AS (
  SELECT call_id, COALESCE(before_seq, first_seq) AS seq, SUM(secs) AS wrapup
  FROM wseq WHERE isv = 0 AND COALESCE(before_seq, first_seq) IS NOT NULL GROUP BY call_id, COALESCE(before_seq, first_seq)
),
vis AS (
  SELECT v0.*, COALESCE(wt.wrapup, 0.0) AS wrapup FROM v0 LEFT JOIN wt ON wt.call_id = v0.call_id AND wt.seq = v0.seq
)"""


def _queue_measures(configs: Mapping[str, fm.QueueConfig], default: fm.QueueConfig) -> str:
    """Per visit (``vis`` plus ``t``, ``sa``, ``excl`` thresholds): the 0/1 and second columns
    :func:`reports.formulas.add_visits` adds up."""
    t = _case("queue", {q: c.service_level_seconds for q, c in configs.items()}, default.service_level_seconds)
    sa = _case("queue", {q: c.short_abandon_seconds for q, c in configs.items()}, default.short_abandon_seconds)
    ex = _case("queue", {q: c.exclude_short_abandons for q, c in configs.items()}, default.exclude_short_abandons)
    short = f"(outcome = 'abandoned' AND wait < {sa})"
    counted = f"(outcome = 'abandoned' AND NOT ({short} AND {ex} = 1))"
    unans = f"({counted} OR outcome = 'timeout')"
    return f"""
    1 AS offered,
    answered,
    CASE WHEN {counted} THEN 1 ELSE 0 END AS abandoned,
    CASE WHEN {short} THEN 1 ELSE 0 END AS short_abandoned,
    CASE WHEN {counted} AND rang = 1 THEN 1 ELSE 0 END AS abandoned_ringing,
    CASE WHEN outcome = 'timeout' THEN 1 ELSE 0 END AS timeouts,
    CASE WHEN outcome = 'overflowed' THEN 1 ELSE 0 END AS overflowed,
    CASE WHEN outcome = 'in_progress' THEN 1 ELSE 0 END AS in_progress,
    CASE WHEN answered = 1 AND wait <= {t} THEN 1 ELSE 0 END AS answered_in_sl,
    CASE WHEN {unans} AND wait <= {t} THEN 1 ELSE 0 END AS abandoned_in_sl,
    CASE WHEN answered = 1 THEN wait ELSE 0.0 END AS wait_answered_total,
    CASE WHEN {unans} THEN wait ELSE 0.0 END AS wait_unanswered_total,
    CASE WHEN answered = 1 OR {unans} THEN wait ELSE 0.0 END AS longest_wait,
    CASE WHEN answered = 1 AND completed = 1 THEN 1 ELSE 0 END AS handled,
    CASE WHEN answered = 1 AND completed = 1 THEN talk ELSE 0.0 END AS talk_total,
    CASE WHEN answered = 1 AND completed = 1 THEN hold ELSE 0.0 END AS hold_total,
    CASE WHEN answered = 1 AND completed = 1 THEN wrapup ELSE 0.0 END AS wrapup_total,
    CASE WHEN answered = 1 AND transferred = 1 THEN 1 ELSE 0 END AS transfers"""


def _sums() -> str:
    return ", ".join(f"{'MAX' if k == 'longest_wait' else 'SUM'}({k}) AS {k}" for k in QUEUE_SUMS)


def queue_rollups_sql(d: Dialect, configs: Mapping[str, fm.QueueConfig], default: fm.QueueConfig,
                      days: list[tuple[float, float]]) -> str:
    """One ``INSERT INTO report_rollups … SELECT``: the settled 15-minute slots of [:lo, :hi)
    (a slot is settled when ``slot + 900 <= :slot_before`` and none of its visits is still in
    progress) and the settled days of ``days`` (wholly inside [:lo, :hi); ``end <= :day_before``).
    The slot of a visit is ``floor(entered / 900) * 900``: the caller checks the time zone's
    offset is a whole number of quarter hours over the period (every zone's is, today)."""
    cfg_json = _case("queue", {q: json.dumps(asdict(c)) for q, c in configs.items()}, json.dumps(asdict(default)))
    day_case = "CASE " + " ".join(f"WHEN entered_at >= {a!r} AND entered_at < {b!r} THEN {a!r}" for a, b in days) + \
        " END" if days else "CAST(NULL AS DOUBLE PRECISION)"
    day_end = "CASE " + " ".join(f"WHEN day = {a!r} THEN {b!r}" for a, b in days) + " END" if days else "NULL"
    counts = d.obj((k, k) for k in QUEUE_SUMS)
    slot = "(CAST(entered_at / 900 AS INTEGER) * 900.0)" if not d.pg else "(floor(entered_at / 900) * 900.0)"
    return f"""
INSERT INTO report_rollups (span, interval_start, queue, config, counts, built_at)
WITH {visits_cte(d)},
m AS (SELECT {slot} AS slot, {day_case} AS day, queue, {_queue_measures(configs, default)} FROM vis),
s15 AS (SELECT slot, queue, {_sums()}, SUM(SUM(in_progress)) OVER (PARTITION BY slot) AS busy FROM m GROUP BY slot, queue),
sday AS (SELECT day, queue, {_sums()}, SUM(SUM(in_progress)) OVER (PARTITION BY day) AS busy
         FROM m WHERE day IS NOT NULL GROUP BY day, queue)
SELECT '15min', slot, queue, {d.json_text(cfg_json)}, {counts}, :now FROM s15
WHERE busy = 0 AND slot + 900 <= :slot_before
UNION ALL
SELECT 'day', day, queue, {d.json_text(cfg_json)}, {counts}, :now FROM sday
WHERE busy = 0 AND {day_end} <= :day_before"""


def empty_day_sql(d: Dialect) -> str:
    """The marker row of a settled day with no visit (``queue`` "": the day is covered)."""
    return f"""
INSERT INTO report_rollups (span, interval_start, queue, config, counts, built_at)
SELECT 'day', :lo, '', {d.empty_obj()}, {d.empty_obj()}, :now
WHERE NOT EXISTS (SELECT 1 FROM report_facts WHERE anchor_at >= :lo AND anchor_at < :hi AND kind = 'visit.entered')"""


def queues_sql() -> str:
    """The queues the period's visits are in (their rollups' settings are looked up in Python)."""
    return ("SELECT DISTINCT COALESCE(queue, '') FROM report_facts "
            "WHERE anchor_at >= :lo AND anchor_at < :hi AND kind = 'visit.entered'")


def agent_rollups_sql(d: Dialect, survey_questions: Mapping[str, str], open_spans: int = 0) -> str:
    """One ``INSERT INTO report_agent_rollups … SELECT``: every agent's day [:lo, :hi) —
    :func:`reports.formulas.agent_days` of the day's visits, the agent spans overlapping it
    (stored ones anchored up to 31 days before, plus ``open_spans`` bound as ``:os_agent_N``,
    ``:os_state_N``, ``:os_start_N``, ``:os_end_N``, ``:os_reason_N``), the day's survey answers
    joined to the agent of the call, and the recording and QA facts of the day's calls."""
    qkind = _case(d.s("question"), dict(survey_questions), None) if survey_questions else "NULL"
    qkind = qkind.replace("ELSE NULL END", "END") if qkind != "NULL" else qkind
    seq = f"COALESCE({d.i('seq')}, 0)"
    os_rows = " UNION ALL ".join(
        f"SELECT :os_agent_{n} AS agent_id, :os_state_{n} AS state, :os_start_{n} AS s, :os_end_{n} AS e, "
        f":os_reason_{n} AS reason" for n in range(open_spans))
    spans = f"""
sp0 AS (
  SELECT COALESCE(agent_id, '') AS agent_id, substr(kind, 7) AS state, {d.f('start')} AS s, {d.f('end')} AS e,
         {d.s('reason')} AS reason
  FROM report_facts WHERE anchor_at >= :lo - {31 * 86400.0!r} AND anchor_at < :hi AND at > :lo AND kind IN {_in(SPAN_KINDS)}
  {"UNION ALL " + os_rows if open_spans else ""}
),
sp AS (
  SELECT agent_id, state, reason, {d.least('COALESCE(e, :hi)', ':hi')} - {d.greatest('s', ':lo')} AS secs
  FROM sp0 WHERE e IS NULL OR e > :lo
),
sp1 AS (SELECT * FROM sp WHERE secs > 0),
ag_login AS (SELECT agent_id, SUM(secs) AS login_seconds FROM sp1 WHERE state = 'logged_in' GROUP BY agent_id),
ag_pause1 AS (SELECT agent_id, COALESCE(reason, '(none)') AS reason, SUM(secs) AS secs FROM sp1
              WHERE state = 'paused' AND (reason IS NULL OR reason <> 'wrapup') GROUP BY agent_id, COALESCE(reason, '(none)')),
ag_pause AS (SELECT agent_id, {d.obj_agg('reason', 'secs')} AS pauses FROM ag_pause1 GROUP BY agent_id)"""
    agent_sql = f"""
ag_calls AS (
  SELECT agent_id, COUNT(*) AS answered, SUM(completed) AS handled,
         SUM(CASE WHEN completed = 1 THEN talk ELSE 0.0 END) AS talk_total,
         SUM(CASE WHEN completed = 1 THEN hold ELSE 0.0 END) AS hold_total,
         SUM(CASE WHEN completed = 1 THEN wrapup ELSE 0.0 END) AS wrapup_total, SUM(transferred) AS transfers
  FROM vis WHERE answered = 1 AND agent_id IS NOT NULL GROUP BY agent_id
)"""
    surveys = f"""
sv AS (
  SELECT COALESCE(call_id, '') AS call_id, {qkind} AS qk, {d.i('value')} AS value, agent_id
  FROM report_facts WHERE anchor_at >= :lo AND anchor_at < :hi AND kind = 'survey.answer' AND at >= :lo AND at < :hi
),
win_calls AS (SELECT DISTINCT call_id FROM vis),
agent_win AS (
  SELECT call_id, agent_id FROM (
    SELECT call_id, agent_id, ROW_NUMBER() OVER (PARTITION BY call_id ORDER BY seq DESC) AS rn
    FROM vis WHERE agent_id IS NOT NULL AND agent_id <> '') x WHERE rn = 1
),
missing AS (
  SELECT DISTINCT call_id FROM report_facts
  WHERE anchor_at >= :lo AND anchor_at < :hi AND kind = 'survey.answer' AND call_id IS NOT NULL AND call_id <> ''
    AND call_id NOT IN (SELECT call_id FROM win_calls)
),
agent_far AS (
  SELECT call_id, agent_id FROM (
    SELECT a.call_id, a.agent_id, ROW_NUMBER() OVER (PARTITION BY a.call_id ORDER BY {seq.replace('data', 'a.data')} DESC) AS rn
    FROM report_facts a
    WHERE a.kind = 'visit.answered' AND a.call_id IN (SELECT call_id FROM missing) AND a.agent_id IS NOT NULL AND a.agent_id <> ''
      AND EXISTS (SELECT 1 FROM report_facts e WHERE e.call_id = a.call_id AND e.kind = 'visit.entered'
                  AND {seq.replace('data', 'e.data')} = {seq.replace('data', 'a.data')})) x WHERE rn = 1
),
sva AS (
  SELECT COALESCE(NULLIF(sv.agent_id, ''), aw.agent_id, af.agent_id) AS agent_id, sv.qk, sv.value
  FROM sv LEFT JOIN agent_win aw ON aw.call_id = sv.call_id LEFT JOIN agent_far af ON af.call_id = sv.call_id
  WHERE sv.qk IS NOT NULL
),
ag_survey AS (
  SELECT agent_id,
         SUM(CASE WHEN qk = 'csat' AND value BETWEEN 1 AND {fm.CSAT_SCALE} THEN 1 ELSE 0 END) AS csat_answers,
         SUM(CASE WHEN qk = 'csat' AND value BETWEEN {fm.CSAT_SCALE - 1} AND {fm.CSAT_SCALE} THEN 1 ELSE 0 END) AS csat_top2,
         SUM(CASE WHEN qk = 'nps' AND value BETWEEN 0 AND 10 THEN 1 ELSE 0 END) AS nps_answers,
         SUM(CASE WHEN qk = 'nps' AND value BETWEEN 9 AND 10 THEN 1 ELSE 0 END) AS promoters,
         SUM(CASE WHEN qk = 'nps' AND value BETWEEN 0 AND 6 THEN 1 ELSE 0 END) AS detractors,
         SUM(CASE WHEN qk = 'resolved' AND value IN (1, 2) THEN 1 ELSE 0 END) AS resolved_answers,
         SUM(CASE WHEN qk = 'resolved' AND value = 1 THEN 1 ELSE 0 END) AS resolved_yes
  FROM sva WHERE agent_id IS NOT NULL AND agent_id <> '' AND agent_id <> '(none)' GROUP BY agent_id
)"""
    rlat, rx = d.fields({"required": "b", "status": "s", "direction": "s"}, "qf.data", "rx")
    quality = f"""
ans_calls AS (SELECT DISTINCT call_id FROM vis WHERE answered = 1),
entered_of AS (SELECT call_id, MIN(entered_at) AS e_at FROM vis GROUP BY call_id),
qf AS (
  SELECT id, kind, anchor_at, COALESCE(call_id, '') AS call_id, queue, agent_id, data FROM report_facts
  WHERE anchor_at >= :lo AND anchor_at < :hi AND kind IN {_in(REC_QA_KINDS)}
  UNION ALL
  SELECT r.id, r.kind, r.anchor_at, COALESCE(r.call_id, '') AS call_id, r.queue, r.agent_id, r.data
  FROM report_facts r JOIN ans_calls c ON r.call_id = c.call_id
  WHERE r.kind IN {_in(REC_QA_KINDS)} AND NOT (r.anchor_at >= :lo AND r.anchor_at < :hi)
),
rq AS (
  SELECT qf.call_id, qf.kind, qf.agent_id, qf.anchor_at, {rx['required']} AS required, {rx['status']} AS status,
         {rx['direction']} AS direction
  FROM qf{rlat} WHERE qf.kind IN ('recording.decided', 'recording.processed')
),
rec AS (
  SELECT call_id,
         COALESCE(MAX(CASE WHEN kind = 'recording.decided' THEN required END), 1) AS required,
         CASE WHEN MAX(CASE WHEN kind = 'recording.processed' THEN 1 END) = 1
              THEN COALESCE(NULLIF(MAX(CASE WHEN kind = 'recording.processed' THEN status END), ''), 'pending')
              ELSE COALESCE(NULLIF(MAX(CASE WHEN kind = 'recording.decided' THEN status END), ''), 'pending') END AS status,
         COALESCE(NULLIF(CASE WHEN MAX(CASE WHEN kind = 'recording.decided' THEN 1 END) = 1
                              THEN MAX(CASE WHEN kind = 'recording.decided' THEN direction END)
                              ELSE MAX(CASE WHEN kind = 'recording.processed' THEN direction END) END, ''), 'inbound')
           AS direction,
         CASE WHEN MAX(CASE WHEN kind = 'recording.decided' THEN 1 END) = 1
              THEN MAX(CASE WHEN kind = 'recording.decided' THEN agent_id END)
              ELSE MAX(CASE WHEN kind = 'recording.processed' THEN agent_id END) END AS agent_id,
         CASE WHEN MAX(CASE WHEN kind = 'recording.decided' THEN 1 END) = 1
              THEN MAX(CASE WHEN kind = 'recording.decided' THEN anchor_at END)
              ELSE MAX(CASE WHEN kind = 'recording.processed' THEN anchor_at END) END AS at
  FROM rq GROUP BY call_id
),
recs AS (
  SELECT rec.* FROM rec LEFT JOIN entered_of e ON e.call_id = rec.call_id
  WHERE COALESCE(e.e_at, rec.at) >= :lo AND COALESCE(e.e_at, rec.at) < :hi
),
hp0 AS (SELECT DISTINCT agent_id, call_id FROM vis WHERE answered = 1 AND agent_id IS NOT NULL),
hp AS (
  SELECT agent_id, call_id FROM hp0
  UNION
  SELECT agent_id, call_id FROM recs
  WHERE required = 1 AND direction <> 'inbound' AND agent_id IS NOT NULL AND call_id NOT IN (SELECT call_id FROM hp0)
),
ag_rec AS (
  SELECT hp.agent_id, COUNT(*) AS handled_calls, SUM(COALESCE(r.required, 0)) AS recording_required,
         SUM(CASE WHEN r.status = 'ready' THEN 1 ELSE 0 END) AS recorded,
         SUM(CASE WHEN r.status = 'failed' THEN 1 ELSE 0 END) AS recording_failed,
         SUM(CASE WHEN r.status = 'pending' THEN 1 ELSE 0 END) AS recording_pending
  FROM hp LEFT JOIN recs r ON r.call_id = hp.call_id GROUP BY hp.agent_id
),
sc0 AS (
  SELECT {d.s('evaluation', 'q.data')} AS ev, {d.i('revision', 'q.data')} AS rev, q.id, q.call_id,
         COALESCE(q.agent_id, '') AS agent_id, {d.f('total', 'q.data')} AS total, {d.b('critical_failed', 'q.data')} AS crit
  FROM qf q LEFT JOIN entered_of e ON e.call_id = q.call_id
  WHERE q.kind = 'qa.scored' AND COALESCE(e.e_at, q.anchor_at) >= :lo AND COALESCE(e.e_at, q.anchor_at) < :hi
),
sc AS (
  SELECT * FROM (SELECT sc0.*, ROW_NUMBER() OVER (PARTITION BY ev ORDER BY rev DESC, id) AS rn FROM sc0) x WHERE rn = 1
),
ag_qa AS (
  SELECT sc.agent_id, COUNT(*) AS evaluations, SUM(crit) AS critical_failed,
         SUM(CASE WHEN total IS NOT NULL THEN 1 ELSE 0 END) AS scored, SUM(COALESCE(total, 0.0)) AS score_total,
         COUNT(DISTINCT CASE WHEN hp.call_id IS NOT NULL AND sc.call_id <> '' THEN sc.call_id END) AS evaluated_calls
  FROM sc LEFT JOIN hp ON hp.agent_id = sc.agent_id AND hp.call_id = sc.call_id GROUP BY sc.agent_id
)"""
    z = "COALESCE({}, 0)"
    counts = d.obj([
        ("agent", d.obj([("answered", z.format("c.answered")), ("handled", z.format("c.handled")),
                         ("talk_total", z.format("c.talk_total")), ("hold_total", z.format("c.hold_total")),
                         ("wrapup_total", z.format("c.wrapup_total")), ("transfers", z.format("c.transfers")),
                         ("login_seconds", z.format("l.login_seconds")),
                         ("pause_seconds", d.json_or_empty("p.pauses"))])),
        ("survey", d.obj([(k, z.format("s." + k)) for k in ("csat_answers", "csat_top2", "nps_answers", "promoters",
                                                             "detractors", "resolved_answers", "resolved_yes")])),
        ("quality", d.obj([(k, z.format(("r." if k in ("handled_calls", "recording_required", "recorded",
                                                       "recording_failed", "recording_pending") else "q.") + k))
                           for k in ("handled_calls", "recording_required", "recorded", "recording_failed",
                                     "recording_pending", "evaluated_calls", "evaluations", "scored", "score_total",
                                     "critical_failed")])),
    ])
    return f"""
INSERT INTO report_agent_rollups (interval_start, agent_id, counts, built_at)
WITH {visits_cte(d)},
{spans},
{agent_sql},
{surveys},
{quality},
agents AS (
  SELECT agent_id FROM ag_calls UNION SELECT agent_id FROM sp1 UNION SELECT agent_id FROM ag_survey
  UNION SELECT agent_id FROM ag_rec UNION SELECT agent_id FROM ag_qa
)
SELECT :lo, a.agent_id, {counts}, :now
FROM agents a LEFT JOIN ag_calls c ON c.agent_id = a.agent_id LEFT JOIN ag_login l ON l.agent_id = a.agent_id
     LEFT JOIN ag_pause p ON p.agent_id = a.agent_id LEFT JOIN ag_survey s ON s.agent_id = a.agent_id
     LEFT JOIN ag_rec r ON r.agent_id = a.agent_id LEFT JOIN ag_qa q ON q.agent_id = a.agent_id"""


def empty_agent_day_sql(d: Dialect) -> str:
    return f"""
INSERT INTO report_agent_rollups (interval_start, agent_id, counts, built_at)
SELECT :lo, '', {d.empty_obj()}, :now
WHERE NOT EXISTS (SELECT 1 FROM report_agent_rollups WHERE interval_start = :lo)"""


def fcr_rollups_sql(d: Dialect, *, window: float, resolved_codes: Iterable[str], survey_questions: Mapping[str, str]) -> str:
    """One ``INSERT INTO report_rollups … SELECT`` of the ``fcr_day`` rollup of the day [:lo, :hi):
    per queue, FCR three ways (:func:`reports.formulas.fcr`, at :fcr_now) and the callbacks, plus
    the day's marker row (queue ""); ``:config`` is the JSON of the settings they depend on."""
    resolved_q = [q for q, k in survey_questions.items() if k == "resolved"]
    codes = list(resolved_codes) or ["\x00"]
    w = repr(float(window))
    lat, x = d.fields({"direction": "s", "caller": "s", "customer": "s", "first_queued_at": "f"})
    inbound = f"COALESCE({x['direction']}, 'inbound') = 'inbound'"
    counts = d.obj([(k, f"COALESCE({k}, 0)") for k in ("contacts", "repeat_resolved", "repeat_unresolved", "repeat_pending",
                                                      "repeat_unknown_caller", "disposition_resolved",
                                                      "disposition_total", "survey_resolved", "survey_total",
                                                      "callbacks_requested", "callbacks_completed")])
    return f"""
INSERT INTO report_rollups (span, interval_start, queue, config, counts, built_at)
WITH ce AS (
  SELECT COALESCE(call_id, '') AS call_id, queue, anchor_at,
         CASE WHEN {x['customer']} IS NULL THEN {x['caller']} ELSE 'customer:' || {x['customer']} END AS who,
         COALESCE(NULLIF({x['first_queued_at']}, 0), anchor_at) AS c_at
  FROM report_facts{lat}
  WHERE anchor_at >= :lo AND anchor_at < :hi + {w} AND kind = 'call.ended' AND {inbound} AND queue IS NOT NULL AND queue <> ''
),
disp AS (
  SELECT COALESCE(call_id, '') AS call_id,
         MAX(CASE WHEN {d.isnull('resolved')} THEN CASE WHEN {d.s('code')} IN {_in(codes)} THEN 1 ELSE 0 END
                  ELSE {d.b('resolved')} END) AS dres
  FROM report_facts WHERE anchor_at >= :lo AND anchor_at < :hi + {w} AND kind = 'disposition' GROUP BY COALESCE(call_id, '')
),
surv AS (
  SELECT COALESCE(call_id, '') AS call_id,
         MAX(CASE WHEN {d.s('question')} IN {_in(resolved_q or [chr(0)])} AND {d.i('value')} IN (1, 2)
                  THEN 2 - {d.i('value')} END) AS mapped,
         MAX(CASE WHEN {d.s('question')} = 'resolved' AND {d.i('value')} IN (1, 2) THEN 2 - {d.i('value')} END) AS literal
  FROM report_facts WHERE anchor_at >= :lo AND anchor_at < :hi + {w} AND kind = 'survey.answer' GROUP BY COALESCE(call_id, '')
),
con AS (
  SELECT ce.call_id, ce.queue, ce.who, ce.c_at, disp.dres, COALESCE(surv.mapped, surv.literal) AS sres
  FROM ce LEFT JOIN disp ON disp.call_id = ce.call_id LEFT JOIN surv ON surv.call_id = ce.call_id
  WHERE ce.anchor_at < :hi AND ce.c_at >= :lo AND ce.c_at < :hi
),
rep AS (
  SELECT con.call_id, MAX(CASE WHEN l.call_id IS NOT NULL THEN 1 ELSE 0 END) AS repeated
  FROM con LEFT JOIN ce l ON l.who = con.who AND l.c_at > con.c_at AND l.c_at <= con.c_at + {w}
  WHERE con.who IS NOT NULL AND con.who <> '' GROUP BY con.call_id
),
fq AS (
  SELECT con.queue,
         COUNT(*) AS contacts,
         SUM(CASE WHEN rep.repeated = 0 AND con.c_at + {w} <= :fcr_now THEN 1 ELSE 0 END) AS repeat_resolved,
         SUM(CASE WHEN rep.repeated = 1 THEN 1 ELSE 0 END) AS repeat_unresolved,
         SUM(CASE WHEN rep.repeated = 0 AND con.c_at + {w} > :fcr_now THEN 1 ELSE 0 END) AS repeat_pending,
         SUM(CASE WHEN rep.call_id IS NULL THEN 1 ELSE 0 END) AS repeat_unknown_caller,
         SUM(COALESCE(con.dres, 0)) AS disposition_resolved,
         SUM(CASE WHEN con.dres IS NOT NULL THEN 1 ELSE 0 END) AS disposition_total,
         SUM(COALESCE(con.sres, 0)) AS survey_resolved,
         SUM(CASE WHEN con.sres IS NOT NULL THEN 1 ELSE 0 END) AS survey_total
  FROM con LEFT JOIN rep ON rep.call_id = con.call_id GROUP BY con.queue
),
req AS (
  SELECT {d.s('callback')} AS cb, MAX(id) AS id FROM report_facts
  WHERE anchor_at >= :lo - {31 * 86400.0!r} AND anchor_at < :hi AND kind = 'callback.requested' GROUP BY {d.s('callback')}
),
cbq AS (
  SELECT COALESCE(NULLIF(f.queue, ''), NULLIF(r.queue, ''), '') AS queue,
         SUM(CASE WHEN f.kind = 'callback.requested' THEN 1 ELSE 0 END) AS callbacks_requested,
         SUM(CASE WHEN f.kind = 'callback.completed' THEN 1 ELSE 0 END) AS callbacks_completed
  FROM report_facts f LEFT JOIN req ON req.cb = {d.s('callback', 'f.data')} LEFT JOIN report_facts r ON r.id = req.id
  WHERE f.anchor_at >= :lo AND f.anchor_at < :hi AND f.kind IN ('callback.requested', 'callback.completed')
  GROUP BY COALESCE(NULLIF(f.queue, ''), NULLIF(r.queue, ''), '')
),
qs AS (SELECT queue FROM fq UNION SELECT queue FROM cbq)
SELECT 'fcr_day', :lo, qs.queue, {d.json_text(':config')}, {counts}, :now
FROM qs LEFT JOIN fq ON fq.queue = qs.queue LEFT JOIN cbq ON cbq.queue = qs.queue
UNION ALL
SELECT 'fcr_day', :lo, '', {d.json_text(':config')}, {d.empty_obj()}, :now"""
