"""Check a ``qa-forms/`` directory: every form file plus ``sampling.yaml``.

What ``callcore qa check`` and the hot-reload registry run. Problems are the
dialplan checker's :class:`~ivr.loader.Problem` (``file:line:col: message``),
sorted and de-duplicated the same way (:func:`ivr.checker.sort_problems`).
Form ids must be unique across files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ivr.checker import display_name, flow_files, sort_problems
from ivr.loader import Pos, Problem
from qa.forms import Form, parse_form
from qa.sampling import RULES_FILE, RuleSet, parse_rules


@dataclass
class QaCheckResult:
    forms: dict[str, Form]
    rules: RuleSet | None
    problems: list[Problem]
    sources: dict[str, tuple[str, str]] = field(default_factory=dict)  # form id -> (display file, text)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors


def check_dir(directory: Path, *, display_prefix: str | None = None) -> QaCheckResult:
    directory = Path(directory)
    prefix = str(directory) if display_prefix is None else display_prefix
    if not directory.is_dir():
        return QaCheckResult({}, None, [Problem(Pos(prefix, 1, 1), "QA forms directory not found")])
    forms: dict[str, Form] = {}
    sources: dict[str, tuple[str, str]] = {}
    problems: list[Problem] = []
    rules_text: tuple[str, str] | None = None
    for path in flow_files(directory):
        display = display_name(prefix, path.name)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(Pos(display, 1, 1), f"cannot read: {exc.__class__.__name__}"))
            continue
        if path.name == RULES_FILE:
            rules_text = (display, text)
            continue
        form, probs = parse_form(text, display)
        problems.extend(probs)
        if form is None:
            continue
        if form.id in forms:
            problems.append(Problem(Pos(display, 1, 1), f"duplicate form id {form.id!r} (also in {forms[form.id].file})"))
            continue
        forms[form.id] = form
        sources[form.id] = (display, text)
    if not forms and not problems:
        problems.append(Problem(Pos(prefix, 1, 1), "no form files (*.yaml) found"))
    rules = None
    if rules_text is not None:
        rules, probs = parse_rules(rules_text[1], rules_text[0], forms=forms)
        problems.extend(probs)
    return QaCheckResult(forms, rules, sort_problems(problems), sources)


def check_path(path: Path) -> QaCheckResult:
    """A directory, or one file (checked with its siblings; only its own problems are reported)."""
    path = Path(path)
    if path.is_dir():
        return check_dir(path)
    if not path.is_file():
        return QaCheckResult({}, None, [Problem(Pos(str(path), 1, 1), "no such file or directory")])
    parent = str(path.parent) if str(path.parent) != "." else ""
    result = check_dir(path.parent, display_prefix=parent)
    want = display_name(parent, path.name)
    result.problems = [p for p in result.problems if p.pos.file == want]
    return result
