"""Sampling rules → a QA work list (pure: no I/O, no clock, no global random).

Rules live in ``qa-forms/sampling.yaml`` (checked by ``callcore qa check`` with
``file:line:col``). Kinds:

* ``per_agent``      ``count: N``     N random calls per agent per period
* ``queue_percent``  ``percent: X``   X % of each queue's calls (rounded up), optional ``queues:``
* ``shorter_than``   ``seconds: T``   every call shorter than T seconds
* ``csat_below``     ``value: V``     every call whose CSAT answer is below V
* ``disposition``    ``in: [...]``    every call with one of these dispositions
* ``flagged``        ``flags: [...]`` every call the recording policy flagged (any flag if omitted)

Rules run in file order; a call is picked once (by the first rule that picks it,
the others are listed in ``also``). Random draws are stratified (per agent, per
queue) and reproducible: each stratum has its own RNG seeded from
``sha256(seed | period | rule | stratum)``, over candidates sorted by
``(started_at, recording_id)``. Picks are spread over the evaluators, least
loaded first, never to the evaluated agent, within each evaluator's daily cap.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Iterable, Mapping, Sequence

from ivr.loader import LList, LMap, LoadError, Pos, Problem, load_yaml
from qa.forms import suggest

RANDOM_KINDS = ("per_agent", "queue_percent")
ALL_KINDS = ("shorter_than", "csat_below", "disposition", "flagged")
KINDS = RANDOM_KINDS + ALL_KINDS
PERIODS = ("week", "day")
RULES_FILE = "sampling.yaml"


@dataclass(frozen=True)
class Candidate:
    """A recorded call that may be evaluated."""

    recording_id: str
    agent_id: str
    started_at: datetime
    duration: float
    queue: str | None = None
    call_id: str | None = None
    csat: float | None = None
    disposition: str | None = None
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rule:
    id: str
    kind: str
    params: Mapping[str, Any]
    form: str | None = None


@dataclass(frozen=True)
class Evaluator:
    id: str
    daily_cap: int


@dataclass(frozen=True)
class RuleSet:
    period: str
    seed: str
    form: str | None
    rules: tuple[Rule, ...]
    evaluators: tuple[Evaluator, ...]
    file: str = ""


@dataclass
class Pick:
    candidate: Candidate
    rule: str
    reason: str
    form: str | None
    also: list[str] = field(default_factory=list)
    evaluator: str | None = None

    def as_dict(self) -> dict[str, Any]:
        c = self.candidate
        return {
            "recording_id": c.recording_id, "call_id": c.call_id, "agent_id": c.agent_id, "queue": c.queue,
            "rule": self.rule, "reason": self.reason, "also": self.also, "form": self.form, "evaluator": self.evaluator,
        }


# ------------------------------------------------------------------ periods
def period_key(period: str, day: date) -> str:
    if period == "day":
        return day.isoformat()
    y, w, _ = day.isocalendar()
    return f"{y}-W{w:02d}"


def period_bounds(period: str, day: date) -> tuple[date, date]:
    """[first day, day after the last day) of the period containing ``day``."""
    if period == "day":
        return day, day + timedelta(days=1)
    start = day - timedelta(days=day.weekday())
    return start, start + timedelta(days=7)


def _rng(seed: str, period: str, rule: str, stratum: str) -> random.Random:
    digest = hashlib.sha256("|".join((seed, period, rule, stratum)).encode("utf-8")).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


# ------------------------------------------------------------------ drawing
def draw(rules: RuleSet, candidates: Iterable[Candidate], period: str, *, exclude: Iterable[str] = ()) -> list[Pick]:
    """The picks of one period (``period`` is its key, e.g. ``2026-W49``).

    ``exclude``: recordings already in the work list (never picked twice)."""
    pool = sorted({c.recording_id: c for c in candidates}.values(), key=lambda c: (c.started_at, c.recording_id))
    taken: set[str] = set(exclude)
    picks: dict[str, Pick] = {}
    for rule in rules.rules:
        form = rule.form or rules.form
        for cand, reason in _apply(rule, pool, period, rules.seed, taken):
            if cand.recording_id in picks:
                picks[cand.recording_id].also.append(rule.id)
            elif cand.recording_id not in taken:
                picks[cand.recording_id] = Pick(cand, rule.id, f"picked by rule {rule.id}: {reason}", form)
        taken |= set(picks)
    return list(picks.values())


def _apply(rule: Rule, pool: Sequence[Candidate], period: str, seed: str, taken: set[str]) -> list[tuple[Candidate, str]]:
    p = rule.params
    if rule.kind == "shorter_than":
        t = float(p["seconds"])
        return [(c, f"{c.duration:g} s is shorter than {t:g} s") for c in pool if c.duration < t]
    if rule.kind == "csat_below":
        v = float(p["value"])
        return [(c, f"CSAT {c.csat:g} is below {v:g}") for c in pool if c.csat is not None and c.csat < v]
    if rule.kind == "disposition":
        wanted = set(p["in"])
        return [(c, f"disposition {c.disposition}") for c in pool if c.disposition in wanted]
    if rule.kind == "flagged":
        wanted = set(p.get("flags") or [])
        out = []
        for c in pool:
            hit = [f for f in c.flags if not wanted or f in wanted]
            if hit:
                out.append((c, f"flagged by the recording policy ({', '.join(hit)})"))
        return out
    # random kinds: stratify, draw among the calls no earlier rule took
    strata: dict[str, list[Candidate]] = {}
    if rule.kind == "per_agent":
        for c in pool:
            strata.setdefault(c.agent_id, []).append(c)
    else:
        queues = set(p.get("queues") or [])
        for c in pool:
            if c.queue is not None and (not queues or c.queue in queues):
                strata.setdefault(c.queue, []).append(c)
    out = []
    for key in sorted(strata):
        members = strata[key]
        if rule.kind == "per_agent":
            n = int(p["count"])
            what = f"{n} random call(s) of agent {key} in {period}"
        else:
            n = math.ceil(len(members) * float(p["percent"]) / 100.0)
            what = f"{p['percent']:g} % of queue {key} in {period} ({n} of {len(members)})"
        free = [c for c in members if c.recording_id not in taken]
        rng = _rng(seed, period, rule.id, key)
        chosen = rng.sample(free, min(n, len(free))) if free else []
        chosen.sort(key=lambda c: (c.started_at, c.recording_id))
        out.extend((c, what) for c in chosen)
    return out


def assign(picks: list[Pick], evaluators: Sequence[Evaluator], *, load: Mapping[str, int] | None = None) -> list[Pick]:
    """Give each pick an evaluator (least loaded today first, file order on ties; never the agent
    evaluated), honouring each evaluator's daily cap. ``load``: items already assigned today.
    Returns the picks left unassigned (every cap reached)."""
    used = {e.id: int((load or {}).get(e.id, 0)) for e in evaluators}
    left: list[Pick] = []
    order = {e.id: i for i, e in enumerate(evaluators)}
    for pick in picks:
        options = [e for e in evaluators if used[e.id] < e.daily_cap and e.id != pick.candidate.agent_id]
        if not options:
            left.append(pick)
            continue
        best = min(options, key=lambda e: (used[e.id], order[e.id]))
        pick.evaluator = best.id
        used[best.id] += 1
    return left


# ------------------------------------------------------------------ parsing
def parse_rules(text: str, file: str, forms: Iterable[str] | None = None) -> tuple[RuleSet | None, list[Problem]]:
    """Parse and check ``sampling.yaml``; ``forms``: known form ids (a rule naming another is an error)."""
    problems: list[Problem] = []
    err = lambda pos, msg: problems.append(Problem(pos, msg))  # noqa: E731
    try:
        data, dup = load_yaml(text, file)
    except LoadError as exc:
        return None, [exc.problem]
    problems.extend(dup)
    if not isinstance(data, LMap):
        return None, problems + [Problem(Pos(file, 1, 1), "the sampling file must be a mapping")]
    allowed = {"period", "seed", "form", "rules", "evaluators"}
    for k in data:
        if k not in allowed:
            err(data.where_key(k), f"unknown field {k!r}{suggest(str(k), allowed)}")
    known_forms = set(forms) if forms is not None else None

    def check_form(m: LMap) -> str | None:
        if "form" not in m:
            return None
        f = str(m["form"])
        if known_forms is not None and f not in known_forms:
            err(m.where("form"), f"no form {f!r}{suggest(f, known_forms)}")
        return f

    period = str(data.get("period", "week"))
    if period not in PERIODS:
        err(data.where("period"), f"period must be one of {', '.join(PERIODS)}")
    seed = str(data.get("seed", "callcore"))
    form = check_form(data)

    evaluators: list[Evaluator] = []
    ev = data.get("evaluators")
    if not isinstance(ev, LList) or not ev:
        err(data.where("evaluators"), "'evaluators' must be a non-empty list of {id, daily_cap}")
        ev = LList()
        ev.item_pos = []
    seen_ev: set[str] = set()
    for i, raw in enumerate(ev):
        if not isinstance(raw, LMap):
            err(ev.where(i), "an evaluator must be a mapping {id, daily_cap}")
            continue
        for k in raw:
            if k not in ("id", "daily_cap"):
                err(raw.where_key(k), f"unknown field {k!r} in an evaluator")
        eid = raw.get("id")
        cap = raw.get("daily_cap")
        if not isinstance(eid, (str, int)) or isinstance(eid, bool):
            err(raw.where("id"), "an evaluator needs an 'id'")
            continue
        if str(eid) in seen_ev:
            err(raw.where("id"), f"duplicate evaluator {eid!r}")
        if not isinstance(cap, int) or isinstance(cap, bool) or cap < 1:
            err(raw.where("daily_cap"), f"evaluator {eid!r}: 'daily_cap' must be a whole number >= 1")
            continue
        seen_ev.add(str(eid))
        evaluators.append(Evaluator(str(eid), cap))

    rules: list[Rule] = []
    rs = data.get("rules")
    if not isinstance(rs, LList) or not rs:
        err(data.where("rules"), "'rules' must be a non-empty list")
        rs = LList()
        rs.item_pos = []
    seen: dict[str, Pos] = {}
    spec: dict[str, dict[str, type | tuple]] = {
        "per_agent": {"count": int},
        "queue_percent": {"percent": (int, float)},
        "shorter_than": {"seconds": (int, float)},
        "csat_below": {"value": (int, float)},
        "disposition": {"in": list},
        "flagged": {},
    }
    optional = {"queue_percent": {"queues": list}, "flagged": {"flags": list}}
    for i, raw in enumerate(rs):
        if not isinstance(raw, LMap):
            err(rs.where(i), "a rule must be a mapping")
            continue
        rid = raw.get("id")
        if not isinstance(rid, str) or not rid:
            err(raw.where("id"), "a rule needs an 'id'")
            continue
        if rid in seen:
            err(raw.where("id"), f"duplicate rule id {rid!r} (first at line {seen[rid].line})")
            continue
        seen[rid] = raw.where("id")
        kind = str(raw.get("kind", ""))
        if kind not in spec:
            err(raw.where("kind"), f"rule {rid!r}: kind must be one of {', '.join(KINDS)}{suggest(kind, KINDS)}")
            continue
        fields = {**spec[kind], **optional.get(kind, {})}
        for k in raw:
            if k not in {"id", "kind", "form", *fields}:
                err(raw.where_key(k), f"rule {rid!r}: unknown field {k!r} for kind {kind}{suggest(str(k), fields)}")
        params: dict[str, Any] = {}
        bad = False
        for k, typ in fields.items():
            if k not in raw:
                if k in spec[kind]:
                    err(raw.pos, f"rule {rid!r}: kind {kind} needs {k!r}")
                    bad = True
                continue
            v = raw[k]
            if isinstance(v, bool) or not isinstance(v, typ):
                err(raw.where(k), f"rule {rid!r}: {k!r} has the wrong type")
                bad = True
                continue
            params[k] = list(v) if isinstance(v, list) else v
        if kind == "queue_percent" and "percent" in params and not 0 < params["percent"] <= 100:
            err(raw.where("percent"), f"rule {rid!r}: percent must be in (0, 100]")
            bad = True
        if kind == "per_agent" and "count" in params and params["count"] < 1:
            err(raw.where("count"), f"rule {rid!r}: count must be >= 1")
            bad = True
        f = check_form(raw)
        if not bad:
            rules.append(Rule(rid, kind, params, f))
    if known_forms is not None and form is None and len(known_forms) != 1 and any(r.form is None for r in rules):
        err(data.pos, "name a 'form' (top level or per rule): there is not exactly one form")
    if any(p.severity == "error" for p in problems):
        return None, problems
    if form is None and known_forms is not None and len(known_forms) == 1:
        form = next(iter(known_forms))
    return RuleSet(period, seed, form, tuple(rules), tuple(evaluators), file), problems
