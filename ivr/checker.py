"""Meaning checks over one flow and over a whole dialplans directory.

``check_dir`` / ``check_path`` are what ``callcore dialplan check`` and the
hot-reload registry run. Every finding is a :class:`~ivr.loader.Problem` with
``file:line:col``; warnings never block a reload, errors always do.

Checks: YAML syntax and duplicate keys (menu digits), unknown node types and
fields, value types, undefined targets (with "did you mean"), unreachable
nodes, loops that can cycle without a node that waits for the caller,
unknown schedules / subflows, subflow recursion, missing sound files per
language, variables that are read but never set, voicemail mailboxes that the
Asterisk ``voicemail.conf`` in use does not define (``settings.voicemail_conf``;
default: the shipped ``asterisk-config/voicemail.conf``).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Iterable

from ivr.flow import BUILTIN_VARS, WAITING_TYPES, Flow, Node, Prompt, parse_flow
from ivr.loader import Pos, Problem

SOUND_EXTENSIONS = ("wav", "wav16", "gsm", "ulaw", "ul", "alaw", "al", "sln", "sln8", "sln16", "sln48", "g722", "g729", "g726", "mp3")
FLOW_SUFFIXES = (".yaml", ".yml")


@dataclass
class CheckResult:
    flows: dict[str, Flow]
    problems: list[Problem]
    sources: dict[str, str] = field(default_factory=dict)  # flow name -> source text

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _waits(node: Node) -> bool:
    if node.type in WAITING_TYPES:
        return True
    return node.type == "language" and node.args.get("options") is not None


def _prompts(node: Node) -> list[tuple[str, Prompt]]:
    out = []
    for key, value in node.args.items():
        if isinstance(value, Prompt):
            out.append((key, value))
    for q in node.args.get("questions") or []:
        out.append((f"question {q.id!r}", q.prompt))
    return out


HOLIDAY_HORIZON = timedelta(days=365)


def check_holiday_coverage(flow: Flow, today: date | None = None) -> list[Problem]:
    """A schedule must know its holidays for the coming 12 months: either a public
    calendar (``public_holidays: KR``, every year) or dates listed far enough ahead."""
    today = today or date.today()
    out: list[Problem] = []
    for name, sched in flow.schedules.items():
        if sched is None:
            continue
        until = sched.holiday_data_until()
        if until is not None and until >= today + HOLIDAY_HORIZON:
            continue
        known = f"holiday data ends {until.isoformat()}" if until else "no holiday data"
        out.append(Problem(
            sched.pos or flow.pos,
            f"schedule {name!r}: {known}; the coming 12 months are not covered "
            f"(add 'public_holidays: KR' for every year's public holidays; company days stay in 'holidays')",
            "warning",
        ))
    return out


def check_flow(flow: Flow, all_flows: dict[str, Flow], sounds_dir: Path | None, assigned: set[str] | None = None) -> list[Problem]:
    """Meaning checks of one flow (``all_flows`` resolves subflows)."""
    problems: list[Problem] = []
    nodes = flow.nodes
    what = lambda n: f"{n.type} {n.id!r}"  # noqa: E731

    if flow.start and flow.start not in nodes:
        problems.append(Problem(flow.start_pos, f"start node {flow.start!r} is not defined{_suggest(flow.start, nodes)}"))

    # targets
    for node in nodes.values():
        for edge in node.edges():
            if edge.target not in nodes:
                problems.append(
                    Problem(
                        edge.pos,
                        f"{what(node)}: {edge.label} goes to {edge.target!r} which is not defined{_suggest(edge.target, nodes)}",
                    )
                )
        if node.type == "hours":
            sched = node.args.get("schedule")
            if sched is not None and sched not in flow.schedules:
                known = ", ".join(flow.schedules) or "none defined"
                problems.append(
                    Problem(node.where("schedule"), f"{what(node)}: schedule {sched!r} is not defined{_suggest(sched, flow.schedules)} (schedules: {known})")
                )
        if node.type == "subflow":
            target = node.args.get("flow")
            if target is not None and target not in all_flows:
                problems.append(Problem(node.where("flow"), f"{what(node)}: flow {target!r} is not defined{_suggest(target, all_flows)}"))
        if node.type == "queue" and node.args.get("survey") and node.args["survey"] not in all_flows:
            s = node.args["survey"]
            problems.append(Problem(node.where("survey"), f"{what(node)}: survey flow {s!r} is not defined{_suggest(s, all_flows)}"))

    # reachability (skipped while a node is unusable: its edges are unknown)
    if flow.start in nodes and not any(n.type == "invalid" for n in nodes.values()):
        seen = {flow.start}
        todo = [flow.start]
        while todo:
            for edge in nodes[todo.pop()].edges():
                if edge.target in nodes and edge.target not in seen:
                    seen.add(edge.target)
                    todo.append(edge.target)
        for node in nodes.values():
            if node.id not in seen and node.type != "invalid":
                problems.append(Problem(node.pos, f"{what(node)} is unreachable from start node {flow.start!r}"))

    problems.extend(_no_wait_loops(flow))
    problems.extend(check_holiday_coverage(flow))

    # prompts and sounds
    for node in nodes.values():
        for key, prompt in _prompts(node):
            langs = set(prompt.by_lang)
            if "*" not in langs:
                for lang in flow.languages:
                    if lang not in langs:
                        problems.append(Problem(prompt.pos, f"{what(node)}: {key} has no {lang!r} version (flow languages: {', '.join(flow.languages)})"))
                for lang in langs - set(flow.languages):
                    problems.append(Problem(prompt.pos, f"{what(node)}: {key} has a {lang!r} version but {lang!r} is not in the flow languages", "warning"))
            if sounds_dir is not None:
                for lang, names in prompt.languages(flow.languages):
                    lang_key = "*" if "*" in prompt.by_lang else lang
                    for i, name in enumerate(names):
                        if not sound_exists(sounds_dir, lang, name):
                            problems.append(
                                Problem(prompt.where(lang_key, i), f"{what(node)}: {key}: sound {lang}/{name} not found in {sounds_dir}/{lang}/ (any of .wav .gsm .ulaw .sln16 ...)")
                            )
        if node.type == "language":
            for lang in (node.args.get("options") or {}).values():
                if lang not in flow.languages:
                    problems.append(Problem(node.where("options"), f"{what(node)}: language {lang!r} is not in the flow languages {flow.languages}"))
            if node.args.get("set") and node.args["set"] not in flow.languages:
                problems.append(Problem(node.where("set"), f"{what(node)}: language {node.args['set']!r} is not in the flow languages {flow.languages}"))

    problems.extend(_variables(flow, assigned if assigned is not None else _assigned_vars(flow)))
    return problems


def _no_wait_loops(flow: Flow) -> list[Problem]:
    """Tarjan SCC over nodes that do not wait for input: any cycle there can spin forever."""
    nodes = flow.nodes
    graph = {
        n.id: [e.target for e in n.edges() if e.target in nodes and not _waits(nodes[e.target])]
        for n in nodes.values()
        if not _waits(n)
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    sccs: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:
        # iterative Tarjan to survive big flows
        work = [(v, iter(graph.get(v, [])))]
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        while work:
            node, it = work[-1]
            advanced = False
            for w in it:
                if w not in graph:
                    continue
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(graph.get(w, []))))
                    advanced = True
                    break
                if w in on:
                    low[node] = min(low[node], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                sccs.append(comp)

    for v in graph:
        if v not in index:
            strong(v)
    out = []
    for comp in sccs:
        if len(comp) == 1 and comp[0] not in graph[comp[0]]:
            continue
        order = sorted(comp, key=lambda nid: nodes[nid].pos)
        first = nodes[order[0]]
        cycle = " → ".join(order + [order[0]])
        out.append(
            Problem(first.pos, f"loop that never waits for input: {cycle}; put a menu/collect in the loop or break it")
        )
    return out


def _assigned_vars(flow: Flow) -> set[str]:
    out: set[str] = set()
    for n in flow.nodes.values():
        a = n.args
        if n.type == "set":
            out.update(a.get("vars") or {})
        elif n.type == "collect" and a.get("var"):
            out.add(a["var"])
        elif n.type == "lookup":
            out.update(a.get("map") or {})
        elif n.type == "survey":
            out.update(f"survey_{q.id}" for q in a.get("questions") or [])
    return out


def _variables(flow: Flow, assigned: set[str]) -> list[Problem]:
    """Warn about reads of variables no flow ever sets (subflows share the call's variables)."""
    assigned = assigned | BUILTIN_VARS
    problems = []
    for n in flow.nodes.values():
        exprs = []
        for key, value in n.args.items():
            if hasattr(value, "variables"):
                exprs.append((key, value))
            elif isinstance(value, dict):
                exprs.extend((f"{key}.{k}", v) for k, v in value.items() if hasattr(v, "variables"))
        for c in n.args.get("conditions") or []:
            exprs.append(("condition", c.expr))
        if n.args.get("queue_var"):
            exprs.append(("queue_var", _VarRef(n.args["queue_var"])))
        names_in_path = re.findall(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", n.args.get("path") or "") if n.type == "lookup" else []
        used = {v for _, e in exprs for v in e.variables()} | set(names_in_path)
        for var in sorted(used - assigned):
            if var.startswith("arg") or var.startswith("param_"):
                continue
            problems.append(Problem(n.pos, f"{n.type} {n.id!r}: variable {var!r} is read but never set by any flow (it will be empty)", "warning"))
    for var in flow.agent_vars:
        if var not in assigned:
            problems.append(Problem(flow.pos, f"agent_vars: {var!r} is never set by any flow", "warning"))
    return problems


class _VarRef:
    def __init__(self, name: str) -> None:
        self.name = name

    def variables(self) -> set[str]:
        return {self.name}


def sound_exists(sounds_dir: Path, lang: str, name: str) -> bool:
    base = sounds_dir / lang / name
    return any(base.with_name(f"{base.name}.{ext}").is_file() for ext in SOUND_EXTENSIONS)


def _subflow_cycles(flows: dict[str, Flow]) -> list[Problem]:
    calls: dict[str, list[tuple[str, Pos]]] = {
        f.name: [(n.args["flow"], n.where("flow")) for n in f.nodes.values() if n.type == "subflow" and n.args.get("flow") in flows]
        for f in flows.values()
    }
    out = []
    reported: set[frozenset[str]] = set()
    for start in calls:
        stack = [(start, [start])]
        while stack:
            cur, path = stack.pop()
            for callee, pos in calls.get(cur, []):
                if callee == start:
                    key = frozenset(path)
                    if key not in reported:
                        reported.add(key)
                        out.append(Problem(pos, f"subflow recursion: {' → '.join(path + [start])}"))
                elif callee not in path:
                    stack.append((callee, path + [callee]))
    return out


#: voicemail.conf sections that are not mailbox contexts
VOICEMAIL_NON_CONTEXTS = frozenset({"general", "zonemessages"})


def voicemail_mailboxes(text: str) -> dict[str, set[str]]:
    """Mailboxes per context of a voicemail.conf (``[context]`` then ``box => pin,name,…``)."""
    out: dict[str, set[str]] = {}
    context: str | None = None
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        if line.startswith("[") and "]" in line:
            name = line[1 : line.index("]")].strip()
            context = None if name.lower() in VOICEMAIL_NON_CONTEXTS else name
            if context is not None:
                out.setdefault(context, set())
            continue
        if context is not None and "=>" in line:
            out[context].add(line.split("=>", 1)[0].strip())
    return out


def check_mailboxes(flows: dict[str, Flow], voicemail_conf: Path | None) -> list[Problem]:
    """``voicemail`` nodes whose ``box[@context]`` the voicemail.conf does not define (Asterisk's
    ``VoiceMail()`` would fail with VMSTATUS=FAILED and the caller would be hung up). A mailbox without
    ``@context`` is in Asterisk's ``default`` context."""
    nodes = [(f, n) for f in flows.values() for n in f.nodes.values() if n.type == "voicemail" and n.args.get("mailbox")]
    if voicemail_conf is None or not nodes:
        return []
    path = Path(voicemail_conf)
    try:
        boxes = voicemail_mailboxes(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        _, n = nodes[0]
        return [Problem(n.where("mailbox"), f"voicemail.conf {path} could not be read ({exc.__class__.__name__}): mailboxes not checked (setting voicemail_conf)", "warning")]
    problems = []
    for _, n in nodes:
        box, _, context = str(n.args["mailbox"]).partition("@")
        context = context or "default"
        if box in boxes.get(context, set()):
            continue
        if context not in boxes:
            known = ", ".join(sorted(boxes)) or "none"
            why = f"voicemail.conf {path} has no context [{context}] (contexts: {known})"
        else:
            why = f"context [{context}] of voicemail.conf {path} has no mailbox {box!r}{_suggest(box, boxes[context])}"
        problems.append(Problem(n.where("mailbox"), f"voicemail {n.id!r}: mailbox {n.args['mailbox']!r} is not defined: {why}"))
    return problems


def check_flows(flows: dict[str, Flow], sounds_dir: Path | None, voicemail_conf: Path | None = None) -> list[Problem]:
    problems: list[Problem] = []
    problems.extend(check_mailboxes(flows, voicemail_conf))
    assigned: set[str] = set()
    for flow in flows.values():
        assigned |= _assigned_vars(flow)
    for flow in flows.values():
        problems.extend(check_flow(flow, flows, sounds_dir, assigned))
    problems.extend(_subflow_cycles(flows))
    called = {n.args.get("flow") for f in flows.values() for n in f.nodes.values() if n.type == "subflow"}
    for f in flows.values():
        if f.name not in called:
            for n in f.nodes.values():
                if n.type == "return":
                    problems.append(Problem(n.pos, f"return {n.id!r}: flow {f.name!r} is never used as a subflow; when it runs as a call's main flow 'return' hangs up", "warning"))
    return problems


def required_sounds(flows: dict[str, Flow]) -> list[tuple[str, str]]:
    """Every (language, sound name) the flows can play."""
    out: set[tuple[str, str]] = set()
    for flow in flows.values():
        for node in flow.nodes.values():
            for _, prompt in _prompts(node):
                for lang, names in prompt.languages(flow.languages):
                    out.update((lang, name) for name in names)
    return sorted(out)


def flow_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix in FLOW_SUFFIXES and not p.name.startswith("."))


def parse_sources(sources: dict[str, tuple[str, str]], read_include, includes_for=None) -> tuple[dict[str, Flow], list[Problem]]:
    """``sources``: flow name -> (display file, text)."""
    flows: dict[str, Flow] = {}
    problems: list[Problem] = []
    for name, (file, text) in sources.items():
        inc = includes_for(name) if includes_for else None
        flow, probs = parse_flow(text, file, name=name, read_include=read_include, includes=inc)
        problems.extend(probs)
        if flow is not None:
            flows[name] = flow
    return flows, problems


def check_dir(
    directory: Path, sounds_dir: Path | None = None, *, display_prefix: str | None = None, check_sounds: bool = True,
    voicemail_conf: Path | None = None,
) -> CheckResult:
    """Load and check every flow in ``directory`` (``*.yaml`` at its top level).

    File names in problems are ``<display_prefix>/<name>`` (default: the directory as given)."""
    directory = Path(directory)
    prefix = str(directory) if display_prefix is None else display_prefix
    sources: dict[str, tuple[str, str]] = {}
    texts: dict[str, str] = {}
    problems: list[Problem] = []
    if not directory.is_dir():
        return CheckResult({}, [Problem(Pos(prefix, 1, 1), "dialplans directory not found")])
    for path in flow_files(directory):
        display = display_name(prefix, path.name)
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            problems.append(Problem(Pos(display, 1, 1), "file is not UTF-8 text"))
            continue
        sources[path.stem] = (display, text)
        texts[path.stem] = text
    if not sources:
        problems.append(Problem(Pos(prefix, 1, 1), "no flow files (*.yaml) found"))

    flows, probs = parse_sources(sources, include_reader(directory))
    problems.extend(probs)
    if sounds_dir is None:
        sounds_dir = directory / "sounds"
    problems.extend(check_flows(flows, sounds_dir if check_sounds else None, voicemail_conf))
    return CheckResult(flows, sort_problems(problems), texts)


def include_reader(directory: Path):
    """Reads holiday files relative to the dialplans directory, refusing to leave it."""
    root = Path(directory).resolve()

    def read(rel: str) -> str:
        target = (root / rel).resolve()
        if root not in target.parents:
            raise FileNotFoundError(rel)
        return target.read_text(encoding="utf-8")

    return read


def display_name(prefix: str, name: str) -> str:
    return name if prefix in ("", ".") else f"{prefix.rstrip('/')}/{name}"


def sort_problems(problems: list[Problem]) -> list[Problem]:
    seen: set[tuple] = set()
    out = []
    for p in sorted(problems, key=lambda p: (p.pos.file, p.pos.line, p.pos.col, p.message)):
        key = (p.pos, p.message)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def check_path(path: Path, sounds_dir: Path | None = None, *, check_sounds: bool = True, voicemail_conf: Path | None = None) -> CheckResult:
    """``callcore dialplan check PATH``: a directory, or one flow file (checked together with its
    siblings so subflows resolve; only that file's own problems are reported)."""
    path = Path(path)
    if path.is_dir():
        return check_dir(path, sounds_dir, check_sounds=check_sounds, voicemail_conf=voicemail_conf)
    if not path.is_file():
        return CheckResult({}, [Problem(Pos(str(path), 1, 1), "no such file or directory")])
    parent = str(path.parent) if str(path.parent) != "." else ""
    result = check_dir(path.parent, sounds_dir, display_prefix=parent, check_sounds=check_sounds, voicemail_conf=voicemail_conf)
    want = display_name(parent, path.name)
    result.problems = [p for p in result.problems if p.pos.file == want]
    result.flows = {n: f for n, f in result.flows.items() if f.file == want}
    return result
