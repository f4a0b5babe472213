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
