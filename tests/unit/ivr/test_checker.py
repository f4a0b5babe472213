"""The checker on the shipped dialplans and on broken files (exact file:line:col)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ivr.checker import check_path
from ivr.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[3]
BROKEN = ROOT / "tests" / "fixtures" / "dialplans-broken"
SOUNDS = BROKEN / "sounds"


def test_shipped_dialplans_pass_with_no_warnings():
    result = check_path(ROOT / "dialplans")
    assert [str(p) for p in result.problems] == []
    assert set(result.flows) == {"main", "tech_support", "callback", "survey"}
    types = {n.type for f in result.flows.values() for n in f.nodes.values()}
    assert types >= {"play", "menu", "collect", "say", "set", "branch", "hours", "lookup", "language", "subflow",
                     "return", "queue", "callback", "voicemail", "survey", "hangup"}


def test_cli_check_passes_on_shipped_dialplans(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    assert cli_main(["dialplan", "check", "dialplans/"]) == 0
    assert "OK: 0 error(s)" in capsys.readouterr().out


EXPECTED = {
    "unknown_type.yaml": ["5:11: node 'hello': unknown node type 'plya' (did you mean 'play'?)"],
    "unknown_field.yaml": [
        "5:5: play 'hello': missing required field 'prompt'",
        "6:5: play 'hello': unknown field 'promt' (did you mean 'prompt'?) (allowed: description, label, next, prompt, type)",
    ],
    "undefined_target.yaml": [
        "8:12: menu 'main_menu': digit 1 goes to 'billing' which is not defined (did you mean 'billing_menu'?)",
        "11:3: hangup 'billing_menu' is unreachable from start node 'main_menu'",
    ],
    "duplicate_digit.yaml": ["10:7: duplicate key '1' (first defined at line 8)"],
    "unreachable.yaml": ["8:3: play 'orphan' is unreachable from start node 'hello'"],
    "no_wait_loop.yaml": [
        "4:3: loop that never waits for input: count → check → say_it → count; put a menu/collect in the loop or break it"
    ],
    "missing_sound.yaml": [
        "7:19: play 'hello': prompt: sound ko/welcome_ko_only not found in {sounds}/ko/ (any of .wav .gsm .ulaw .sln16 ...)",
        "12:13: hangup 'bye': prompt: sound en/goodbye not found in {sounds}/en/ (any of .wav .gsm .ulaw .sln16 ...)",
        "12:13: hangup 'bye': prompt: sound ko/goodbye not found in {sounds}/ko/ (any of .wav .gsm .ulaw .sln16 ...)",
    ],
    "bad_schedule.yaml": [
        "5:15: schedule 'office': timezone 'Asia/Seol' is not a known IANA zone like 'Asia/Seoul'",
        "7:16: schedule 'office': time range '18:00-09:00' ends before it starts; split a range across midnight "
        "into two days (e.g. '22:00-24:00' and next day '00:00-02:00')",
        "8:7: schedule 'office': unknown weekday 'sunday' (use mon, tue, wed, thu, fri, sat, sun)",
        "10:9: schedule 'office': cannot read holiday file 'holidays-missing.yaml': FileNotFoundError",
        "14:15: hours 'hours': schedule 'ofice' is not defined (did you mean 'office'?) (schedules: office)",
    ],
    "bad_expression.yaml": [
        "7:31: branch 'route': expression \"tier == 'vip' and\": unexpected end of expression",
        "9:30: branch 'route': expression \"__import__('os').system('id')\": unexpected character '.'",
    ],
    "bad_variable.yaml": [
        "7:10: collect 'ask': field 'var': variable name 'account-number' is invalid: use letters, digits and _ (not starting with a digit)",
        "13:7: set 'store': variable 'caller' is built in and cannot be assigned",
        "14:7: set 'store': variable name 'VAR;HANGUP' is invalid: use letters, digits and _ (not starting with a digit)",
    ],
    "yaml_syntax.yaml": [
        "7:9: YAML syntax error: while parsing a flow sequence expected ',' or ']', but got ':' (the construct started at line 6, column 13)"
    ],
    "unknown_subflow.yaml": ["6:11: subflow 'sub': flow 'ok_bse' is not defined (did you mean 'ok_base'?)"],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_broken_file_errors_with_exact_positions(name):
    path = BROKEN / name
    result = check_path(path, sounds_dir=SOUNDS)
    expected = [f"{path}:{line.format(sounds=SOUNDS)}" for line in EXPECTED[name]]
    assert [str(p) for p in result.errors] == expected
    assert not result.ok


def test_every_broken_fixture_is_covered():
    files = {p.name for p in BROKEN.glob("*.yaml")} - {"ok_base.yaml"}
    assert files == set(EXPECTED)


def test_cli_check_exits_non_zero_and_prints_file_line_col(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    rc = cli_main(["dialplan", "check", "tests/fixtures/dialplans-broken/undefined_target.yaml",
                   "--sounds", "tests/fixtures/dialplans-broken/sounds", "-q"])
    assert rc == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == ("tests/fixtures/dialplans-broken/undefined_target.yaml:8:12: menu 'main_menu': digit 1 goes to "
                      "'billing' which is not defined (did you mean 'billing_menu'?)")


def test_checking_a_directory_reports_every_broken_file(tmp_path):
    shutil.copytree(BROKEN, tmp_path / "plans")
    result = check_path(tmp_path / "plans")
    files = {Path(p.pos.file).name for p in result.errors}
    assert files == set(EXPECTED)


def test_missing_language_version_of_a_prompt_is_an_error(tmp_path):
    (tmp_path / "main.yaml").write_text(
        "languages: [ko, en]\nstart: a\nnodes:\n  a:\n    type: hangup\n    prompt: {ko: bye}\n", encoding="utf-8"
    )
    result = check_path(tmp_path, sounds_dir=SOUNDS)
    assert [str(p) for p in result.errors] == [f"{tmp_path}/main.yaml:6:13: hangup 'a': prompt has no 'en' version (flow languages: ko, en)"]


def test_strict_mode_fails_on_warnings(tmp_path, capsys):
    (tmp_path / "main.yaml").write_text(
        "languages: [ko]\nstart: a\nnodes:\n  a:\n    type: branch\n    conditions:\n      - {if: nobody_sets_this == 1, goto: b}\n"
        "    else: b\n  b:\n    type: hangup\n", encoding="utf-8"
    )
    assert cli_main(["dialplan", "check", str(tmp_path), "--no-sounds"]) == 0
    assert "variable 'nobody_sets_this' is read but never set" in capsys.readouterr().out
    assert cli_main(["dialplan", "check", str(tmp_path), "--no-sounds", "--strict"]) == 1


def test_subflow_recursion_is_an_error(tmp_path):
    (tmp_path / "a.yaml").write_text("start: s\nnodes:\n  s: {type: subflow, flow: b, next: h}\n  h: {type: hangup}\n")
    (tmp_path / "b.yaml").write_text("start: m\nnodes:\n  m: {type: menu, prompt: x, options: {'1': s}, on_fail: r}\n"
                                     "  s: {type: subflow, flow: a, next: r}\n  r: {type: return}\n")
    result = check_path(tmp_path, check_sounds=False)
    assert [p.message for p in result.errors] == ["subflow recursion: a → b → a"]
    assert str(result.errors[0].pos) == f"{tmp_path}/b.yaml:4:28"  # the call that closes the cycle


def test_expression_errors_point_inside_plain_and_quoted_scalars(tmp_path):
    (tmp_path / "main.yaml").write_text(
        'start: a\nnodes:\n  a: {type: set, vars: {x: 1 +* 2}, next: b}\n  b:\n    type: queue\n    queue: q\n    priority: "tier == "\n'
    )
    result = check_path(tmp_path, check_sounds=False)
    assert [str(p) for p in result.errors] == [
        f"{tmp_path}/main.yaml:3:31: set 'a': expression '1 +* 2': unexpected '*'",
        f"{tmp_path}/main.yaml:7:24: queue 'b': field 'priority': expression 'tier == ': unexpected end of expression",
    ]


def test_schedule_without_holiday_data_for_the_coming_12_months_is_a_warning(tmp_path):
    from datetime import date

    from ivr.checker import check_holiday_coverage
    from ivr.flow import parse_flow

    def flow(holidays: str) -> object:
        f, problems = parse_flow(
            "flow: x\nstart: h\nschedules:\n"
            f"  office: {{timezone: Asia/Seoul, weekly: {{mon-fri: '09:00-18:00'}}, {holidays}}}\n"
            "nodes:\n  h: {type: hangup}\n",
            "x.yaml",
        )
        assert [p for p in problems if p.severity == "error"] == []
        return f

    today = date(2026, 12, 2)
    listed = flow("holidays: [{date: 2027-10-03, name: 개천절}]")
    (w,) = check_holiday_coverage(listed, today)
    assert w.severity == "warning" and str(w.pos) == "x.yaml:4:11"
    assert "schedule 'office': holiday data ends 2027-10-03; the coming 12 months are not covered" in w.message
    assert "public_holidays: KR" in w.message
    (none,) = check_holiday_coverage(flow("holidays: []"), today)
    assert "schedule 'office': no holiday data" in none.message
    assert check_holiday_coverage(flow("holidays: [{date: 2027-12-25, name: X}]"), today) == []  # a year ahead
    assert check_holiday_coverage(flow("public_holidays: KR"), date(2031, 1, 1)) == []  # every year
