from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from ivr import expressions
from ivr.expressions import ExprError, parse
from ivr.loader import LMap, LoadError, load_yaml


def test_positions_of_keys_values_and_items_are_one_based():
    data, problems = load_yaml("a: 1\nnodes:\n  x:\n    type: play\n    prompt: [p1, p2]\n", "f.yaml")
    assert problems == []
    assert isinstance(data, LMap)
    assert (data.where_key("nodes").line, data.where_key("nodes").col) == (2, 1)
    node = data["nodes"]["x"]
    assert (node.where("type").line, node.where("type").col) == (4, 11)
    prompts = node["prompt"]
    assert [(p.line, p.col) for p in prompts.item_pos] == [(5, 14), (5, 18)]


def test_duplicate_keys_are_reported_with_first_definition_even_when_int_and_string():
    _, problems = load_yaml('options:\n  1: a\n  "1": b\n', "m.yaml")
    assert [str(p) for p in problems] == ["m.yaml:3:3: duplicate key '1' (first defined at line 2)"]


def test_yaml_syntax_error_has_position():
    with pytest.raises(LoadError) as err:
        load_yaml("a: [1, 2\nb: 3\n", "bad.yaml")
    assert str(err.value.problem.pos) == "bad.yaml:2:2"
    assert "line 1, column 4" in err.value.problem.message


@pytest.mark.parametrize(
    ("src", "env", "expected"),
    [
        ("tier == 'vip'", {"tier": "vip"}, True),
        ("tier == 'vip'", {}, False),
        ("n + 1", {"n": "41"}, 42),
        ("'a' + 1", {}, "a1"),
        ("startswith(caller, '010') and len(caller) == 11", {"caller": "01012345678"}, True),
        ("not (x in ['1', '2'])", {"x": "3"}, True),
        ("x not in ['1', '2']", {"x": "2"}, False),
        ("balance >= 100000", {"balance": 45200}, False),
        ("(tier == 'gold') * 5", {"tier": "gold"}, 5),
        ("default(name, 'guest')", {"name": ""}, "guest"),
        ("substr(caller, 0, 3)", {"caller": "01099998888"}, "010"),
        ("10 / 4", {}, 2.5),
        ("-x + 2", {"x": 5}, -3),
        ("matches(acct, '[0-9]{8}')", {"acct": "12345678"}, True),
        ("now_hour < 9 or now_hour >= 18", {"now_hour": 20}, True),
        ("missing == null", {}, True),
    ],
)
def test_expression_values(src, env, expected):
    assert parse(src).evaluate(env) == expected


@pytest.mark.parametrize(
    ("src", "message"),
    [
        ("a ==", "unexpected end of expression"),
        ("__import__('os')", "unknown function '__import__'"),
        ("a.b", "unexpected character '.'"),
        ("len(a, b)", "len() takes 1 argument(s), got 2"),
        ("(a", "expected ')'"),
        ("", "empty expression"),
    ],
)
def test_expression_syntax_errors(src, message):
    with pytest.raises(ExprError) as err:
        parse(src)
    assert message in str(err.value)


def test_runtime_type_errors_raise_expr_error_not_python_errors():
    with pytest.raises(ExprError):
        parse("x - 1").evaluate({"x": "abc"})
    with pytest.raises(ExprError):
        parse("1 / 0").evaluate({})


def test_variables_are_listed_for_the_checker():
    assert parse("a == 1 and len(b) > c").variables() == {"a", "b", "c"}


@given(st.text(max_size=40))
def test_parser_never_raises_anything_but_expr_error(src):
    try:
        e = parse(src)
    except ExprError:
        return
    try:
        e.evaluate({})
    except ExprError:
        pass
    assert isinstance(expressions.to_text(src), str)
