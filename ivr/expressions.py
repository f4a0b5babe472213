"""A tiny, safe expression language for ``set`` and ``branch``. No eval/exec.

Grammar (lowest to highest precedence)::

    expr    := or
    or      := and ("or" and)*
    and     := not ("and" not)*
    not     := "not" not | cmp
    cmp     := sum (("==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not in") sum)?
    sum     := prod (("+" | "-") prod)*
    prod    := unary (("*" | "/" | "//" | "%") unary)*
    unary   := "-" unary | atom
    atom    := NUMBER | STRING | true | false | null | NAME | NAME "(" args ")"
             | "(" expr ")" | "[" args "]"

``+`` adds when one side is a number and the other is numeric (``"41" + 1``
is 42); otherwise it concatenates as text (``"010" + "1234"``, ``"a" + 1``). Variables that
were never set evaluate to ``null``. Functions: see :data:`FUNCTIONS`.
Evaluation never raises for caller data: a type error makes the whole
expression :class:`ExprError`, which the engine records and treats as
``null``/false — it never reaches the caller as silence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping


class ExprError(Exception):
    def __init__(self, message: str, offset: int = 0) -> None:
        super().__init__(message)
        self.offset = offset


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<num>\d+(?:\.\d+)?)
      | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<op>==|!=|<=|>=|//|[<>+\-*/%(),\[\]])
    )""",
    re.VERBOSE,
)

KEYWORDS = {"and", "or", "not", "in", "true", "false", "null"}


@dataclass(frozen=True, slots=True)
class Tok:
    kind: str  # num | str | name | op | end
    value: str
    offset: int


def tokenize(src: str) -> list[Tok]:
    toks: list[Tok] = []
    i = 0
    while i < len(src):
        if src[i:].strip() == "":
            break
        m = _TOKEN.match(src, i)
        if not m or m.end() == i:
            j = i
            while j < len(src) and src[j].isspace():
                j += 1
            raise ExprError(f"unexpected character {src[j]!r}", j)
        kind = m.lastgroup or "op"
        start = m.start(kind)
        toks.append(Tok(kind, m.group(kind), start))
        i = m.end()
    toks.append(Tok("end", "", len(src)))
    return toks


# ---- AST: tuples, evaluated by :func:`evaluate`
# ("lit", value) ("var", name) ("call", name, [args]) ("list", [items])
# ("un", op, x) ("bin", op, a, b) ("and", a, b) ("or", a, b) ("not", x)


def _s(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _num(v: Any) -> int | float:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, (int, float)):
        return v
    if isinstance(v, str):
        try:
            return int(v)
        except ValueError:
            try:
                return float(v)
            except ValueError:
                pass
    raise ExprError(f"{v!r} is not a number")


def _int(v: Any) -> int:
    try:
        return int(_num(v))
    except (OverflowError, ValueError):  # int(inf), int(nan)
        raise ExprError(f"{v!r} is not a whole number") from None


def _substr(s: Any, start: Any, length: Any = None) -> str:
    text = _s(s)
    a = _int(start)
    return text[a:] if length is None else text[a : a + _int(length)]


def _default(v: Any, d: Any) -> Any:
    return d if v is None or v == "" else v


FUNCTIONS: dict[str, tuple[Callable[..., Any], int, int]] = {
    # name: (function, min args, max args)
    "len": (lambda v: len(_s(v)) if not isinstance(v, list) else len(v), 1, 1),
    "startswith": (lambda s, p: _s(s).startswith(_s(p)), 2, 2),
    "endswith": (lambda s, p: _s(s).endswith(_s(p)), 2, 2),
    "contains": (lambda s, p: _s(p) in _s(s), 2, 2),
    "lower": (lambda s: _s(s).lower(), 1, 1),
    "upper": (lambda s: _s(s).upper(), 1, 1),
    "strip": (lambda s: _s(s).strip(), 1, 1),
    "int": (_int, 1, 1),
    "str": (_s, 1, 1),
    "substr": (_substr, 2, 3),
    "default": (_default, 2, 2),
    "matches": (lambda s, p: re.fullmatch(_s(p), _s(s)) is not None, 2, 2),
    "digits": (lambda s: "".join(ch for ch in _s(s) if ch.isdigit()), 1, 1),
    "min": (lambda *a: min(_num(x) for x in a), 1, 8),
    "max": (lambda *a: max(_num(x) for x in a), 1, 8),
}


#: bounds (issue 12, found by tests/unit/reliability/test_parser_fuzz.py): a deeper
#: nesting or a longer source is refused with an ExprError instead of a RecursionError,
#: and a number literal never has more digits than ``int()`` accepts (4300)
MAX_DEPTH = 64
MAX_SOURCE = 4000


class _Parser:
    def __init__(self, src: str) -> None:
        self.src = src
        self.toks = tokenize(src)
        self.i = 0
        self.depth = 0

    def _nest(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExprError(f"expression nested too deeply (more than {MAX_DEPTH} levels)", self.peek().offset)

    def peek(self) -> Tok:
        return self.toks[self.i]

    def next(self) -> Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def at(self, kind: str, value: str | None = None) -> bool:
        t = self.peek()
        return t.kind == kind and (value is None or t.value == value)

    def expect(self, kind: str, value: str) -> Tok:
        if not self.at(kind, value):
            t = self.peek()
            found = "end of expression" if t.kind == "end" else repr(t.value)
            raise ExprError(f"expected {value!r}, found {found}", t.offset)
        return self.next()

    def parse(self) -> tuple:
        node = self.or_()
        if not self.at("end"):
            t = self.peek()
            raise ExprError(f"unexpected {t.value!r}", t.offset)
        return node

    def or_(self) -> tuple:
        self._nest()
        node = self.and_()
        while self.at("name", "or"):
            self.next()
            node = ("or", node, self.and_())
        self.depth -= 1
        return node

    def and_(self) -> tuple:
        node = self.not_()
        while self.at("name", "and"):
            self.next()
            node = ("and", node, self.not_())
        return node

    def not_(self) -> tuple:
        if self.at("name", "not"):
            self.next()
            self._nest()
            node = ("not", self.not_())
            self.depth -= 1
            return node
        return self.cmp()

    def cmp(self) -> tuple:
        node = self.sum()
        t = self.peek()
        if t.kind == "op" and t.value in ("==", "!=", "<", "<=", ">", ">="):
            self.next()
            return ("bin", t.value, node, self.sum())
        if self.at("name", "in"):
            self.next()
            return ("bin", "in", node, self.sum())
        if self.at("name", "not") and self.toks[self.i + 1].kind == "name" and self.toks[self.i + 1].value == "in":
            self.i += 2
            return ("not", ("bin", "in", node, self.sum()))
        return node

    def sum(self) -> tuple:
        node = self.prod()
        while self.peek().kind == "op" and self.peek().value in ("+", "-"):
            op = self.next().value
            node = ("bin", op, node, self.prod())
        return node

    def prod(self) -> tuple:
        node = self.unary()
        while self.peek().kind == "op" and self.peek().value in ("*", "/", "//", "%"):
            op = self.next().value
            node = ("bin", op, node, self.unary())
        return node

    def unary(self) -> tuple:
        if self.at("op", "-"):
            self.next()
            self._nest()
            node = ("un", "-", self.unary())
            self.depth -= 1
            return node
        return self.atom()

    def args(self, close: str) -> list[tuple]:
        items: list[tuple] = []
        if self.at("op", close):
            self.next()
            return items
        while True:
            items.append(self.or_())
            if self.at("op", ","):
                self.next()
                continue
            self.expect("op", close)
            return items

    def atom(self) -> tuple:
        t = self.next()
        if t.kind == "num":
            return ("lit", float(t.value) if "." in t.value else int(t.value))
        if t.kind == "str":
            body = t.value[1:-1]
            return ("lit", re.sub(r"\\(.)", r"\1", body))
        if t.kind == "name":
            if t.value == "true":
                return ("lit", True)
            if t.value == "false":
                return ("lit", False)
            if t.value == "null":
                return ("lit", None)
            if t.value in KEYWORDS:
                raise ExprError(f"unexpected {t.value!r}", t.offset)
            if self.at("op", "("):
                self.next()
                if t.value not in FUNCTIONS:
                    known = ", ".join(sorted(FUNCTIONS))
                    raise ExprError(f"unknown function {t.value!r} (known: {known})", t.offset)
                args = self.args(")")
                _, lo, hi = FUNCTIONS[t.value]
                if not lo <= len(args) <= hi:
                    want = str(lo) if lo == hi else f"{lo} to {hi}"
                    raise ExprError(f"{t.value}() takes {want} argument(s), got {len(args)}", t.offset)
                return ("call", t.value, args)
            return ("var", t.value)
        if t.kind == "op" and t.value == "(":
            node = self.or_()
            self.expect("op", ")")
            return node
        if t.kind == "op" and t.value == "[":
            return ("list", self.args("]"))
        found = "end of expression" if t.kind == "end" else repr(t.value)
        raise ExprError(f"unexpected {found}", t.offset)


@dataclass(frozen=True, slots=True)
class Expr:
    """A parsed expression; ``source`` is kept for explanations ("why this branch")."""

    source: str
    tree: tuple

    def variables(self) -> set[str]:
        out: set[str] = set()

        def walk(n: Any) -> None:
            if isinstance(n, tuple):
                if n and n[0] == "var":
                    out.add(n[1])
                    return
                for part in n[1:]:
                    walk(part)
            elif isinstance(n, list):
                for part in n:
                    walk(part)

        walk(self.tree)
        return out

    def evaluate(self, env: Mapping[str, Any]) -> Any:
        return _eval(self.tree, env)


def parse(src: Any) -> Expr:
    """Parse an expression. Non-string YAML scalars (numbers, booleans) are literals."""
    if isinstance(src, bool) or isinstance(src, (int, float)) or src is None:
        return Expr(_s(src), ("lit", src))
    if not isinstance(src, str):
        raise ExprError(f"an expression must be text, not {type(src).__name__}")
    if not src.strip():
        raise ExprError("empty expression")
    if len(src) > MAX_SOURCE:
        raise ExprError(f"expression too long ({len(src)} characters, at most {MAX_SOURCE})")
    return Expr(src, _Parser(src).parse())


def truthy(v: Any) -> bool:
    if v is None:
        return False
    if isinstance(v, str):
        return v != "" and v.lower() not in ("false", "0", "no")
    return bool(v)


def _cmp_pair(a: Any, b: Any) -> tuple[Any, Any]:
    """Compare numerically when both sides look like numbers, else as text."""
    try:
        return _num(a), _num(b)
    except ExprError:
        return _s(a), _s(b)


def _eval(n: tuple, env: Mapping[str, Any]) -> Any:
    kind = n[0]
    if kind == "lit":
        return n[1]
    if kind == "var":
        return env.get(n[1])
    if kind == "list":
        return [_eval(x, env) for x in n[1]]
    if kind == "call":
        fn = FUNCTIONS[n[1]][0]
        try:
            return fn(*[_eval(x, env) for x in n[2]])
        except ExprError:
            raise
        except (ValueError, TypeError, re.error) as exc:
            raise ExprError(f"{n[1]}(): {exc}") from exc
    if kind == "not":
        return not truthy(_eval(n[1], env))
    if kind == "and":
        return truthy(_eval(n[1], env)) and truthy(_eval(n[2], env))
    if kind == "or":
        return truthy(_eval(n[1], env)) or truthy(_eval(n[2], env))
    if kind == "un":
        return -_num(_eval(n[2], env))
    if kind == "bin":
        op, a, b = n[1], _eval(n[2], env), _eval(n[3], env)
        if op == "+":
            # numbers add (a digit string added to a number counts as a number: "41" + 1 == 42);
            # two strings, or anything with a non-numeric string or null, concatenate
            nums = [isinstance(x, (int, float)) and not isinstance(x, bool) for x in (a, b)]
            if any(nums):
                try:
                    return _num(a) + _num(b)
                except ExprError:
                    pass
            return _s(a) + _s(b)
        if op in ("-", "*", "/", "//", "%"):
            x, y = _num(a), _num(b)
            if op == "-":
                return x - y
            if op == "*":
                return x * y
            if y == 0:
                raise ExprError("division by zero")
            if op == "/":
                r = x / y
                return int(r) if isinstance(r, float) and r.is_integer() else r
            return x // y if op == "//" else x % y
        if op == "in":
            if isinstance(b, list):
                return any(_cmp_pair(a, item)[0] == _cmp_pair(a, item)[1] for item in b)
            return _s(a) in _s(b)
        if op == "==":
            if a is None or b is None:
                return a is None and b is None or _s(a) == _s(b)
            x, y = _cmp_pair(a, b)
            return x == y
        if op == "!=":
            return not _eval(("bin", "==", n[2], n[3]), env)
        x, y = _cmp_pair(a, b)
        try:
            return {"<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y}[op]
        except TypeError as exc:
            raise ExprError(f"cannot compare {a!r} and {b!r}") from exc
    raise ExprError(f"bad node {kind}")  # pragma: no cover - parser never builds it


def to_text(v: Any) -> str:
    """How a value is stored in a variable / shown to an agent."""
    return _s(v)
