"""``callcore recording check FILE``: parse and check a recording-policies file.

Uses the IVR's located YAML loader (:mod:`ivr.loader`: every value keeps its
``line:col``, duplicate keys are findings) and its problem sorting, so errors
read exactly like ``callcore dialplan check``: ``file:line:col: message``.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from datetime import time as dtime
from pathlib import Path
from typing import Any

from ivr.checker import sort_problems
from ivr.loader import LList, LMap, LoadError, Pos, Problem, load_yaml
from recording.policy import (
    ACTIONS, CHANNELS, DIRECTIONS, MATCH_FIELDS, OUTCOMES, STARTS, WEEKDAYS, Defaults, PolicySet, Rule, TimeWindow,
)

DEFAULT_POLICY_FILE = Path(__file__).resolve().parent / "recording-policies.yaml"
OPTION_FIELDS = ("start", "channels", "retention_days", "legal_hold", "qa_sampling")
RULE_FIELDS = ("name", "match", "action", *OPTION_FIELDS)
DEFAULT_FIELDS = ("action", *OPTION_FIELDS)
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
MAX_RETENTION_DAYS = 36500


@dataclass
class PolicyCheck:
    policy: PolicySet | None
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def ok(self) -> bool:
        return self.policy is not None and not self.errors


class _Checker:
    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    def err(self, pos: Pos, msg: str, severity: str = "error") -> None:
        self.problems.append(Problem(pos, msg, severity))

    def unknown_keys(self, m: LMap, allowed: tuple[str, ...], what: str) -> None:
        for key in m:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                self.err(m.where_key(key), f"{what}: unknown field {key!r}{hint}")

    def choice(self, m: LMap, key: str, choices: tuple[str, ...], what: str) -> str | None:
        if key not in m:
            return None
        v = m[key]
        if not isinstance(v, str) or v not in choices:
            self.err(m.where(key), f"{what}: {key} must be one of {', '.join(choices)}, not {v!r}")
            return None
        return v

    def boolean(self, m: LMap, key: str, what: str) -> bool | None:
        if key not in m:
            return None
        if not isinstance(m[key], bool):
            self.err(m.where(key), f"{what}: {key} must be true or false, not {m[key]!r}")
            return None
        return m[key]

    def days(self, m: LMap, key: str, what: str) -> int | None:
        if key not in m:
            return None
        v = m[key]
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_RETENTION_DAYS:
            self.err(m.where(key), f"{what}: {key} must be a whole number of days between 0 and {MAX_RETENTION_DAYS}, not {v!r}")
            return None
        return v

    def text_list(self, m: LMap, key: str, what: str) -> tuple[list[Any], list[Pos]]:
        v = m[key]
        if isinstance(v, LList):
            items, where = list(v), [v.where(i) for i in range(len(v))]
        else:
            items, where = [v], [m.where(key)]
        out, pos_out = [], []
        for item, pos in zip(items, where):
            if isinstance(item, (dict, list)) or item is None or isinstance(item, bool):
                self.err(pos, f"{what}: {key} takes text values, not {item!r}")
                continue
            out.append(str(item))
            pos_out.append(pos)
        if not items:
            self.err(m.where(key), f"{what}: {key} is empty (leave the field out to match every call)")
        return out, pos_out

    def match(self, raw: Any, pos: Pos, what: str) -> dict[str, tuple]:
        if not isinstance(raw, LMap):
            self.err(pos, f"{what}: match must be a mapping of {', '.join(MATCH_FIELDS)}")
            return {}
        self.unknown_keys(raw, MATCH_FIELDS, f"{what} match")
        out: dict[str, tuple] = {}
        for key in MATCH_FIELDS:
            if key not in raw:
                continue
            values, where = self.text_list(raw, key, what)
            if key in ("direction", "outcome", "days"):
                allowed = {"direction": DIRECTIONS, "outcome": OUTCOMES, "days": WEEKDAYS}[key]
                values = [v.lower() if key == "days" else v for v in values]
                for v, p in zip(values, where):
                    if v not in allowed:
                        self.err(p, f"{what}: {key} {v!r} is not one of {', '.join(allowed)}")
            if key == "time":
                windows = []
                for v, p in zip(values, where):
                    mm = _HHMM.match(v)
                    if mm is None:
                        self.err(p, f"{what}: time {v!r} must look like 09:00-18:00 (24 h, end exclusive)")
                        continue
                    h1, m1, h2, m2 = (int(g) for g in mm.groups())
                    if h2 == 24 and m2:
                        self.err(p, f"{what}: time {v!r}: 24:MM is not a time; use 24:00 for midnight")
                        continue
                    end = dtime(0, 0) if h2 == 24 else dtime(h2, m2)
                    windows.append(TimeWindow(dtime(h1, m1), end))
                out[key] = tuple(windows)
            else:
                out[key] = tuple(values)
        return out


def parse_policy(text: str, file: str) -> PolicyCheck:
    """Parse and check a policy file's text; ``policy`` is None when it has errors."""
    c = _Checker(file)
    try:
        data, dup = load_yaml(text, file)
    except LoadError as exc:
        return PolicyCheck(None, [exc.problem])
    c.problems.extend(dup)
    top = Pos(file, 1, 1)
    if data is None:
        data = LMap()
        data.pos, data.key_pos, data.val_pos, data.val_style = top, {}, {}, {}
    if not isinstance(data, LMap):
        c.err(top, "a recording-policies file is a mapping with 'defaults' and 'rules'")
        return PolicyCheck(None, c.problems)
    c.unknown_keys(data, ("version", "defaults", "rules"), "policy file")
    defaults = Defaults()
    if "defaults" in data:
        raw = data["defaults"]
        if not isinstance(raw, LMap):
            c.err(data.where("defaults"), "defaults must be a mapping")
        else:
            c.unknown_keys(raw, DEFAULT_FIELDS, "defaults")
            action = c.choice(raw, "action", ("record", "dont_record"), "defaults")
            kw = {
                "action": action, "start": c.choice(raw, "start", STARTS, "defaults"),
                "channels": c.choice(raw, "channels", CHANNELS, "defaults"),
                "retention_days": c.days(raw, "retention_days", "defaults"),
                "legal_hold": c.boolean(raw, "legal_hold", "defaults"),
                "qa_sampling": c.boolean(raw, "qa_sampling", "defaults"),
            }
            defaults = Defaults(**{k: v for k, v in kw.items() if v is not None})
    rules: list[Rule] = []
    raw_rules = data.get("rules", [])
    if raw_rules is None:
        raw_rules = []
    if not isinstance(raw_rules, list):
        c.err(data.where("rules"), "rules must be a list")
        raw_rules = []
    seen: dict[str, Pos] = {}
    for i, raw in enumerate(raw_rules):
        pos = raw_rules.where(i) if isinstance(raw_rules, LList) else top
        what = f"rule #{i + 1}"
        if not isinstance(raw, LMap):
            c.err(pos, f"{what} must be a mapping with name, match and action")
            continue
        name = raw.get("name")
        if not isinstance(name, str) or not name.strip():
            c.err(raw.where("name") if "name" in raw else raw.pos, f"{what}: every rule needs a 'name'")
            name = f"#{i + 1}"
        else:
            what = f"rule {name!r}"
            if name in seen:
                c.err(raw.where("name"), f"{what}: duplicate rule name (first at line {seen[name].line})")
            seen.setdefault(name, raw.where("name"))
        c.unknown_keys(raw, RULE_FIELDS, what)
        match = c.match(raw["match"], raw.where("match"), what) if "match" in raw else {}
        action = c.choice(raw, "action", ACTIONS, what)
        options = {
            "start": c.choice(raw, "start", STARTS, what), "channels": c.choice(raw, "channels", CHANNELS, what),
            "retention_days": c.days(raw, "retention_days", what), "legal_hold": c.boolean(raw, "legal_hold", what),
            "qa_sampling": c.boolean(raw, "qa_sampling", what),
        }
        if action is None and "action" not in raw and all(v is None for v in options.values()):
            c.err(raw.pos, f"{what}: the rule does nothing (give an action or an option such as retention_days)")
        if action in ("never", "dont_record") and any(options[k] is not None for k in options):
            given = [k for k in OPTION_FIELDS if options[k] is not None]
            c.err(raw.where(given[0]), f"{what}: {', '.join(given)} has no effect on a rule that does not record", "warning")
        late = [k for k in ("queue", "agent", "outcome") if k in match]
        if options["start"] == "call" and late:
            # the IVR starts MixMonitor when the call arrives: the queue, agent and outcome are not known then
            c.err(raw.where("start"), f"{what}: start: call cannot depend on {', '.join(late)} (not known when the call "
                  "enters the IVR); match on direction, called, time or days")
        rules.append(Rule(name=name, action=action, **match, **options))
    problems = sort_problems(c.problems)
    if any(p.severity == "error" for p in problems):
        return PolicyCheck(None, problems)
    return PolicyCheck(PolicySet(defaults, tuple(rules), file), problems)


def check_file(path: Path) -> PolicyCheck:
    path = Path(path)
    if not path.is_file():
        return PolicyCheck(None, [Problem(Pos(str(path), 1, 1), "no such file")])
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return PolicyCheck(None, [Problem(Pos(str(path), 1, 1), f"cannot read: {exc}")])
    return parse_policy(text, str(path))


def load_policy(path: Path | None) -> PolicySet:
    """The policy the server runs with: ``path`` (settings) or the shipped default. Raises
    ``ValueError`` listing every error, so a broken file stops start-up with a clear message."""
    result = check_file(path or DEFAULT_POLICY_FILE)
    if not result.ok or result.policy is None:
        raise ValueError("recording policy has errors:\n" + "\n".join(str(p) for p in result.errors))
    return result.policy
