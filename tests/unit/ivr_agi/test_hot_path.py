"""FastAGI per-command fast paths (issue 18, round three) give exactly what the general
code gives: the status-line fast path against the regex parser, the command-name cache
against validation, ``Step.as_dict`` against ``dataclasses.asdict``."""

from __future__ import annotations

import dataclasses

import pytest

from ivr.agi.protocol import _parse_response_regex, format_command, parse_response_line
from ivr.engine import Step

LINES = [
    "200 result=0", "200 result=1", "200 result=49", "200 result=-1", "200 result=0 endpos=12000",
    "200 result=49 endpos=4000", "200 result=-1 endpos=0", "200 result=007", "200 result=1\r\n", "200 result=1\n",
    "200 result=1  endpos=5", "200 result=1 endpos=5 extra=x", "200 result=1 endpos=-5",
    "200 result=1 endpos=٣", "200 result=٣", "200 result=-", "200 result=", "200 result= (timeout)",
    "200 result=1 (0212345678)", "200 result=12 (timeout)", "200 result=0 Trying...",
    "200 result=1 endpos=99999999999999999999999", "200 result=--1", "200 result=1e3",
]


@pytest.mark.parametrize("line", LINES)
def test_status_line_fast_path_matches_the_regex_parser(line: str) -> None:
    assert parse_response_line(line) == _parse_response_regex(line)


@pytest.mark.parametrize("line", ["200 result", "20 result=1", "", "x", "200 endpos=1 result=1 (", "200 result=1 (unbalanced",
                                  "200 result=1 endpos=", "200 result=1 endpos=5x"])
def test_lines_the_regex_parser_refuses_are_still_refused(line: str) -> None:
    with pytest.raises(Exception) as fast:
        parse_response_line(line)
    with pytest.raises(Exception) as slow:
        _parse_response_regex(line)
    assert type(fast.value) is type(slow.value)


def test_command_names_are_validated_every_time_and_cached_only_when_valid() -> None:
    assert format_command("ANSWER") == "ANSWER\n"
    assert format_command("stream file", "x", "12") == 'STREAM FILE "x" "12"\n'
    assert format_command("stream file", "y", "") == 'STREAM FILE "y" ""\n'  # cached name, new args
    assert format_command("SET VARIABLE", "A", 'b "c"') == 'SET VARIABLE "A" "b \\"c\\""\n'
    for _ in range(2):
        with pytest.raises(ValueError):
            format_command("ANSWER\nHANGUP")
    with pytest.raises(ValueError):
        format_command("SET VARIABLE", "A", "b\nHANGUP")


def test_step_as_dict_is_dataclasses_asdict() -> None:
    step = Step(3, "main", "menu", "menu", 120, duration_ms=5, input="1", result="ok", detail="d")
    assert step.as_dict() == dataclasses.asdict(step)
    assert list(step.as_dict()) == [f.name for f in dataclasses.fields(Step)]  # a new field must be added there too


# ---------------------------------------------------------------- round five (branch agi5)
@pytest.mark.parametrize("line", LINES)
def test_cached_results_are_what_the_parser_gives_every_time(line: str) -> None:
    first = parse_response_line(line)
    again = parse_response_line(line)  # a cache hit for "200 result=N"
    assert first == again == _parse_response_regex(line)
    assert not again.hangup_notice


def test_a_hangup_notice_never_marks_the_cached_result() -> None:
    from ivr.agi.protocol import ResponseParser

    parser = ResponseParser()
    assert parser.feed("200 result=1\n") is not None
    parser.feed("HANGUP\n")
    marked = parser.feed("200 result=1\n")
    assert marked is not None and marked.hangup_notice
    assert not parse_response_line("200 result=1").hangup_notice  # the cached one is untouched


def _quote_reference(value) -> str:  # the round-three implementation
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TypeError
    text = str(value)
    if "\r" in text or "\n" in text or "\0" in text:
        raise ValueError
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _Str(str):
    pass


@pytest.mark.parametrize("value", ["", "sales", 'say "hi" \\o/', "\\", '"', "홍길동", 0, -12, 300, _Str("sub"),
                                   "a\nb", "a\rb", "nul\0", True, 1.5, None, b"x"])
def test_quote_matches_the_reference(value) -> None:
    from ivr.agi.protocol import quote

    try:
        expected: object = _quote_reference(value)
    except Exception as exc:  # noqa: BLE001
        expected = type(exc)
    try:
        got: object = quote(value)
    except Exception as exc:  # noqa: BLE001
        got = type(exc)
    assert got == expected


def test_script_cache_hands_out_fresh_params() -> None:
    from ivr.agi.protocol import parse_script

    path, params = parse_script("ivr?flow=main&lang=ko")
    params["flow"] = "changed"
    assert parse_script("ivr?flow=main&lang=ko") == ("ivr", {"flow": "main", "lang": "ko"})
    assert parse_script("/ivr") == ("ivr", {})


HEADER_BLOCKS = [
    "agi_network: yes\nagi_network_script: ivr?flow=main\nagi_uniqueid: 42.1\nagi_accountcode: \nagi_calleridname: 홍길동",
    "agi_network_script: ivr\r\nagi_uniqueid: 1.2\r\r",
    "agi_a: x: y\nagi_b:no-space\nagi_c:: z",
    "agi_: empty key\nagi_x: 1",
    "agi_x:a: b\nagi_y: 2",
    "bogus line\nagi_x: 1\n",
    "AGI_X: 1\nagi_x-y: 2\nagi_ü: 3\nagi_x: \r\nagi_x: last wins",
    "agi_x: a\rb\nagi_y: \ufffd",
    "",
]


@pytest.mark.parametrize("block", HEADER_BLOCKS)
def test_header_fast_path_matches_the_line_parser(block: str, caplog) -> None:
    from ivr.agi.server import FastAgiServer, _parse_header_lines

    server = FastAgiServer("127.0.0.1", 0)
    expected, ignored = _parse_header_lines(block)
    caplog.set_level("WARNING")
    assert server._parse_header(block.encode()) == expected
    assert any("malformed header" in r.getMessage() for r in caplog.records) == bool(ignored)
