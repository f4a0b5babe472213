"""Policy precedence (most protective wins) and the checker's file:line:col errors."""

from __future__ import annotations

from datetime import datetime, timezone

from recording.checker import DEFAULT_POLICY_FILE, check_file, parse_policy
from recording.cli import cmd_check
from recording.policy import CallFacts, decide

POLICY = """\
defaults:
  action: record
  retention_days: 30
rules:
  - name: sales-year
    match: {queue: [sales]}
    retention_days: 365
  - name: vip-stereo
    match: {called: ["0800*"]}
    action: record
    channels: stereo
    start: queue_entry
    retention_days: 180
  - name: night-off
    match: {time: ["22:00-06:00"]}
    action: dont_record
  - name: hr-never
    match: {agent: ["1099"]}
    action: never
  - name: weekend-hold
    match: {days: [sat, sun], queue: [sales]}
    legal_hold: true
"""


def policy():
    r = parse_policy(POLICY, "p.yaml")
    assert r.ok, r.problems
    return r.policy


def at(h: int, day: int = 2) -> datetime:  # 2026-12-02 is a Wednesday
    return datetime(2026, 12, day, h, 0, tzinfo=timezone.utc)


def test_longest_retention_wins_and_options_combine():
    d = decide(policy(), CallFacts(at(10), queues=("sales",), called="08001234", agents=("1001",), outcome="answered"))
    assert d.record and d.retention_days == 365
    assert d.channels == "stereo" and d.start == "queue_entry"
    assert d.rules == ("sales-year", "vip-stereo")
    assert not d.legal_hold


def test_record_beats_dont_record_but_never_beats_everything():
    night_vip = CallFacts(at(23), called="08001234", outcome="answered")
    d = decide(policy(), night_vip)
    assert d.record and "vip-stereo" in d.reason  # record beats dont_record
    night = decide(policy(), CallFacts(at(23), called="0212345678", outcome="answered"))
    assert not night.record and "night-off" in night.reason
    hr = decide(policy(), CallFacts(at(10), queues=("sales",), called="08001234", agents=("1099",), outcome="answered"))
    assert not hr.record and "hr-never" in hr.reason and hr.retention_days == 0


def test_entry_decision_cannot_forbid_on_facts_not_known_yet():
    facts = CallFacts(at(10), queues=("sales",))
    assert decide(policy(), facts, final=False).record  # agent unknown: 'never' not applied yet
    facts.agents = ("1099",)
    assert not decide(policy(), facts, final=True).record


def test_weekday_rule_and_defaults():
    sat = decide(policy(), CallFacts(at(10, day=5), queues=("sales",), outcome="answered"))
    assert sat.legal_hold and sat.retention_days == 365
    plain = decide(policy(), CallFacts(at(10), queues=("support",), outcome="answered"))
    assert plain.record and plain.retention_days == 30 and plain.rules == ()


def test_shipped_default_policy_is_valid_and_drops_unanswered_calls():
    r = check_file(DEFAULT_POLICY_FILE)
    assert r.ok, r.problems
    assert not decide(r.policy, CallFacts(at(10), queues=("support",), outcome="abandoned")).record
    assert decide(r.policy, CallFacts(at(10), queues=("sales",), outcome="answered")).qa_sampling


BROKEN = """\
defaults:
  retention_days: -3
rules:
  - name: a
    match:
      queue: sales
      direction: [inbund]
      time: "9:00-18:00"
    action: recrod
  - name: a
    match: {agnt: "1001"}
    action: never
  - match: {queue: [x]}
"""


def test_checker_reports_file_line_col(tmp_path):
    path = tmp_path / "recording-policies.yaml"
    path.write_text(BROKEN)
    lines: list[str] = []
    assert cmd_check(type("A", (), {"file": str(path)})(), lines.append) == 1
    f = str(path)
    assert lines[:-1] == [
        f"{f}:2:19: defaults: retention_days must be a whole number of days between 0 and 36500, not -3",
        f"{f}:7:19: rule 'a': direction 'inbund' is not one of inbound, outbound, click-to-call, callback",
        f"{f}:8:13: rule 'a': time '9:00-18:00' must look like 09:00-18:00 (24 h, end exclusive)",
        f"{f}:9:13: rule 'a': action must be one of record, dont_record, never, not 'recrod'",
        f"{f}:10:11: rule 'a': duplicate rule name (first at line 4)",
        f"{f}:11:13: rule 'a' match: unknown field 'agnt' (did you mean 'agent'?)",
        f"{f}:13:5: rule #3: every rule needs a 'name'",
        f"{f}:13:5: rule #3: the rule does nothing (give an action or an option such as retention_days)",
    ]


def test_checker_yaml_syntax_and_duplicate_keys():
    r = parse_policy("rules:\n  - name: a\n    name: b\n    action: record\n", "p.yaml")
    assert [str(p) for p in r.problems] == ["p.yaml:3:5: duplicate key 'name' (first defined at line 2)"]
    r = parse_policy("rules: [\n", "p.yaml")
    assert not r.ok and str(r.problems[0]).startswith("p.yaml:2:1: YAML syntax error")


# ------------------------------------------------------------------ start: call, direction rules (issue 13)
CALL_START = """\
defaults: {action: record, start: agent_connect, retention_days: 30}
rules:
  - name: payment-line
    match: {called: ["15887000"]}
    start: call
  - name: billing-from-queue
    match: {queue: [billing]}
    start: queue_entry
  - name: outbound-off
    match: {direction: [outbound]}
    action: dont_record
  - name: click-to-call-kept
    match: {direction: [click-to-call]}
    action: record
    retention_days: 400
  - name: callbacks-never
    match: {direction: [callback], called: ["0101111*"]}
    action: never
"""


def call_policy():
    r = parse_policy(CALL_START, "c.yaml")
    assert r.ok, r.problems
    return r.policy


def test_start_call_beats_queue_entry_beats_agent_connect():
    p = call_policy()
    both = CallFacts(at(10), called="15887000", queues=("billing",), outcome="answered")
    assert decide(p, both).start == "call"
    assert decide(p, CallFacts(at(10), called="15881234", queues=("billing",), outcome="answered")).start == "queue_entry"
    assert decide(p, CallFacts(at(10), called="15881234", queues=("sales",), outcome="answered")).start == "agent_connect"


def test_call_stage_knows_direction_called_and_time_but_not_the_queue():
    p = call_policy()
    d = decide(p, CallFacts(at(10), called="15887000"), stage="call")
    assert d.record and d.start == "call" and d.rules == ("payment-line", "billing-from-queue")  # queue rule: maybe
    assert decide(p, CallFacts(at(10), called="15881234"), stage="call").start != "call"
    # a queue rule cannot say "don't" before the queue is known; at the end it can
    never_q = parse_policy("rules:\n  - name: q\n    match: {queue: [billing]}\n    action: never\n", "n.yaml").policy
    assert decide(never_q, CallFacts(at(10), called="15887000"), stage="call").record
    assert not decide(never_q, CallFacts(at(10), queues=("billing",)), stage="final").record
    try:
        decide(p, CallFacts(at(10)), stage="later")
    except ValueError as exc:
        assert "stage" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("unknown stage accepted")


def test_direction_rules_for_outbound_click_to_call_and_callback():
    p = call_policy()
    assert not decide(p, CallFacts(at(10), direction="outbound", outcome="answered")).record
    c2c = decide(p, CallFacts(at(10), direction="click-to-call", outcome="answered"))
    assert c2c.record and c2c.retention_days == 400 and c2c.rules == ("click-to-call-kept",)
    assert decide(p, CallFacts(at(10), direction="callback", called="01022223333", outcome="answered")).record
    cb = decide(p, CallFacts(at(10), direction="callback", called="01011112222", outcome="answered"))
    assert not cb.record and "callbacks-never" in cb.reason


def test_checker_refuses_start_call_on_facts_unknown_at_call_entry():
    text = "rules:\n  - name: bad\n    match: {queue: [billing], agent: ['1001']}\n    start: call\n"
    r = parse_policy(text, "b.yaml")
    assert not r.ok
    assert [str(p) for p in r.problems] == [
        "b.yaml:4:12: rule 'bad': start: call cannot depend on queue, agent (not known when the call enters the IVR); "
        "match on direction, called, time or days"]


def test_shipped_policy_records_the_payment_line_from_call_entry():
    r = check_file(DEFAULT_POLICY_FILE)
    d = decide(r.policy, CallFacts(at(10), called="15887000"), stage="call")
    assert d.record and d.start == "call"
    assert decide(r.policy, CallFacts(at(10), called="15881234"), stage="call").start == "agent_connect"
