"""Evaluation forms as code: parse a located YAML document into a :class:`Form`.

A form file (``qa-forms/*.yaml``, see ``docs/qa.md``) has sections with
weights, questions (``yesno``, ``scale`` 1–5, ``choice``) with per-option
points, N/A, critical questions, conditions (``when``) and score bands.
Parsing reuses the dialplan loader (:func:`ivr.loader.load_yaml`) so every
problem carries ``file:line:col``; :func:`parse_form` reports structural and
meaning problems (weights not summing to 100, a condition naming a missing or
later question or an unknown option, duplicate ids, bands not reaching 0).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Mapping

from ivr.loader import LList, LMap, LoadError, Pos, Problem, load_yaml

QUESTION_TYPES = ("yesno", "scale", "choice")
CRITICAL_MODES = ("zero", "cap")
#: default points per answer of the built-in types (override with ``scores:``)
DEFAULT_SCORES: dict[str, dict[str, float]] = {
    "yesno": {"yes": 1.0, "no": 0.0},
    "scale": {"1": 0.0, "2": 1.0, "3": 2.0, "4": 3.0, "5": 4.0},
}
NA = "na"


def text_of(value: Any) -> dict[str, str]:
    """A label: a plain string (used for every language) or ``{ko: ..., en: ...}``."""
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    return {"en": str(value), "ko": str(value)} if value is not None else {}


@dataclass(frozen=True)
class Option:
    id: str
    points: float
    label: dict[str, str]
    fail: bool = False  # answering this fails a critical question


@dataclass(frozen=True)
class Condition:
    """Show the question only if ``question``'s answer is one of ``values``."""

    question: str
    values: tuple[str, ...]

    def holds(self, answers: Mapping[str, str]) -> bool:
        return answers.get(self.question) in self.values


@dataclass(frozen=True)
class Question:
    id: str
    type: str
    text: dict[str, str]
    options: tuple[Option, ...]
    na_allowed: bool = False
    critical: bool = False
    when: Condition | None = None
    pos: Pos | None = field(default=None, compare=False)

    @property
    def max_points(self) -> float:
        return max((o.points for o in self.options), default=0.0)

    def option(self, answer: str) -> Option | None:
        for o in self.options:
            if o.id == answer:
                return o
        return None


@dataclass(frozen=True)
class Section:
    id: str
    title: dict[str, str]
    weight: float
    questions: tuple[Question, ...]


@dataclass(frozen=True)
class Band:
    min: float
    id: str
    label: dict[str, str]


@dataclass(frozen=True)
class Form:
    id: str
    title: dict[str, str]
    sections: tuple[Section, ...]
    bands: tuple[Band, ...]  # highest ``min`` first
    critical_mode: str = "zero"
    critical_cap: float = 0.0
    file: str = ""

    def questions(self) -> list[Question]:
        return [q for s in self.sections for q in s.questions]

    def question(self, qid: str) -> Question | None:
        for q in self.questions():
            if q.id == qid:
                return q
        return None

    def band_for(self, total: float) -> Band | None:
        for b in self.bands:
            if total >= b.min:
                return b
        return None

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "critical": {"mode": self.critical_mode, "cap": self.critical_cap},
            "bands": [{"id": b.id, "min": b.min, "label": b.label} for b in self.bands],
            "sections": [
                {
                    "id": s.id, "title": s.title, "weight": s.weight,
                    "questions": [
                        {
                            "id": q.id, "type": q.type, "text": q.text, "na_allowed": q.na_allowed,
                            "critical": q.critical,
                            "when": {"question": q.when.question, "in": list(q.when.values)} if q.when else None,
                            "options": [{"id": o.id, "points": o.points, "label": o.label, "fail": o.fail} for o in q.options],
                        }
                        for q in s.questions
                    ],
                }
                for s in self.sections
            ],
        }


def suggest(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, [str(c) for c in choices], n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _Ctx:
    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    def err(self, pos: Pos, msg: str) -> None:
        self.problems.append(Problem(pos, msg))

    def fields(self, m: LMap, allowed: set[str], what: str) -> None:
        for key in m:
            if key not in allowed:
                self.err(m.where_key(key), f"unknown field {key!r} in {what}{suggest(str(key), allowed)}")

    def mapping(self, value: Any, pos: Pos, what: str) -> LMap | None:
        if not isinstance(value, LMap):
            self.err(pos, f"{what} must be a mapping")
            return None
        return value

    def seq(self, value: Any, pos: Pos, what: str) -> LList | None:
        if not isinstance(value, LList) or not value:
            self.err(pos, f"{what} must be a non-empty list")
            return None
        return value

    def number(self, m: LMap, key: str, default: float | None, what: str) -> float | None:
        v = m.get(key, default)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            if key in m or default is None:
                self.err(m.where(key), f"{what}: {key!r} must be a number")
            return default
        return float(v)

    def ident(self, m: LMap, what: str) -> str | None:
        v = m.get("id")
        if not isinstance(v, (str, int)) or isinstance(v, bool) or str(v).strip() == "":
            self.err(m.where("id"), f"{what} needs an 'id'")
            return None
        return str(v)


def _answer_key(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    return str(v)


def _options(ctx: _Ctx, q: LMap, qtype: str, what: str) -> list[Option]:
    fails: set[str] = set()
    if "fail_on" in q:
        raw = q["fail_on"] if isinstance(q["fail_on"], list) else [q["fail_on"]]
        fails = {_answer_key(v) for v in raw}
    if qtype == "choice":
        if "scores" in q:
            ctx.err(q.where_key("scores"), f"{what}: a choice question gives points per option ('options'), not 'scores'")
        seq = ctx.seq(q.get("options"), q.where("options"), f"{what}: 'options'")
        out: list[Option] = []
        seen: dict[str, Pos] = {}
        for i, raw in enumerate(seq or []):
            o = ctx.mapping(raw, seq.where(i), f"{what}: an option")
            if o is None:
                continue
            ctx.fields(o, {"id", "label", "points", "fail"}, f"option of {what}")
            oid = ctx.ident(o, f"an option of {what}")
            pts = ctx.number(o, "points", None, f"option {oid!r} of {what}")
            if oid is None:
                continue
            if oid in seen:
                ctx.err(o.where("id"), f"duplicate option id {oid!r} in {what} (first at line {seen[oid].line})")
                continue
            if oid == NA:
                ctx.err(o.where("id"), f"{what}: 'na' is reserved (use 'na: true' to allow N/A)")
                continue
            seen[oid] = o.where("id")
            fail = o.get("fail", False)
            if not isinstance(fail, bool):
                ctx.err(o.where("fail"), f"option {oid!r}: 'fail' must be true or false")
                fail = False
            out.append(Option(oid, pts if pts is not None else 0.0, text_of(o.get("label", oid)), bool(fail) or oid in fails))
        return out
    if "options" in q:
        ctx.err(q.where_key("options"), f"{what}: only choice questions have 'options' (use 'scores' to change points)")
    scores = dict(DEFAULT_SCORES[qtype])
    if "scores" in q:
        sm = ctx.mapping(q["scores"], q.where("scores"), f"{what}: 'scores'")
        for key in sm or {}:
            k = _answer_key(key)
            if k not in scores:
                ctx.err(sm.where_key(key), f"{what}: no answer {k!r} for a {qtype} question (answers: {', '.join(scores)})")
                continue
            v = sm[key]
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                ctx.err(sm.where(key), f"{what}: points for {k!r} must be a number")
                continue
            scores[k] = float(v)
    labels = {"yes": {"en": "Yes", "ko": "예"}, "no": {"en": "No", "ko": "아니오"}}
    return [Option(k, v, labels.get(k, {"en": k, "ko": k}), k in fails) for k, v in scores.items()]


def parse_form(text: str, file: str) -> tuple[Form | None, list[Problem]]:
    """Parse and check one form file; ``(None, problems)`` when it cannot be used."""
    ctx = _Ctx(file)
    try:
        data, dup = load_yaml(text, file)
    except LoadError as exc:
        return None, [exc.problem]
    ctx.problems.extend(dup)
    top = ctx.mapping(data, Pos(file, 1, 1), "a form file")
    if top is None:
        return None, ctx.problems
    ctx.fields(top, {"id", "title", "critical", "bands", "sections", "description"}, "the form")
    form_id = ctx.ident(top, "the form")

    mode, cap = "zero", 0.0
    if "critical" in top:
        c = ctx.mapping(top["critical"], top.where("critical"), "'critical'")
        if c is not None:
            ctx.fields(c, {"mode", "cap"}, "'critical'")
            mode = str(c.get("mode", "zero"))
            if mode not in CRITICAL_MODES:
                ctx.err(c.where("mode"), f"critical mode must be one of {', '.join(CRITICAL_MODES)}{suggest(mode, CRITICAL_MODES)}")
                mode = "zero"
            cap = ctx.number(c, "cap", 0.0, "'critical'") or 0.0
            if mode == "cap" and "cap" not in c:
                ctx.err(c.pos, "critical mode 'cap' needs 'cap' (the highest total a critical failure allows)")
            if not 0 <= cap <= 100:
                ctx.err(c.where("cap"), "critical cap must be between 0 and 100")

    bands: list[Band] = []
    seq = ctx.seq(top.get("bands"), top.where("bands"), "'bands'")
    band_ids: set[str] = set()
    for i, raw in enumerate(seq or []):
        b = ctx.mapping(raw, seq.where(i), "a band")
        if b is None:
            continue
        ctx.fields(b, {"id", "min", "label"}, "a band")
        bid = ctx.ident(b, "a band")
        bmin = ctx.number(b, "min", None, f"band {bid!r}")
        if bid is None or bmin is None:
            continue
        if bid in band_ids:
            ctx.err(b.where("id"), f"duplicate band id {bid!r}")
        if not 0 <= bmin <= 100:
            ctx.err(b.where("min"), f"band {bid!r}: min must be between 0 and 100")
        if any(x.min == bmin for x in bands):
            ctx.err(b.where("min"), f"two bands start at {bmin:g}")
        band_ids.add(bid)
        bands.append(Band(bmin, bid, text_of(b.get("label", bid))))
    if seq and bands and min(b.min for b in bands) != 0:
        ctx.err(seq.pos, "the lowest band must start at 0 (every total needs a band)")

    sections: list[Section] = []
    qids: dict[str, Pos] = {}
    questions_so_far: dict[str, Question] = {}
    sids: dict[str, Pos] = {}
    total_weight = 0.0
    sseq = ctx.seq(top.get("sections"), top.where("sections"), "'sections'")
    for i, raw in enumerate(sseq or []):
        s = ctx.mapping(raw, sseq.where(i), "a section")
        if s is None:
            continue
        ctx.fields(s, {"id", "title", "weight", "questions"}, "a section")
        sid = ctx.ident(s, "a section")
        weight = ctx.number(s, "weight", None, f"section {sid!r}")
        if weight is not None:
            if weight <= 0:
                ctx.err(s.where("weight"), f"section {sid!r}: weight must be > 0")
            total_weight += weight
        if sid is not None:
            if sid in sids:
                ctx.err(s.where("id"), f"duplicate section id {sid!r} (first at line {sids[sid].line})")
            sids[sid] = s.where("id")
        qs: list[Question] = []
        qseq = ctx.seq(s.get("questions"), s.where("questions"), f"section {sid!r}: 'questions'")
        for j, qraw in enumerate(qseq or []):
            q = ctx.mapping(qraw, qseq.where(j), "a question")
            if q is None:
                continue
            ctx.fields(q, {"id", "text", "type", "options", "scores", "na", "critical", "when", "fail_on"}, "a question")
            qid = ctx.ident(q, "a question")
            if qid is None:
                continue
            what = f"question {qid!r}"
            if qid in qids:
                ctx.err(q.where("id"), f"duplicate question id {qid!r} (first at line {qids[qid].line})")
                continue
            qids[qid] = q.where("id")
            qtype = str(q.get("type", ""))
            if qtype not in QUESTION_TYPES:
                ctx.err(q.where("type"), f"{what}: type must be one of {', '.join(QUESTION_TYPES)}{suggest(qtype, QUESTION_TYPES)}")
                continue
            options = _options(ctx, q, qtype, what)
            flags = {}
            for flag in ("na", "critical"):
                v = q.get(flag, False)
                if not isinstance(v, bool):
                    ctx.err(q.where(flag), f"{what}: {flag!r} must be true or false")
                    v = False
                flags[flag] = v
            if options and max(o.points for o in options) <= 0:
                ctx.err(q.pos, f"{what}: no answer earns points (the question could never score)")
            if flags["critical"] and options and not any(o.fail for o in options):
                # default: a critical question fails on every answer that earns no points
                options = [Option(o.id, o.points, o.label, o.points <= 0) for o in options]
            if "fail_on" in q:
                known = {o.id for o in options}
                raw_f = q["fail_on"] if isinstance(q["fail_on"], list) else [q["fail_on"]]
                for v in raw_f:
                    if _answer_key(v) not in known:
                        ctx.err(q.where("fail_on"), f"{what}: fail_on names no answer {_answer_key(v)!r}{suggest(_answer_key(v), known)}")
                if not flags["critical"]:
                    ctx.err(q.where_key("fail_on"), f"{what}: 'fail_on' only applies to a critical question")
            when = _condition(ctx, q, what, questions_so_far)
            question = Question(qid, qtype, text_of(q.get("text", qid)), tuple(options), flags["na"], flags["critical"], when, q.pos)
            questions_so_far[qid] = question
            qs.append(question)
        sections.append(Section(sid or f"section{i + 1}", text_of(s.get("title", sid)), weight or 0.0, tuple(qs)))
    if sseq and abs(total_weight - 100) > 1e-9:
        ctx.err(sseq.pos, f"section weights sum to {total_weight:g}, not 100")

    errors = [p for p in ctx.problems if p.severity == "error"]
    if errors or form_id is None:
        return None, ctx.problems
    bands.sort(key=lambda b: -b.min)
    return Form(form_id, text_of(top.get("title", form_id)), tuple(sections), tuple(bands), mode, cap, file), ctx.problems


def _condition(ctx: _Ctx, q: LMap, what: str, earlier: Mapping[str, Question]) -> Condition | None:
    if "when" not in q:
        return None
    w = ctx.mapping(q["when"], q.where("when"), f"{what}: 'when'")
    if w is None:
        return None
    ctx.fields(w, {"question", "equals", "in"}, f"'when' of {what}")
    ref = str(w.get("question", ""))
    if ref not in earlier:
        hint = suggest(ref, earlier) or ""
        ctx.err(w.where("question"), f"{what}: condition names question {ref!r}, which is not defined before it{hint}")
        return None
    if ("equals" in w) == ("in" in w):
        ctx.err(w.pos, f"{what}: a condition needs exactly one of 'equals' or 'in'")
        return None
    raw = w["equals"] if "equals" in w else w["in"]
    values = [raw] if not isinstance(raw, list) else list(raw)
    known = {o.id for o in earlier[ref].options} | ({NA} if earlier[ref].na_allowed else set())
    out = []
    key = "equals" if "equals" in w else "in"
    for v in values:
        k = _answer_key(v)
        if k not in known:
            ctx.err(w.where(key), f"{what}: question {ref!r} has no answer {k!r}{suggest(k, known)}")
        out.append(k)
    return Condition(ref, tuple(out))
