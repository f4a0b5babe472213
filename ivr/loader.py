"""YAML loading that remembers where every node and field came from.

Ops engineers fix dialplans from checker output, so every mapping, list and
scalar keeps its ``line:column`` (1-based, like editors show). Mappings become
:class:`LMap` (a ``dict`` with ``pos`` / ``key_pos`` / ``val_pos``), lists
:class:`LList` (``pos`` / ``item_pos``); scalars are plain Python values whose
position is looked up in their parent container.

Duplicate keys are not silently merged (PyYAML keeps the last one): they are
reported as :class:`Problem` objects, with menu digits normalised first so
that ``1:`` and ``"1":`` count as the same key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml


@dataclass(frozen=True, slots=True, order=True)
class Pos:
    """A position in a source file (1-based line and column)."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    @classmethod
    def of(cls, file: str, node: yaml.Node) -> "Pos":
        return cls(file, node.start_mark.line + 1, node.start_mark.column + 1)


@dataclass(frozen=True, slots=True)
class Problem:
    """One checker finding: ``file:line:col: message``."""

    pos: Pos
    message: str
    severity: str = "error"  # "error" | "warning"

    def __str__(self) -> str:
        tag = "" if self.severity == "error" else "warning: "
        return f"{self.pos}: {tag}{self.message}"


class LMap(dict):
    """A mapping that knows where it, its keys and its values are in the file."""

    pos: Pos
    key_pos: dict[Any, Pos]
    val_pos: dict[Any, Pos]
    val_style: dict[Any, str | None]  # YAML scalar style of each value: None (plain), '"', "'", '|', '>'

    def where(self, key: Any) -> Pos:
        """Position of ``key``'s value (or of the mapping when the key is absent)."""
        return self.val_pos.get(key) or self.pos

    def where_key(self, key: Any) -> Pos:
        return self.key_pos.get(key) or self.pos

    def where_in(self, key: Any, offset: int) -> Pos:
        """Position of character ``offset`` inside a one-line scalar value (after its opening quote)."""
        base = self.where(key)
        style = getattr(self, "val_style", {}).get(key)
        if style in ("|", ">"):
            return base
        return Pos(base.file, base.line, base.col + offset + (1 if style in ('"', "'") else 0))


class LList(list):
    pos: Pos
    item_pos: list[Pos]

    def where(self, index: int) -> Pos:
        return self.item_pos[index] if 0 <= index < len(self.item_pos) else self.pos


def normalise_key(key: Any) -> Any:
    """Mapping keys as the flow model sees them: ints (menu digits) become strings."""
    if isinstance(key, bool):
        return key
    if isinstance(key, int):
        return str(key)
    return key


class LoadError(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def load_yaml(text: str, file: str) -> tuple[Any, list[Problem]]:
    """Parse ``text``; returns the located document and duplicate-key problems.

    Raises :class:`LoadError` (with a position) on a YAML syntax error.
    """
    problems: list[Problem] = []

    class _Loader(yaml.SafeLoader):
        pass

    def construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> LMap:
        loader.flatten_mapping(node)
        m = LMap()
        m.pos = Pos.of(file, node)
        m.key_pos = {}
        m.val_pos = {}
        m.val_style = {}
        for key_node, value_node in node.value:
            key = normalise_key(loader.construct_object(key_node, deep=True))
            try:
                hash(key)
            except TypeError:
                problems.append(Problem(Pos.of(file, key_node), "a mapping key must be a plain value"))
                continue
            if key in m:
                first = m.key_pos[key]
                problems.append(
                    Problem(Pos.of(file, key_node), f"duplicate key {key!r} (first defined at line {first.line})")
                )
                continue
            m[key] = loader.construct_object(value_node, deep=True)
            m.key_pos[key] = Pos.of(file, key_node)
            m.val_pos[key] = Pos.of(file, value_node)
            m.val_style[key] = getattr(value_node, "style", None)
        return m

    def construct_sequence(loader: yaml.SafeLoader, node: yaml.SequenceNode) -> LList:
        seq = LList(loader.construct_object(child, deep=True) for child in node.value)
        seq.pos = Pos.of(file, node)
        seq.item_pos = [Pos.of(file, child) for child in node.value]
        return seq

    _Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    _Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, construct_sequence)

    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        pos = Pos(file, mark.line + 1, mark.column + 1) if mark else Pos(file, 1, 1)
        msg = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        ctx_mark = exc.context_mark
        if ctx_mark is not None and mark is not None and (ctx_mark.line, ctx_mark.column) != (mark.line, mark.column):
            msg += f" (the construct started at line {ctx_mark.line + 1}, column {ctx_mark.column + 1})"
        raise LoadError(Problem(pos, f"YAML syntax error: {msg}")) from exc
    except yaml.YAMLError as exc:
        raise LoadError(Problem(Pos(file, 1, 1), f"YAML error: {exc}")) from exc
    except RecursionError:  # issue 12 (fuzz): PyYAML's composer recurses once per nesting level
        raise LoadError(Problem(Pos(file, 1, 1), "YAML nested too deeply")) from None
    return data, problems
