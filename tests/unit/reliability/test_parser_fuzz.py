"""Property/fuzz tests (issue 12): the AMI frame parser, the AGI response parser,
the dialplan loader and the expression language never crash on arbitrary input,
never hang (each example runs under hypothesis' deadline) and keep memory bounded."""

from __future__ import annotations

import tracemalloc

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cti.ami.protocol import AmiFrameParser
from ivr import expressions
from ivr.agi.protocol import AgiProtocolError, ResponseParser, parse_response_line
from ivr.flow import parse_flow

FUZZ = settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow])

# pieces that look like AMI so the fuzzer reaches the interesting paths
AMI_PIECES = st.sampled_from(
    [
        b"\r\n", b"\r\n\r\n", b"\r", b"\n", b": ", b"Event: Newchannel", b"Event: VarSet", b"Response: Success",
        b"ActionID: a1", b"Asterisk Call Manager/6.0.0\r\n", b"Channel: PJSIP/1001-1", b"\xff\xfe", "홍길동".encode(),
        b"X" * 300, b"EventList: Complete", b"Output: line",
    ]
)
AMI_STREAM = st.lists(st.one_of(AMI_PIECES, st.binary(max_size=64)), max_size=60)


@FUZZ
@given(pieces=AMI_STREAM, reads=st.integers(1, 97), slice_bytes=st.integers(1, 4096))
def test_ami_frame_parser_never_crashes_and_stays_bounded(pieces, reads, slice_bytes):
    max_frame = 512
    p = AmiFrameParser({"Newchannel"}, keep_action_ids={b"a1"}, max_frame_bytes=max_frame, max_headers=16)
    data = b"".join(pieces)
    for i in range(0, len(data), reads):
        p.feed(data[i : i + reads])
        while (frames := p.parse(slice_bytes)) is not None:
            for f in frames:
                assert all(isinstance(k, str) and isinstance(v, str) for k, v in f.items())
                assert len(f) <= 16
        # nothing complete is left behind: what is buffered is one incomplete frame under the cap (+ this read)
        assert p.backlog <= max_frame + reads + 4
    assert len(p.stats.dropped_by_type) <= 257


AGI_LINES = st.one_of(
    st.sampled_from(
        ["200 result=0", "200 result=49 endpos=1", "200 result= (timeout)", "HANGUP", "520-Invalid", "520 End of proper usage.",
         "510 Invalid or unknown command", "511 Command Not Permitted", "100 result=0 Trying...", "", "200", "200 result=1 (x"]
    ),
    st.text(max_size=80),
)


@FUZZ
@given(lines=st.lists(AGI_LINES, max_size=300))
def test_agi_response_parser_never_crashes_and_usage_blocks_are_bounded(lines):
    parser = ResponseParser()
    for line in lines:
        try:
            result = parser.feed(line + "\n")
        except AgiProtocolError:
            continue
        if result is not None:
            assert isinstance(result.code, int)
        if parser.in_usage_block:
            assert len(parser._usage) <= ResponseParser.MAX_USAGE_LINES
    for line in lines:
        try:
            parse_response_line(line)
        except AgiProtocolError:
            pass


YAML_PIECES = st.sampled_from(
    [
        "start: menu\n", "nodes:\n", "  menu:\n", "    type: menu\n", "    prompt: welcome\n", "    choices: {1: end}\n",
        "  end: {type: hangup}\n", "languages: [ko, en]\n", "flow: main\n", "&a [*a, *a]\n", "{", "}", "- ", ": ", "\t",
        "  when: caller == '1'\n", "    vars: {x: len(caller) > 3}\n", "schedules: {}\n", "!!python/object:os.system\n",
        "a: &x [1]\nb: *x\n", "'", '"', "#", "\n", "ㄱ",
    ]
)


@FUZZ
@given(pieces=st.lists(st.one_of(YAML_PIECES, st.text(max_size=20)), max_size=40))
def test_dialplan_loader_never_crashes(pieces):
    text = "".join(pieces)
    flow, problems = parse_flow(text, "main.yaml", read_include=lambda rel: "")
    assert flow is not None or problems  # unusable input always says why
    for problem in problems:
        assert str(problem)


def test_dialplan_loader_billion_laughs_is_bounded():
    """YAML alias expansion is the classic memory bomb: the loader must not build the expanded tree."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    lines.append("start: a8\nnodes: {}\n")
    tracemalloc.start()
    try:
        flow, problems = parse_flow("\n".join(lines), "main.yaml", read_include=lambda rel: "")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert problems  # not a valid flow
    assert peak < 64 * 1024 * 1024


EXPR_PIECES = st.sampled_from(
    ["caller", "digits", "1", "0", "-1", "9999999999", "'a'", '"ko"', "(", ")", "+", "-", "*", "/", "%", "==", "!=", "<", ">=",
     " and ", " or ", "not ", "len(", "substr(", "default(", ",", " in ", "[", "]", "true", "null", ".", "1e308", "홍"]
)


@FUZZ
@given(pieces=st.lists(st.one_of(EXPR_PIECES, st.text(max_size=8)), max_size=60),
       env=st.dictionaries(st.sampled_from(["caller", "digits"]), st.one_of(st.text(max_size=20), st.integers(), st.none())))
def test_expression_language_never_crashes_or_hangs(pieces, env):
    src = "".join(pieces)
    try:
        expr = expressions.parse(src)
    except expressions.ExprError:
        return
    try:
        value = expr.evaluate(env)
    except expressions.ExprError:
        return
    assert isinstance(expressions.to_text(value), str)
    assert len(expressions.to_text(value)) < 10_000_000


# inputs that crashed before issue 12 (RecursionError, ValueError, OverflowError): now clear errors
DEEP_EXPRESSIONS = ["(" * 5000 + "1" + ")" * 5000, "not " * 5000 + "1", "-" * 5000 + "1", "9" * 5000 + "*2",
                    "substr('abc', 1e308 * 10)", "[" * 3000 + "]" * 3000]


def test_hostile_expressions_get_an_expr_error_not_a_crash():
    for src in DEEP_EXPRESSIONS:
        try:
            expressions.parse(src).evaluate({})
        except expressions.ExprError:
            continue
        raise AssertionError(f"{src[:30]!r} was accepted")


def test_deeply_nested_yaml_is_a_load_problem_not_a_crash():
    for text in ["[" * 10000, "a: " + "{" * 5000]:
        flow, problems = parse_flow(text, "main.yaml", read_include=lambda rel: "")
        assert flow is None and problems
