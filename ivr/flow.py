"""The typed flow model and the schema that builds it from located YAML.

``parse_flow`` turns one dialplan file into a :class:`Flow` and a list of
:class:`~ivr.loader.Problem` (unknown node type or field, wrong value type,
bad variable name, invalid schedule, expression syntax...). Meaning checks
that need the whole flow or every flow (targets, reachability, loops that
never wait, sounds) live in :mod:`ivr.checker`.

Every node is a :class:`Node` with its ``type``, validated ``args`` (defaults
filled in) and the position of every field, so the engine never sees an
unvalidated value and the checker can point at the exact field.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import PurePosixPath
from typing import Any, Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ivr import expressions
from ivr.loader import LList, LMap, LoadError, Pos, Problem, load_yaml
from ivr.schedule import Exception_, Holiday, Schedule, ScheduleError, TimeRange, parse_days, parse_range

VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
NODE_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
SOUND_NAME = re.compile(r"^[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-]+)*$")
LANG = re.compile(r"^[a-z]{2,3}(_[A-Z]{2})?$")
DTMF = set("0123456789*#")
QUEUE_NAME = re.compile(r"^[A-Za-z0-9_\-.]+$")
MAILBOX = re.compile(r"^[A-Za-z0-9_\-]+(@[A-Za-z0-9_\-]+)?$")

#: variables the engine provides; flows may read them but not assign them
BUILTIN_VARS = frozenset(
    {
        "caller", "caller_name", "dialed", "lang", "uniqueid", "channel", "flow",
        "now_date", "now_time", "now_hour", "now_minute", "now_weekday",
        "hours_status", "lookup_status", "queue_wait",
    }
)

#: node types whose execution waits for the caller (a loop through one of them always makes progress)
WAITING_TYPES = frozenset({"menu", "collect", "survey"})
#: node types that end the walk of a flow
TERMINAL_TYPES = frozenset({"queue", "callback", "voicemail", "hangup", "return"})


class SchemaError(Exception):
    def __init__(self, message: str, pos: Pos) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos


@dataclass(frozen=True, slots=True)
class Prompt:
    """Sound names per language; ``"*"`` means "the same names in every language"."""

    by_lang: dict[str, tuple[str, ...]]
    pos: Pos
    name_pos: dict[tuple[str, int], Pos] = field(default_factory=dict)  # (lang key, index) -> position

    def where(self, lang_key: str, index: int) -> Pos:
        return self.name_pos.get((lang_key, index), self.pos)

    def sounds(self, lang: str, default_lang: str) -> tuple[str, ...]:
        for key in (lang, "*", default_lang):
            if key in self.by_lang:
                return self.by_lang[key]
        return next(iter(self.by_lang.values()), ())

    def languages(self, flow_languages: list[str]) -> list[tuple[str, tuple[str, ...]]]:
        if "*" in self.by_lang:
            return [(lang, self.by_lang["*"]) for lang in flow_languages]
        return list(self.by_lang.items())


@dataclass(frozen=True, slots=True)
class Condition:
    expr: expressions.Expr
    target: str
    pos: Pos
    target_pos: Pos


@dataclass(frozen=True, slots=True)
class Question:
    id: str
    prompt: Prompt
    min: int
    max: int
    pos: Pos


@dataclass(frozen=True, slots=True)
class Edge:
    label: str
    target: str
    pos: Pos


@dataclass
class Node:
    id: str
    type: str
    pos: Pos
    args: dict[str, Any]
    arg_pos: dict[str, Pos]
    key_pos: dict[str, Pos]

    def edges(self) -> list[Edge]:
        """Every node id this node can continue to, with a label for graphs and errors."""
        a, out = self.args, []

        def add(label: str, key: str) -> None:
            if a.get(key):
                out.append(Edge(label, a[key], self.arg_pos.get(key, self.pos)))

        if self.type == "menu":
            positions = a.get("_options_pos") or {}
            for digit, target in (a.get("options") or {}).items():
                out.append(Edge(f"digit {digit}", target, positions.get(digit, self.pos)))
            add("after last try", "on_fail")
        elif self.type == "branch":
            for c in a.get("conditions") or []:
                out.append(Edge(f"if {c.expr.source}", c.target, c.target_pos))
            add("else", "else")
        elif self.type == "hours":
            add("open", "open")
            add("closed", "closed")
            add("holiday", "holiday")
        elif self.type == "lookup":
            add("ok", "next")
            add("fallback", "fallback")
        elif self.type == "collect":
            add("ok", "next")
            add("after last try", "on_fail")
        elif self.type == "goto":
            add("goto", "target")
        elif self.type == "queue":
            add("long wait", "callback")
        else:
            add("next", "next")
        return out

    def where(self, key: str) -> Pos:
        return self.arg_pos.get(key) or self.key_pos.get(key) or self.pos


@dataclass
class Flow:
    name: str
    file: str
    start: str
    languages: list[str]
    default_language: str
    timezone: ZoneInfo
    agent_vars: list[str]
    schedules: dict[str, Schedule]
    nodes: dict[str, Node]
    pos: Pos
    start_pos: Pos
    description: str = ""
    includes: dict[str, str] = field(default_factory=dict)  # relative path -> text (holiday files)


# ----------------------------------------------------------------- field kinds
Validator = Callable[[Any, Pos, "Ctx"], Any]


@dataclass
class Ctx:
    flow_file: str
    problems: list[Problem]
    read_include: Callable[[str], str] | None
    includes: dict[str, str]
    prefix: str = ""  # "menu 'main_menu': " while a node is being parsed

    def err(self, pos: Pos, message: str) -> None:
        self.problems.append(Problem(pos, self.prefix + message))


def _suggest(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def v_str(v: Any, pos: Pos, ctx: Ctx) -> str:
    if isinstance(v, (dict, list)) or v is None:
        raise SchemaError("must be a text value", pos)
    return str(v)


def v_int(v: Any, pos: Pos, ctx: Ctx) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise SchemaError(f"must be a whole number, not {v!r}", pos)
    return v


def v_num(v: Any, pos: Pos, ctx: Ctx) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise SchemaError(f"must be a number of seconds, not {v!r}", pos)
    return float(v)


def v_bool(v: Any, pos: Pos, ctx: Ctx) -> bool:
    if not isinstance(v, bool):
        raise SchemaError(f"must be true or false, not {v!r}", pos)
    return v


def v_target(v: Any, pos: Pos, ctx: Ctx) -> str:
    if not isinstance(v, str) or not NODE_ID.match(v):
        raise SchemaError(f"must be a node id, not {v!r}", pos)
    return v


def v_var(v: Any, pos: Pos, ctx: Ctx) -> str:
    if not isinstance(v, str) or not VAR_NAME.match(v):
        raise SchemaError(f"variable name {v!r} is invalid: use letters, digits and _ (not starting with a digit)", pos)
    if v in BUILTIN_VARS:
        raise SchemaError(f"variable {v!r} is built in and cannot be assigned", pos)
    return v


def v_expr(v: Any, pos: Pos, ctx: Ctx) -> expressions.Expr:
    try:
        return expressions.parse(v)
    except expressions.ExprError as exc:
        raise SchemaError(f"expression {v!r}: {exc} (at character {exc.offset + 1})", pos) from None


def expr_at(container: LMap, key: Any, ctx: Ctx) -> expressions.Expr:
    """``v_expr`` for ``container[key]``, reporting errors at the exact column inside the expression."""
    value = container[key]
    try:
        return expressions.parse(value)
    except expressions.ExprError as exc:
        raise SchemaError(f"expression {value!r}: {exc}", container.where_in(key, exc.offset)) from None


def v_regex(v: Any, pos: Pos, ctx: Ctx) -> str:
    s = v_str(v, pos, ctx)
    try:
        re.compile(s)
    except re.error as exc:
        raise SchemaError(f"pattern {s!r} is not a valid regular expression: {exc}", pos) from None
    return s


def v_prompt(v: Any, pos: Pos, ctx: Ctx) -> Prompt:
    name_pos: dict[tuple[str, int], Pos] = {}

    def names(x: Any, p: Pos, key: str = "*") -> tuple[str, ...]:
        items = [x] if isinstance(x, str) else x
        if not isinstance(items, list) or not items:
            raise SchemaError("a prompt is a sound name, a list of sound names, or a mapping language → names", p)
        out = []
        for i, item in enumerate(items):
            ip = items.where(i) if isinstance(items, LList) else p
            name_pos[(key, i)] = ip
            if not isinstance(item, str) or not SOUND_NAME.match(item) or ".." in item:
                raise SchemaError(f"sound name {item!r} is invalid (letters, digits, _ - and /; no extension)", ip)
            if re.search(r"\.(wav|gsm|ulaw|alaw|sln\d*|g722|g729|mp3)$", item):
                raise SchemaError(f"sound name {item!r}: leave out the file extension", ip)
            out.append(item)
        return tuple(out)

    if isinstance(v, LMap):
        by: dict[str, tuple[str, ...]] = {}
        for lang, x in v.items():
            if not isinstance(lang, str) or not (LANG.match(lang) or lang == "*"):
                raise SchemaError(f"prompt language {lang!r} is not a language code like 'ko' or 'en'", v.where_key(lang))
            by[lang] = names(x, v.where(lang), lang)
        if not by:
            raise SchemaError("empty prompt", pos)
        return Prompt(by, pos, name_pos)
    return Prompt({"*": names(v, pos)}, pos, name_pos)


def v_terminator(v: Any, pos: Pos, ctx: Ctx) -> str:
    s = "" if v is None else v_str(v, pos, ctx)
    if s not in ("#", "*", ""):
        raise SchemaError(f"terminator must be '#', '*' or '' (none), not {s!r}", pos)
    return s


def v_lang(v: Any, pos: Pos, ctx: Ctx) -> str:
    if not isinstance(v, str) or not LANG.match(v):
        raise SchemaError(f"{v!r} is not a language code like 'ko' or 'en'", pos)
    return v


def v_queue(v: Any, pos: Pos, ctx: Ctx) -> str:
    if not isinstance(v, str) or not QUEUE_NAME.match(v):
        raise SchemaError(f"queue name {v!r} is invalid (letters, digits, _ - .)", pos)
    return v


def v_mailbox(v: Any, pos: Pos, ctx: Ctx) -> str:
    s = v_str(v, pos, ctx)
    if not MAILBOX.match(s):
        raise SchemaError(f"mailbox {s!r} must look like '1000' or '1000@default'", pos)
    return s


def v_vm_options(v: Any, pos: Pos, ctx: Ctx) -> str:
    s = v_str(v, pos, ctx)
    if not re.fullmatch(r"[subj]*", s):
        raise SchemaError(f"voicemail options {s!r}: use only the letters s, u, b, j", pos)
    return s


def v_method(v: Any, pos: Pos, ctx: Ctx) -> str:
    if v not in ("GET", "POST"):
        raise SchemaError(f"method must be GET or POST, not {v!r}", pos)
    return v


def v_path(v: Any, pos: Pos, ctx: Ctx) -> str:
    s = v_str(v, pos, ctx)
    if not s.startswith("/") or "://" in s:
        raise SchemaError(f"lookup path {s!r} must start with '/' (it is relative to settings.crm_url)", pos)
    for name in re.findall(r"\{([^}]*)\}", s):
        if not VAR_NAME.match(name):
            raise SchemaError(f"lookup path {s!r}: '{{{name}}}' is not a variable name", pos)
    return s


def _mapping(v: Any, pos: Pos, what: str) -> LMap:
    if not isinstance(v, LMap):
        raise SchemaError(f"must be a mapping of {what}", pos)
    return v


def v_options(v: Any, pos: Pos, ctx: Ctx) -> dict[str, str]:
    m = _mapping(v, pos, "digit: node")
    out: dict[str, str] = {}
    for digit, target in m.items():
        if not isinstance(digit, str) or digit not in DTMF:
            ctx.err(m.where_key(digit), f"option key {digit!r} must be one DTMF key 0-9, * or # (quote '*' and '#')")
            continue
        try:
            out[digit] = v_target(target, m.where(digit), ctx)
        except SchemaError as exc:
            ctx.err(exc.pos, f"field 'options': digit {digit!r}: {exc.message}")
    if not m:
        raise SchemaError("a menu needs at least one option", pos)
    return out


def v_lang_options(v: Any, pos: Pos, ctx: Ctx) -> dict[str, str]:
    m = _mapping(v, pos, "digit: language")
    out: dict[str, str] = {}
    for digit, lang in m.items():
        if not isinstance(digit, str) or digit not in DTMF:
            ctx.err(m.where_key(digit), f"option key {digit!r} must be one DTMF key 0-9, * or #")
            continue
        try:
            out[digit] = v_lang(lang, m.where(digit), ctx)
        except SchemaError as exc:
            ctx.err(exc.pos, exc.message)
    return out


def v_vars(v: Any, pos: Pos, ctx: Ctx) -> dict[str, expressions.Expr]:
    m = _mapping(v, pos, "variable: expression")
    out = {}
    for name, ex in m.items():
        try:
            out[v_var(name, m.where_key(name), ctx)] = expr_at(m, name, ctx)
        except SchemaError as exc:
            ctx.err(exc.pos, exc.message)
    return out


def v_data(v: Any, pos: Pos, ctx: Ctx) -> dict[str, expressions.Expr]:
    m = _mapping(v, pos, "name: expression")
    out = {}
    for name, ex in m.items():
        try:
            if not isinstance(name, str) or not VAR_NAME.match(name):
                raise SchemaError(f"screen-pop field {name!r} must be a plain name", m.where_key(name))
            out[name] = expr_at(m, name, ctx)
        except SchemaError as exc:
            ctx.err(exc.pos, exc.message)
    return out


def v_query(v: Any, pos: Pos, ctx: Ctx) -> dict[str, expressions.Expr]:
    return v_data(v, pos, ctx)


def v_map(v: Any, pos: Pos, ctx: Ctx) -> dict[str, str]:
    m = _mapping(v, pos, "variable: response field (e.g. customer.tier)")
    out = {}
    for name, path in m.items():
        try:
            var = v_var(name, m.where_key(name), ctx)
            if not isinstance(path, str) or not re.fullmatch(r"[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*", path):
                raise SchemaError(f"response field {path!r} must be a dotted path like 'customer.tier'", m.where(name))
            out[var] = path
        except SchemaError as exc:
            ctx.err(exc.pos, exc.message)
    return out


def v_conditions(v: Any, pos: Pos, ctx: Ctx) -> list[Condition]:
    if not isinstance(v, LList) or not v:
        raise SchemaError("conditions must be a non-empty list of {if: expression, goto: node}", pos)
    out = []
    for i, item in enumerate(v):
        ip = v.where(i)
        if not isinstance(item, LMap):
            ctx.err(ip, "each condition is a mapping {if: expression, goto: node}")
            continue
        unknown = set(item) - {"if", "goto"}
        for k in unknown:
            ctx.err(item.where_key(k), f"unknown field {k!r} in condition{_suggest(k, ['if', 'goto'])}")
        if "if" not in item or "goto" not in item:
            ctx.err(ip, "each condition needs both 'if' and 'goto'")
            continue
        try:
            out.append(Condition(expr_at(item, "if", ctx), v_target(item["goto"], item.where("goto"), ctx), ip, item.where("goto")))
        except SchemaError as exc:
            ctx.err(exc.pos, exc.message)
    return out


def v_questions(v: Any, pos: Pos, ctx: Ctx) -> list[Question]:
    if not isinstance(v, LList) or not v:
        raise SchemaError("questions must be a non-empty list of {id, prompt, min, max}", pos)
    out, seen = [], set()
    for i, item in enumerate(v):
        ip = v.where(i)
        if not isinstance(item, LMap):
            ctx.err(ip, "each question is a mapping {id, prompt, min, max}")
            continue
        allowed = ["id", "prompt", "min", "max"]
        for k in set(item) - set(allowed):
            ctx.err(item.where_key(k), f"unknown field {k!r} in question{_suggest(k, allowed)}")
        try:
            qid = v_var(item.get("id"), item.where("id"), ctx)
            if qid in seen:
                raise SchemaError(f"duplicate question id {qid!r}", item.where("id"))
            seen.add(qid)
            if "prompt" not in item:
                raise SchemaError(f"question {qid!r} needs a prompt", ip)
            lo = v_int(item.get("min", 1), item.where("min"), ctx)
            hi = v_int(item.get("max", 5), item.where("max"), ctx)
            if not 0 <= lo < hi <= 9:
                raise SchemaError(f"question {qid!r}: need 0 <= min < max <= 9 (one key per answer)", item.where("max"))
            out.append(Question(qid, v_prompt(item["prompt"], item.where("prompt"), ctx), lo, hi, ip))
        except SchemaError as exc:
            ctx.err(exc.pos, exc.message)
    return out


# ----------------------------------------------------------------- node specs
REQ = object()  # marker: the field is required

NEXT = {"next": (v_target, REQ)}
RETRY = {"timeout": (v_num, 5.0), "retries": (v_int, 3)}

SPECS: dict[str, dict[str, tuple[Validator, Any]]] = {
    "play": {"prompt": (v_prompt, REQ), **NEXT},
    "menu": {
        "prompt": (v_prompt, REQ),
        "options": (v_options, REQ),
        **RETRY,
        "invalid_prompt": (v_prompt, None),
        "timeout_prompt": (v_prompt, None),
        "on_fail": (v_target, REQ),
    },
    "collect": {
        "prompt": (v_prompt, REQ),
        "var": (v_var, REQ),
        "min_length": (v_int, 1),
        "max_length": (v_int, 16),
        "terminator": (v_terminator, "#"),
        "pattern": (v_regex, None),
        "sensitive": (v_bool, False),  # card digits: recording muted while typing, digits masked in traces
        **RETRY,
        "invalid_prompt": (v_prompt, None),
        "timeout_prompt": (v_prompt, None),
        "next": (v_target, REQ),
        "on_fail": (v_target, REQ),
    },
    "say": {"prompt": (v_prompt, None), "digits": (v_expr, None), "number": (v_expr, None), "date": (v_expr, None), **NEXT},
    "set": {"vars": (v_vars, REQ), **NEXT},
    "branch": {"conditions": (v_conditions, REQ), "else": (v_target, REQ)},
    "hours": {"schedule": (v_str, REQ), "open": (v_target, REQ), "closed": (v_target, REQ), "holiday": (v_target, None)},
    "lookup": {
        "path": (v_path, REQ),
        "method": (v_method, "GET"),
        "query": (v_query, None),
        "timeout": (v_num, 2.0),
        "map": (v_map, REQ),
        "required": (v_str, None),
        "wait_prompt": (v_prompt, None),
        "next": (v_target, REQ),
        "fallback": (v_target, REQ),
    },
    "language": {
        "set": (v_lang, None),
        "prompt": (v_prompt, None),
        "options": (v_lang_options, None),
        **RETRY,
        "retries": (v_int, 2),
        "next": (v_target, REQ),
    },
    "goto": {"target": (v_target, REQ)},
    "subflow": {"flow": (v_str, REQ), **NEXT},
    "return": {},
    "queue": {
        "queue": (v_queue, REQ),
        "priority": (v_expr, None),
        "timeout": (v_int, None),
        "vip": (v_expr, None),
        "data": (v_data, None),
        "prompt": (v_prompt, None),
        "callback_over": (v_int, None),
        "callback": (v_target, None),
        "survey": (v_str, None),
    },
    "callback": {
        "number": (v_expr, None),
        "time": (v_expr, None),
        "queue": (v_queue, REQ),
        "queue_var": (v_var, None),
        "prompt": (v_prompt, None),
    },
    "voicemail": {"mailbox": (v_mailbox, REQ), "options": (v_vm_options, "u"), "prompt": (v_prompt, None)},
    "survey": {
        "questions": (v_questions, REQ),
        "timeout": (v_num, 5.0),
        "retries": (v_int, 2),
        "invalid_prompt": (v_prompt, None),
        "thanks": (v_prompt, None),
        **NEXT,
    },
    "hangup": {"prompt": (v_prompt, None)},
}
COMMON_FIELDS = {"type", "description"}


def _parse_node(node_id: Any, raw: Any, pos: Pos, key_pos: Pos, ctx: Ctx) -> Node | None:
    if not isinstance(node_id, str) or not NODE_ID.match(node_id):
        ctx.err(key_pos, f"node id {node_id!r} is invalid: use letters, digits, _ and - (not starting with a digit)")
        return None
    if not isinstance(raw, LMap):
        ctx.err(pos, f"node {node_id!r} must be a mapping with a 'type'")
        return None
    ntype = raw.get("type")
    if ntype is None:
        ctx.err(raw.pos, f"node {node_id!r} has no 'type' (one of: {', '.join(SPECS)})")
        return None
    if ntype not in SPECS:
        ctx.err(raw.where("type"), f"node {node_id!r}: unknown node type {ntype!r}{_suggest(ntype, SPECS)}")
        return None
    spec = SPECS[ntype]
    args: dict[str, Any] = {}
    arg_pos: dict[str, Pos] = {}
    ok = True
    ctx.prefix = f"{ntype} {node_id!r}: "
    try:
        for key in raw:
            if key in COMMON_FIELDS:
                continue
            if key not in spec:
                allowed = sorted(set(spec) | COMMON_FIELDS)
                ctx.err(raw.where_key(key), f"unknown field {key!r}{_suggest(key, allowed)} (allowed: {', '.join(allowed)})")
                ok = False
        for key, (validator, default) in spec.items():
            if key in raw:
                try:
                    args[key] = expr_at(raw, key, ctx) if validator is v_expr else validator(raw[key], raw.where(key), ctx)
                    arg_pos[key] = raw.where(key)
                except SchemaError as exc:
                    ctx.err(exc.pos, f"field {key!r}: {exc.message}")
                    ok = False
            elif default is REQ:
                ctx.err(raw.pos, f"missing required field {key!r}")
                ok = False
            else:
                args[key] = default
    finally:
        ctx.prefix = ""
    if ntype == "menu" and isinstance(raw.get("options"), LMap):
        args["_options_pos"] = dict(raw["options"].val_pos)
    node = Node(node_id, ntype, pos, args, arg_pos, dict(raw.key_pos))
    if ok:
        _node_rules(node, ctx)
    return node


def _node_rules(n: Node, ctx: Ctx) -> None:
    a, what = n.args, f"{n.type} {n.id!r}"
    if n.type in ("menu", "collect", "language", "survey"):
        if a["retries"] < 1 or a["retries"] > 10:
            ctx.err(n.where("retries"), f"{what}: retries must be between 1 and 10 (it is the number of tries)")
        if not 0.5 <= a["timeout"] <= 60:
            ctx.err(n.where("timeout"), f"{what}: timeout must be between 0.5 and 60 seconds")
    if n.type == "collect":
        if not 1 <= a["min_length"] <= a["max_length"] <= 64:
            ctx.err(n.where("max_length"), f"{what}: need 1 <= min_length <= max_length <= 64")
    if n.type == "say":
        given = [k for k in ("digits", "number", "date") if a.get(k) is not None]
        if len(given) != 1:
            ctx.err(n.pos, f"{what}: give exactly one of 'digits', 'number' or 'date'")
    if n.type == "language":
        if (a["set"] is None) == (a["options"] is None):
            ctx.err(n.pos, f"{what}: give either 'set: <lang>' or 'prompt' + 'options'")
        elif a["options"] is not None and a["prompt"] is None:
            ctx.err(n.pos, f"{what}: a language menu needs a 'prompt'")
    if n.type == "lookup" and not 0.1 <= a["timeout"] <= 10:
        ctx.err(n.where("timeout"), f"{what}: timeout must be between 0.1 and 10 seconds (callers are waiting)")
    if n.type == "queue":
        if (a["callback_over"] is None) != (a["callback"] is None):
            ctx.err(n.pos, f"{what}: 'callback_over' (seconds) and 'callback' (node) go together")
        if a["timeout"] is not None and a["timeout"] <= 0:
            ctx.err(n.where("timeout"), f"{what}: timeout must be positive")


# ----------------------------------------------------------------- schedules
def _parse_schedule(name: str, raw: Any, pos: Pos, ctx: Ctx, flow_dir: PurePosixPath) -> Schedule | None:
    if not isinstance(raw, LMap):
        ctx.err(pos, f"schedule {name!r} must be a mapping (timezone, weekly, holidays, exceptions)")
        return None
    allowed = ["timezone", "weekly", "holidays", "public_holidays", "exceptions", "description"]
    bad = False
    for k in raw:
        if k not in allowed:
            ctx.err(raw.where_key(k), f"schedule {name!r}: unknown field {k!r}{_suggest(k, allowed)}")
            bad = True
    tzname = raw.get("timezone")
    try:
        tz = ZoneInfo(str(tzname)) if isinstance(tzname, str) else None
    except (ZoneInfoNotFoundError, ValueError):
        tz = None
    if tz is None:
        ctx.err(raw.where("timezone"), f"schedule {name!r}: timezone {tzname!r} is not a known IANA zone like 'Asia/Seoul'")
        bad = True
    weekly: dict[str, tuple[TimeRange, ...]] = {}
    wk = raw.get("weekly")
    if not isinstance(wk, LMap):
        ctx.err(raw.where("weekly"), f"schedule {name!r}: 'weekly' must map days (mon-fri, sat...) to ranges like '09:00-18:00'")
        bad = True
    else:
        for days, ranges in wk.items():
            try:
                day_list = parse_days(days)
            except ScheduleError as exc:
                ctx.err(wk.where_key(days), f"schedule {name!r}: {exc}")
                bad = True
                continue
            rs = _ranges(ranges, wk.where(days), ctx, name)
            if rs is None:
                bad = True
                continue
            for d in day_list:
                if d in weekly:
                    ctx.err(wk.where_key(days), f"schedule {name!r}: {d} is given twice")
                    bad = True
                weekly[d] = tuple(sorted(rs, key=lambda r: r.start))
    holidays: dict[date, Holiday] = {}
    hol = raw.get("holidays", [])
    if not isinstance(hol, list):
        ctx.err(raw.where("holidays"), f"schedule {name!r}: 'holidays' is a list of holiday files and/or {{date, name}}")
        bad = True
    else:
        for i, item in enumerate(hol):
            ip = hol.where(i) if isinstance(hol, LList) else raw.where("holidays")
            if isinstance(item, str):
                for h in _holiday_file(item, ip, ctx, flow_dir, name):
                    holidays[h.day] = h
            elif isinstance(item, LMap) and isinstance(item.get("date"), date):
                holidays[item["date"]] = Holiday(item["date"], str(item.get("name", "")))
            else:
                ctx.err(ip, f"schedule {name!r}: holiday entries are file names or {{date: YYYY-MM-DD, name: ...}}")
                bad = True
    exceptions: dict[date, Exception_] = {}
    exc_raw = raw.get("exceptions", [])
    if not isinstance(exc_raw, list):
        ctx.err(raw.where("exceptions"), f"schedule {name!r}: 'exceptions' is a list of {{date, hours | closed}}")
        bad = True
    else:
        for i, item in enumerate(exc_raw):
            ip = exc_raw.where(i) if isinstance(exc_raw, LList) else raw.where("exceptions")
            if not isinstance(item, LMap) or not isinstance(item.get("date"), date):
                ctx.err(ip, f"schedule {name!r}: an exception needs 'date: YYYY-MM-DD' and 'hours' or 'closed: true'")
                bad = True
                continue
            for k in item:
                if k not in ("date", "hours", "closed", "name"):
                    ctx.err(item.where_key(k), f"schedule {name!r}: unknown exception field {k!r}")
                    bad = True
            if ("hours" in item) == (item.get("closed") is True):
                ctx.err(ip, f"schedule {name!r}: exception {item['date']} needs either 'hours' or 'closed: true'")
                bad = True
                continue
            rs = _ranges(item["hours"], item.where("hours"), ctx, name) if "hours" in item else []
            if rs is None:
                bad = True
                continue
            if item["date"] in exceptions:
                ctx.err(ip, f"schedule {name!r}: two exceptions for {item['date']}")
                bad = True
            exceptions[item["date"]] = Exception_(item["date"], tuple(rs), str(item.get("name", "")))
    public = raw.get("public_holidays")
    if public is not None:
        from ivr.schedule import supported_countries

        if not isinstance(public, str) or public.upper() not in supported_countries():
            ctx.err(raw.where("public_holidays"), f"schedule {name!r}: public_holidays {public!r} is not a country code of the holidays package (e.g. KR)")
            bad = True
        else:
            public = public.upper()
    if bad or tz is None:
        return None
    return Schedule(name, tz, weekly, holidays, exceptions, public_holidays=public, pos=pos)


def _ranges(v: Any, pos: Pos, ctx: Ctx, sched: str) -> list[TimeRange] | None:
    items = [v] if isinstance(v, str) else v
    if not isinstance(items, list):
        ctx.err(pos, f"schedule {sched!r}: hours are '09:00-18:00' or a list of such ranges")
        return None
    out = []
    for i, item in enumerate(items):
        ip = items.where(i) if isinstance(items, LList) else pos
        try:
            out.append(parse_range(item))
        except ScheduleError as exc:
            ctx.err(ip, f"schedule {sched!r}: {exc}")
            return None
    out.sort(key=lambda r: r.start)
    for a, b in zip(out, out[1:]):
        if b.start < a.end:
            ctx.err(pos, f"schedule {sched!r}: ranges {a} and {b} overlap")
            return None
    return out


def _holiday_file(rel: str, pos: Pos, ctx: Ctx, flow_dir: PurePosixPath, sched: str) -> list[Holiday]:
    p = PurePosixPath(rel)
    if p.is_absolute() or ".." in p.parts:
        ctx.err(pos, f"schedule {sched!r}: holiday file {rel!r} must be a relative path inside the dialplans directory")
        return []
    key = str(p)  # includes are keyed relative to the dialplans directory
    display = str(flow_dir / p) if str(flow_dir) not in ("", ".") else key
    if key in ctx.includes:
        text = ctx.includes[key]
    elif ctx.read_include is None:
        ctx.err(pos, f"schedule {sched!r}: holiday file {rel!r} is not available")
        return []
    else:
        try:
            text = ctx.read_include(key)
        except (OSError, UnicodeDecodeError) as exc:
            ctx.err(pos, f"schedule {sched!r}: cannot read holiday file {rel!r}: {exc.__class__.__name__}")
            return []
        ctx.includes[key] = text
    try:
        data, dups = load_yaml(text, display)
    except LoadError as exc:
        ctx.problems.append(exc.problem)
        return []
    ctx.problems.extend(dups)
    if not isinstance(data, LMap) or not isinstance(data.get("holidays"), LList):
        ctx.err(data.pos if isinstance(data, (LMap, LList)) else Pos(display, 1, 1), "a holiday file is a mapping with a 'holidays' list")
        return []
    out = []
    lst = data["holidays"]
    for i, item in enumerate(lst):
        if not isinstance(item, LMap) or not isinstance(item.get("date"), date) or not item.get("name"):
            ctx.err(lst.where(i), "each holiday needs 'date: YYYY-MM-DD' and 'name'")
            continue
        out.append(Holiday(item["date"], str(item["name"])))
    return out


# ----------------------------------------------------------------- flow
FLOW_FIELDS = ["flow", "description", "start", "languages", "default_language", "timezone", "agent_vars", "schedules", "nodes"]


def parse_flow(
    text: str,
    file: str,
    *,
    name: str | None = None,
    read_include: Callable[[str], str] | None = None,
    includes: dict[str, str] | None = None,
) -> tuple[Flow | None, list[Problem]]:
    """Parse one flow file. ``file`` is the display path (relative to the dialplans dir).

    ``read_include(relpath)`` reads holiday files; ``includes`` pre-supplies
    them (used when re-activating a stored version). Returns ``(None, problems)``
    when the file cannot be used at all.
    """
    problems: list[Problem] = []
    ctx = Ctx(file, problems, read_include, dict(includes or {}))
    try:
        data, dups = load_yaml(text, file)
    except LoadError as exc:
        return None, [exc.problem]
    problems.extend(dups)
    top = Pos(file, 1, 1)
    if not isinstance(data, LMap):
        return None, problems + [Problem(top, "a flow file is a mapping with 'start' and 'nodes'")]
    for k in data:
        if k not in FLOW_FIELDS:
            ctx.err(data.where_key(k), f"unknown top-level field {k!r}{_suggest(k, FLOW_FIELDS)} (allowed: {', '.join(FLOW_FIELDS)})")
    flow_name = name or PurePosixPath(file).stem
    if "flow" in data and data["flow"] != flow_name:
        ctx.err(data.where("flow"), f"'flow: {data['flow']}' does not match the file name {flow_name!r}")
    languages: list[str] = []
    raw_langs = data.get("languages", ["en"])
    if not isinstance(raw_langs, list) or not raw_langs:
        ctx.err(data.where("languages"), "languages must be a list like [ko, en]")
    else:
        for i, lang in enumerate(raw_langs):
            try:
                languages.append(v_lang(lang, raw_langs.where(i) if isinstance(raw_langs, LList) else top, ctx))
            except SchemaError as exc:
                ctx.err(exc.pos, exc.message)
    default_language = data.get("default_language", languages[0] if languages else "en")
    if default_language not in languages and languages:
        ctx.err(data.where("default_language"), f"default_language {default_language!r} is not in languages {languages}")
    tzname = data.get("timezone", "UTC")
    try:
        tz = ZoneInfo(str(tzname))
    except (ZoneInfoNotFoundError, ValueError):
        ctx.err(data.where("timezone"), f"timezone {tzname!r} is not a known IANA zone like 'Asia/Seoul'")
        tz = ZoneInfo("UTC")
    agent_vars: list[str] = []
    av = data.get("agent_vars", [])
    if not isinstance(av, list):
        ctx.err(data.where("agent_vars"), "agent_vars must be a list of variable names shown to the agent")
    else:
        for i, v in enumerate(av):
            ip = av.where(i) if isinstance(av, LList) else top
            if not isinstance(v, str) or not VAR_NAME.match(v):
                ctx.err(ip, f"agent_vars: {v!r} is not a variable name")
            else:
                agent_vars.append(v)
    flow_dir = PurePosixPath(file).parent
    schedules: dict[str, Schedule] = {}
    sch = data.get("schedules", {})
    if not isinstance(sch, LMap) and sch:
        ctx.err(data.where("schedules"), "schedules must be a mapping name → schedule")
    elif isinstance(sch, LMap):
        for sname, sraw in sch.items():
            s = _parse_schedule(str(sname), sraw, sch.where(sname), ctx, flow_dir)
            if s is not None:
                schedules[str(sname)] = s
            else:
                schedules.setdefault(str(sname), None)  # type: ignore[arg-type]  # known but invalid
    nodes: dict[str, Node] = {}
    raw_nodes = data.get("nodes")
    if not isinstance(raw_nodes, LMap) or not raw_nodes:
        ctx.err(data.where("nodes") if "nodes" in data else top, "'nodes' must be a non-empty mapping of node id → node")
        raw_nodes = LMap()
        raw_nodes.pos, raw_nodes.key_pos, raw_nodes.val_pos = top, {}, {}
    for node_id, raw in raw_nodes.items():
        node = _parse_node(node_id, raw, raw_nodes.where_key(node_id), raw_nodes.where_key(node_id), ctx)
        if node is not None:
            nodes[node_id] = node
        elif isinstance(node_id, str):
            nodes[node_id] = Node(node_id, "invalid", raw_nodes.where_key(node_id), {}, {}, {})
    start = data.get("start")
    if not isinstance(start, str):
        ctx.err(data.where("start") if "start" in data else top, "missing 'start: <node id>'")
        start = ""
    flow = Flow(
        name=flow_name,
        file=file,
        start=start,
        languages=languages or ["en"],
        default_language=str(default_language),
        timezone=tz,
        agent_vars=agent_vars,
        schedules=schedules,
        nodes=nodes,
        pos=top,
        start_pos=data.where("start"),
        description=str(data.get("description", "")),
        includes=ctx.includes,
    )
    return flow, problems
