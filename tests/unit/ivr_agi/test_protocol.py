from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.agi.protocol import (
    AgiError,
    AgiHangup,
    AgiInvalidCommand,
    AgiProtocolError,
    AgiUsageError,
    ResponseParser,
    call_info_from_headers,
    check_result,
    format_command,
    parse_response_line,
    parse_script,
    quote,
    validate_digits,
)
from ivr.channel import ChannelError, ChannelHungUp
from tests.protocol.agi.fake_asterisk import parse_args


@pytest.mark.parametrize(
    "line, code, result, data, endpos, extra",
    [
        ("200 result=0\n", 200, "0", None, None, {}),
        ("200 result=1 (01012345678)\n", 200, "1", "01012345678", None, {}),
        ("200 result=49 endpos=2400\n", 200, "49", None, 2400, {}),
        ("200 result= (timeout)\n", 200, "", "timeout", None, {}),
        ("200 result=12 (timeout)\n", 200, "12", "timeout", None, {}),
        ("200 result=-1 endpos=0\n", 200, "-1", None, 0, {}),
        ("200 result=0 (dtmf) endpos=1234\n", 200, "0", "dtmf", 1234, {}),
        ("200 result=1 (a (b) c) endpos=5)\n", 200, "1", "a (b) c) endpos=5", None, {}),
        ("200 result=1 (홍길동)\n", 200, "1", "홍길동", None, {}),
        ("510 Invalid or unknown command\n", 510, "", None, None, {"message": "Invalid or unknown command"}),
    ],
)
def test_parse_response_line(line, code, result, data, endpos, extra):
    r = parse_response_line(line)
    assert (r.code, r.result, r.data, r.endpos, r.extra) == (code, result, data, endpos, extra)
    assert r.raw == line.rstrip("\n")


def test_digit_helper():
    assert parse_response_line("200 result=49 endpos=2400").digit == "1"
    assert parse_response_line("200 result=35").digit == "#"
    assert parse_response_line("200 result=42").digit == "*"
    assert parse_response_line("200 result=0").digit == ""
    assert parse_response_line("200 result=-1 endpos=0").digit == ""
    with pytest.raises(AgiProtocolError):
        _ = parse_response_line("200 result=65").digit  # 'A' is not DTMF we accept
    assert parse_response_line("200 result= (timeout)").timed_out


@pytest.mark.parametrize("line", ["hello", "20 result=0", "200 foo=1", "200 result=1 (unclosed", "", "HANGUP now"])
def test_garbage_is_a_protocol_error(line):
    with pytest.raises(AgiProtocolError):
        parse_response_line(line)
    with pytest.raises(AgiProtocolError):
        ResponseParser().feed(line + "\n")


def test_parser_hangup_notice_is_not_an_answer():
    p = ResponseParser()
    assert p.feed("HANGUP\n") is None
    assert p.hung_up
    r = p.feed("511 Command Not Permitted on a dead channel or intercept routine\n")
    assert r.code == 511 and r.hangup_notice
    r2 = p.feed("200 result=1 (0212345678)\n")
    assert r2.data == "0212345678" and not r2.hangup_notice and p.hung_up


def test_parser_provisional_100_and_usage_block(captures_dir):
    p = ResponseParser()
    assert p.feed("100 result=0 Trying...\n") is None
    assert p.feed("200 result=0\n").result == "0"
    record = json.loads((captures_dir / "agi-reference.jsonl").read_text().splitlines()[0])
    usage_lines = next(e["resp"] for e in record["exchanges"] if e["cmd"] == "GET DATA")
    results = [p.feed(line) for line in usage_lines]
    assert results[:-1] == [None] * (len(usage_lines) - 1)
    final = results[-1]
    assert final.code == 520 and final.message == "Invalid command syntax.  Proper usage follows:"
    with pytest.raises(AgiUsageError) as err:
        check_result(final, "GET DATA")
    assert err.value.usage.splitlines() == [
        "Stream the given <replaceable>file</replaceable>, and receive DTMF data.",
        "Returns the digits received from the channel at the other end.",
    ]
    assert p.feed("200 result=1\n").result == "1"  # back to normal after the block


def test_check_result_types():
    with pytest.raises(ChannelHungUp) as hung:
        check_result(parse_response_line("511 Command Not Permitted on a dead channel"), "GET DATA")
    assert isinstance(hung.value, AgiHangup) and isinstance(hung.value, AgiError)
    with pytest.raises(AgiInvalidCommand):
        check_result(parse_response_line("510 Invalid or unknown command"), "BOGUS")
    with pytest.raises(AgiError) as other:
        check_result(parse_response_line("503 Something"), "X")
    assert type(other.value) is AgiError and isinstance(other.value, ChannelError)
    ok = parse_response_line("200 result=1")
    assert check_result(ok, "NOOP") is ok


def test_format_command_quotes_every_argument():
    assert format_command("ANSWER") == "ANSWER\n"
    assert format_command("STREAM FILE", "hello-world", "") == 'STREAM FILE "hello-world" ""\n'
    assert format_command("GET DATA", "beep", 3000, 1) == 'GET DATA "beep" "3000" "1"\n'
    assert format_command("SET VARIABLE", "N", 'say "hi" \\o/') == 'SET VARIABLE "N" "say \\"hi\\" \\\\o/"\n'


@pytest.mark.parametrize("bad", ["a\nHANGUP", "a\rb", "nul\0", "\n"])
def test_format_command_refuses_line_breaks(bad):
    with pytest.raises(ValueError):
        format_command("SET VARIABLE", "X", bad)
    with pytest.raises(ValueError):
        quote(bad)


def test_format_command_refuses_bad_names_and_types():
    for name in ("", "NOOP\nHANGUP", 'X"Y', "GET  "):
        with pytest.raises(ValueError):
            format_command(name)
    with pytest.raises(TypeError):
        format_command("NOOP", 1.5)
    with pytest.raises(TypeError):
        format_command("NOOP", True)


@given(st.lists(st.text(alphabet=st.characters(blacklist_characters="\r\n\0", blacklist_categories=("Cs",))), max_size=5))
def test_quoted_arguments_reach_asterisk_unchanged(args):
    line = format_command("SET VARIABLE", *args)
    assert line.count("\n") == 1
    assert parse_args(line.rstrip("\n")) == ["SET", "VARIABLE", *args]


def test_validate_digits():
    assert validate_digits("0123456789*#") == "0123456789*#"
    assert validate_digits("") == ""
    for bad in ("12a", "1 2", "1\n", "١"):
        with pytest.raises(ValueError):
            validate_digits(bad)


def test_parse_script_and_call_info():
    assert parse_script("ivr?flow=main&lang=ko") == ("ivr", {"flow": "main", "lang": "ko"})
    assert parse_script("/ivr") == ("ivr", {})
    info = call_info_from_headers(
        {
            "agi_network_script": "ivr?flow=main&lang=ko",
            "agi_uniqueid": "1.2",
            "agi_channel": "SIP/a-1",
            "agi_callerid": "unknown",
            "agi_calleridname": "unknown",
            "agi_dnid": "1600",
            "agi_extension": "s",
            "agi_language": "ko",
            "agi_arg_1": "arg one",
            "agi_arg_2": "2",
            "agi_arg_4": "not contiguous",
        }
    )
    assert info.caller_num is None and info.caller_name is None
    assert info.dialed == "1600" and info.language == "ko"
    assert info.params == {"flow": "main", "lang": "ko"} and info.args == ("arg one", "2")
    classic = call_info_from_headers({"agi_request": "callcore-agi?flow=x", "agi_dnid": "unknown", "agi_extension": "100"})
    assert classic.params == {"flow": "x"} and classic.dialed == "100"
