"""Suggestion ranking rules: YAML next to the dialplans (``dialplans/kb/rules.yaml``),
loaded with positions and checked like the flows (``file:line:col: message``).

A rule names a *signal* of the call (``match``) and how strongly an article linked to
that signal is suggested (``weight``); ``because`` is the explanation the agent sees::

    limit: 3                 # suggestions in the pop
    usage_weight: 0.5        # score × (1 + usage_weight × ln(1 + times marked helpful))
    notice_days: 14          # "notice" rules look at notices published this recently
    rules:
      - name: ivr-intent
        match: intent        # the IVR intent ("refund", "tech:internet" also matches "tech")
        weight: 10
        because: {ko: "IVR 의도 = {value}", en: "IVR intent = {value}"}

Signals (``match``) and what an article is linked by:

=============  =================================  ===========================================
match          value from the call                article linked when
=============  =================================  ===========================================
intent         IVR variable ``intent``            its ``intents`` holds the value (or prefix)
path           IVR nodes the caller went through  ``nodes: {node: [intent…]}`` maps a node to intents
queue          the queue the call waits in        its ``queues`` holds the queue
tier           the customer's tier                ``articles: [slug…]`` (with ``when:``) or tag ``tier:<value>``
disposition    dispositions of recent calls       its ``tags`` hold the disposition
notice         (always)                           a published notice article of the last ``notice_days``
=============  =================================  ===========================================

``when: [value…]`` restricts a rule to some values; ``articles: [slug…]`` suggests those
articles instead of the linked ones.

This module is pure: :func:`check_rules` takes text, :func:`score` takes candidates.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ivr.loader import LList, LMap, LoadError, Pos, Problem, load_yaml

MATCHES = ("intent", "path", "queue", "tier", "disposition", "notice")
TOP_KEYS = {"limit", "usage_weight", "notice_days", "language_bonus", "rules"}
RULE_KEYS = {"name", "match", "weight", "because", "when", "articles", "nodes"}
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    match: str
    weight: float
    because: Mapping[str, str]
    when: tuple[str, ...] = ()
    articles: tuple[str, ...] = ()
    nodes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def explain(self, value: str, language: str) -> str:
        template = self.because.get(language) or self.because.get("en") or next(iter(self.because.values()), "{value}")
        return template.replace("{value}", value)


@dataclass(frozen=True, slots=True)
class RuleSet:
    rules: tuple[Rule, ...]
    limit: int = 3
    usage_weight: float = 0.5
    notice_days: int = 14
    language_bonus: float = 1.0  # added to the score of an article in the caller's language
    source: str = "<default>"


@dataclass(frozen=True, slots=True)
class CallContext:
    """What callcore knows about a call when the phone rings (built from the screen pop)."""

    intent: str | None = None
    path: tuple[str, ...] = ()
    queue: str | None = None
    tier: str | None = None
    dispositions: tuple[str, ...] = ()
    language: str = "ko"

    @classmethod
    def from_pop(cls, pop: Mapping[str, Any]) -> "CallContext":
        ivr = pop.get("ivr") if isinstance(pop.get("ivr"), Mapping) else {}
        agent = ivr.get("agent") if isinstance(ivr.get("agent"), Mapping) else {}
        customer = pop.get("customer") if isinstance(pop.get("customer"), Mapping) else {}
        previous = pop.get("previous_interactions") or []
        dispositions = tuple(
            dict.fromkeys(str(p["disposition"]) for p in previous if isinstance(p, Mapping) and p.get("disposition"))
        )
        queue = pop.get("queue") or ((ivr.get("queue") or {}).get("queue") if isinstance(ivr.get("queue"), Mapping) else None)
        return cls(
            intent=_str(agent.get("intent")),
            path=tuple(str(n) for n in ivr.get("path") or () if isinstance(n, str)),
            queue=_str(queue),
            tier=_str(customer.get("tier")) or _str(agent.get("tier")),
            dispositions=dispositions,
            language=_str(ivr.get("language")) or _str(agent.get("language")) or "ko",
        )


def _str(v: Any) -> str | None:
    return str(v) if v not in (None, "") else None


def intent_values(intent: str | None) -> list[str]:
    """``tech:internet`` → ``["tech:internet", "tech"]`` (most specific first)."""
    if not intent:
        return []
    parts = intent.split(":")
    return [":".join(parts[: i + 1]) for i in range(len(parts) - 1, -1, -1)]


# ------------------------------------------------------------------ loading + checking
def check_rules(text: str, file: str, *, flow_nodes: Iterable[str] | None = None,
                known_slugs: Iterable[str] | None = None) -> tuple[RuleSet | None, list[Problem]]:
    """Parse and check a rules file. ``flow_nodes`` (every node name of the dialplans) and
    ``known_slugs`` turn unknown references into warnings. Returns ``(ruleset or None, problems)``."""
    try:
        doc, problems = load_yaml(text, file)
    except LoadError as exc:
        return None, [exc.problem]
    problems = list(problems)
    err = lambda pos, msg: problems.append(Problem(pos, msg))  # noqa: E731
    warn = lambda pos, msg: problems.append(Problem(pos, msg, "warning"))  # noqa: E731
    nodes_known = set(flow_nodes) if flow_nodes is not None else None
    slugs_known = set(known_slugs) if known_slugs is not None else None
    if not isinstance(doc, LMap):
        err(Pos(file, 1, 1), "the rules file must be a mapping with a 'rules' list")
        return None, problems
    for key in doc:
        if key not in TOP_KEYS:
            err(doc.where_key(key), f"unknown key {key!r} (expected one of {', '.join(sorted(TOP_KEYS))})")
    limit = _number(doc, "limit", 3, err, integer=True, low=1, high=20)
    usage_weight = _number(doc, "usage_weight", 0.5, err, low=0, high=100)
    notice_days = _number(doc, "notice_days", 14, err, integer=True, low=1, high=3650)
    language_bonus = _number(doc, "language_bonus", 1.0, err, low=0, high=1000)
    raw = doc.get("rules")
    rules: list[Rule] = []
    if not isinstance(raw, LList) or not raw:
        err(doc.where("rules") if "rules" in doc else doc.pos, "'rules' must be a non-empty list")
        raw = LList()
        raw.pos, raw.item_pos = doc.pos, []
    seen: dict[str, Pos] = {}
    for i, item in enumerate(raw):
        pos = raw.where(i)
        if not isinstance(item, LMap):
            err(pos, "a rule must be a mapping (name, match, weight, because)")
            continue
        for key in item:
            if key not in RULE_KEYS:
                err(item.where_key(key), f"unknown rule key {key!r} (expected one of {', '.join(sorted(RULE_KEYS))})")
        name = item.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            err(item.where("name"), "a rule needs a 'name' (lower-case letters, digits, - and _)")
            name = f"rule-{i + 1}"
        elif name in seen:
            err(item.where("name"), f"duplicate rule name {name!r} (first at line {seen[name].line})")
        seen.setdefault(name, item.where("name"))
        match = item.get("match")
        if match not in MATCHES:
            err(item.where("match"), f"'match' must be one of {', '.join(MATCHES)}; got {match!r}")
            continue
        weight = _number(item, "weight", None, err, low=0.0001, high=1000)
        if "weight" not in item:
            err(item.pos, f"rule {name!r} needs a 'weight' (a positive number)")
        because = item.get("because")
        texts: dict[str, str] = {}
        if isinstance(because, str):
            texts = {"en": because}
        elif isinstance(because, LMap):
            for lang, t in because.items():
                if lang not in ("ko", "en"):
                    err(because.where_key(lang), f"'because' languages are ko and en; got {lang!r}")
                elif not isinstance(t, str) or not t.strip():
                    err(because.where(lang), "an explanation must be non-empty text")
                else:
                    texts[lang] = t
        else:
            err(item.where("because") if "because" in item else item.pos, f"rule {name!r} needs 'because' (text, or {{ko: …, en: …}})")
        for lang, t in texts.items():
            for m in _PLACEHOLDER.finditer(t):
                if m.group(1) != "value":
                    where = because.where_in(lang, m.start()) if isinstance(because, LMap) else item.where_in("because", m.start())
                    err(where, f"unknown placeholder {{{m.group(1)}}} (only {{value}})")
        when = _strings(item, "when", err)
        articles = _strings(item, "articles", err)
        if slugs_known is not None:
            for j, slug in enumerate(articles):
                if slug not in slugs_known:
                    warn(item["articles"].where(j), f"no article with slug {slug!r}")
        nodes: dict[str, tuple[str, ...]] = {}
        raw_nodes = item.get("nodes")
        if match == "path":
            if not isinstance(raw_nodes, LMap) or not raw_nodes:
                err(item.where("nodes") if "nodes" in item else item.pos, "a 'path' rule needs 'nodes: {node: [intent, …]}'")
            else:
                for node, intents in raw_nodes.items():
                    vals = [intents] if isinstance(intents, str) else list(intents) if isinstance(intents, LList) else None
                    if not vals or not all(isinstance(v, str) and v for v in vals):
                        err(raw_nodes.where(node), "map a node to an intent or a list of intents")
                        continue
                    if nodes_known is not None and str(node).split(":", 1)[-1] not in nodes_known:
                        warn(raw_nodes.where_key(node), f"no dialplan node named {node!r}")
                    nodes[str(node)] = tuple(vals)
        elif raw_nodes is not None:
            err(item.where_key("nodes"), "'nodes' only applies to match: path")
        if match == "tier" and not articles and not when:
            warn(item.pos, "a 'tier' rule without 'when' or 'articles' suggests articles tagged tier:<tier> for every tier")
        if weight is not None and texts:
            rules.append(Rule(name, match, float(weight), texts, tuple(when), tuple(articles), nodes))
    if any(p.severity == "error" for p in problems):
        return None, problems
    return RuleSet(tuple(rules), int(limit), float(usage_weight), int(notice_days), float(language_bonus), file), problems


def _number(m: LMap, key: str, default: Any, err, *, integer: bool = False, low: float, high: float) -> Any:
    if key not in m:
        return default
    v = m[key]
    ok = isinstance(v, int) if integer else isinstance(v, (int, float))
    if isinstance(v, bool) or not ok or not (low <= v <= high):
        err(m.where(key), f"{key!r} must be {'an integer' if integer else 'a number'} between {low:g} and {high:g}; got {v!r}")
        return default
    return v


def _strings(m: LMap, key: str, err) -> list[str]:
    v = m.get(key)
    if v is None:
        return []
    if isinstance(v, (str, int)) and not isinstance(v, bool):
        return [str(v)]
    if isinstance(v, LList) and all(isinstance(x, (str, int)) and not isinstance(x, bool) for x in v):
        return [str(x) for x in v]
    err(m.where(key), f"{key!r} must be a value or a list of values")
    return []


def load_rules(path: Path, **kw: Any) -> tuple[RuleSet | None, list[Problem]]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, [Problem(Pos(str(path), 1, 1), "rules file not found")]
    except UnicodeDecodeError:
        return None, [Problem(Pos(str(path), 1, 1), "file is not UTF-8 text")]
    return check_rules(text, str(path), **kw)


# ------------------------------------------------------------------ scoring (pure)
@dataclass(frozen=True, slots=True)
class Candidate:
    """A published article as the ranking sees it."""

    id: int
    slug: str
    language: str
    intents: tuple[str, ...]
    queues: tuple[str, ...]
    tags: tuple[str, ...]
    helpful: int = 0
    recent_notice: bool = False


@dataclass(slots=True)
class Scored:
    candidate: Candidate
    score: float
    reasons: list[dict[str, Any]]


def signals(rule: Rule, ctx: CallContext) -> list[str]:
    """The call's values for ``rule.match`` (empty: the rule does not apply to this call)."""
    if rule.match == "intent":
        vals = intent_values(ctx.intent)
    elif rule.match == "path":  # the IVR records "flow:node"; rules may name "node" or "flow:node"
        vals = list(dict.fromkeys(k for n in ctx.path for k in (n, n.split(":", 1)[-1]) if k in rule.nodes))
    elif rule.match == "queue":
        vals = [ctx.queue] if ctx.queue else []
    elif rule.match == "tier":
        vals = [ctx.tier] if ctx.tier else []
    elif rule.match == "disposition":
        vals = list(ctx.dispositions)
    else:  # notice
        vals = ["notice"]
    if rule.when:
        vals = [v for v in vals if v in rule.when]
    return vals


def _links(rule: Rule, value: str, c: Candidate, rank: int) -> float:
    """How much of ``rule.weight`` ``c`` earns for ``value`` (0: not linked)."""
    if rule.articles:
        return 1.0 if c.slug in rule.articles else 0.0
    if rule.match == "intent":
        if value not in c.intents:
            return 0.0
        # the call's own intent counts fully, a broader one ("tech" for "tech:internet") half;
        # an article's first intent is its subject, later ones count three quarters
        return (1.0 if rank == 0 else 0.5) * (1.0 if c.intents[0] == value else 0.75)
    if rule.match == "path":
        return 1.0 if set(rule.nodes.get(value, ())) & set(c.intents) else 0.0
    if rule.match == "queue":
        return 1.0 if value in c.queues else 0.0
    if rule.match == "tier":
        return 1.0 if f"tier:{value}" in c.tags else 0.0
    if rule.match == "disposition":
        return 1.0 if value in c.tags else 0.0
    return 1.0 if c.recent_notice else 0.0


def score(rules: RuleSet, ctx: CallContext, candidates: Sequence[Candidate], limit: int | None = None) -> list[Scored]:
    """Rank ``candidates`` for the call: Σ rule weight (once per rule, best value) + language
    bonus, × the usage factor; each reason says which rule and value put the article there.
    With ``limit``, only the best ``limit`` are returned (and only their reasons are written:
    a busy queue links thousands of articles to every call)."""
    active = [(r, signals(r, ctx)) for r in rules.rules]
    active = [(r, vals) for r, vals in active if vals]
    ranked: list[tuple[float, int, Candidate, list[tuple[Rule, float, str]]]] = []
    for c in candidates:
        total = 0.0
        matched: list[tuple[Rule, float, str]] = []
        for rule, vals in active:
            best, best_value = 0.0, None
            for rank, v in enumerate(vals):
                got = _links(rule, v, c, rank)
                if got > best:
                    best, best_value = got, v
            if best > 0 and best_value is not None:
                total += rule.weight * best
                matched.append((rule, best, best_value))
        if total <= 0:
            continue
        if c.language == ctx.language:
            total += rules.language_bonus
        factor = 1 + rules.usage_weight * math.log1p(max(0, c.helpful))
        ranked.append((round(total * factor, 4), c.id, c, matched))
    ranked.sort(key=lambda t: (-t[0], t[1]))
    out: list[Scored] = []
    for total, _id, c, matched in ranked[:limit]:
        reasons: list[dict[str, Any]] = []
        for rule, best, best_value in matched:
            shown = "" if rule.match == "notice" else best_value
            reasons.append(
                {
                    "rule": rule.name,
                    "match": rule.match,
                    "value": best_value,
                    "weight": round(rule.weight * best, 3),
                    "text": {lang: rule.explain(shown, lang) for lang in ("ko", "en")},
                }
            )
        reasons.sort(key=lambda r: -r["weight"])
        out.append(Scored(c, total, reasons))
    return out
