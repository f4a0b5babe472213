"""Action factories: exact Asterisk 20 headers, validation, CR/LF injection refused everywhere."""

from __future__ import annotations

import inspect

import pytest

from cti.ami import actions as a
from cti.ami.actions import Action, AmiValueError


def wire(action: Action) -> str:
    return action.to_bytes("id-1").decode()


def test_login_masks_the_secret_in_repr() -> None:
    action = a.login("callcore", "s3cr3t!")
    assert wire(action) == "Action: Login\r\nActionID: id-1\r\nUsername: callcore\r\nSecret: s3cr3t!\r\n\r\n"
    assert "s3cr3t" not in repr(action) and "s3cr3t" not in str(action)


def test_originate_to_dialplan_with_variables() -> None:
    action = a.originate(
        "Local/press1@sim-caller",
        context="ivr-in",
        exten="s",
        caller_id='"홍길동" <01012345678>',
        timeout_ms=15000,
        variables={"CALLCORE_ORIGIN": "click-to-call", "EMPTY": None},
        account="acme",
        channel_id="chan-1",
        other_channel_id="chan-2",
    )
    assert action.headers == (
        ("Channel", "Local/press1@sim-caller"),
        ("Context", "ivr-in"),
        ("Exten", "s"),
        ("Priority", "1"),
        ("Timeout", "15000"),
        ("CallerID", '"홍길동" <01012345678>'),
        ("Account", "acme"),
        ("Async", "true"),
        ("ChannelId", "chan-1"),
        ("OtherChannelId", "chan-2"),
        ("Variable", "CALLCORE_ORIGIN=click-to-call"),
        ("Variable", "EMPTY="),
    )
    assert wire(action).count("\r\nVariable: ") == 2
    assert action.complete_event is None


def test_originate_to_application_synchronous() -> None:
    action = a.originate("PJSIP/1001", application="Playback", data="hello-world", async_=False)
    assert action.get("Application") == "Playback" and action.get("Data") == "hello-world"
    assert action.get("Async") == "false" and action.get("Context") is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {},  # neither destination
        {"context": "c", "exten": "s", "application": "Playback"},  # both
        {"context": "c"},  # no exten
        {"exten": "s"},  # no context
        {"context": "c", "exten": "s", "data": "x"},  # data without application
        {"context": "c", "exten": "s", "variables": {"A=B": "1"}},  # '=' in a variable name
        {"context": "c", "exten": "s", "variables": {"": "1"}},
        {"context": "c", "exten": "s", "timeout_ms": -1},
    ],
)
def test_originate_rejects_inconsistent_arguments(kwargs: dict) -> None:
    with pytest.raises(AmiValueError):
        a.originate("Local/x@y", **kwargs)


def test_queue_and_recording_factories_have_documented_headers() -> None:
    assert a.queue_add("sales", "Local/1003@agents/n", member_name="Agent 1003", penalty=2, paused=True,
                       reason="training", state_interface="Custom:1003").headers == (
        ("Queue", "sales"), ("Interface", "Local/1003@agents/n"), ("Penalty", "2"), ("Paused", "true"),
        ("Reason", "training"), ("MemberName", "Agent 1003"), ("StateInterface", "Custom:1003"),
    )  # fmt: skip
    assert a.queue_remove("sales", "Local/1001@agents/n").headers == (
        ("Queue", "sales"), ("Interface", "Local/1001@agents/n"))  # fmt: skip
    assert a.queue_pause("Local/1001@agents/n", True, queue="sales", reason="lunch").headers == (
        ("Interface", "Local/1001@agents/n"), ("Paused", "true"), ("Queue", "sales"), ("Reason", "lunch"))  # fmt: skip
    assert a.queue_pause("Local/1001@agents/n", False).headers == (
        ("Interface", "Local/1001@agents/n"), ("Paused", "false"))  # fmt: skip
    assert a.queue_penalty("Local/1001@agents/n", 0, queue="sales").headers == (
        ("Interface", "Local/1001@agents/n"), ("Penalty", "0"), ("Queue", "sales"))  # fmt: skip
    assert a.mix_monitor("PJSIP/1-1", "/rec/c.wav", options="b", command="/bin/true").headers == (
        ("Channel", "PJSIP/1-1"), ("File", "/rec/c.wav"), ("options", "b"), ("Command", "/bin/true"))  # fmt: skip
    assert a.stop_mix_monitor("PJSIP/1-1", "0x1").headers == (("Channel", "PJSIP/1-1"), ("MixMonitorID", "0x1"))
    assert a.mix_monitor_mute("PJSIP/1-1", True).headers == (
        ("Channel", "PJSIP/1-1"), ("Direction", "both"), ("State", "1"))  # fmt: skip
    assert a.mix_monitor_mute("PJSIP/1-1", False, "read").get("State") == "0"


def test_call_control_factories() -> None:
    assert a.redirect("A", "ctx", "100", extra_channel="B").headers == (
        ("Channel", "A"), ("Context", "ctx"), ("Exten", "100"), ("Priority", "1"),
        ("ExtraChannel", "B"), ("ExtraContext", "ctx"), ("ExtraExten", "100"), ("ExtraPriority", "1"),
    )  # fmt: skip
    assert a.redirect("A", "ctx", "100").headers == (("Channel", "A"), ("Context", "ctx"), ("Exten", "100"), ("Priority", "1"))
    assert a.hangup("A", cause=16).headers == (("Channel", "A"), ("Cause", "16"))
    assert a.hangup("A").headers == (("Channel", "A"),)
    assert a.setvar("X", "1", channel="A").headers == (("Channel", "A"), ("Variable", "X"), ("Value", "1"))
    assert a.getvar("X").headers == (("Variable", "X"),)
    assert a.play_dtmf("A", "#", duration_ms=250).headers == (("Channel", "A"), ("Digit", "#"), ("Duration", "250"))
    assert a.atxfer("A", "2000", "agents").headers == (("Channel", "A"), ("Exten", "2000"), ("Context", "agents"))
    assert a.blind_transfer("A", "2000", "agents").headers == (("Channel", "A"), ("Context", "agents"), ("Exten", "2000"))
    assert a.command("core show uptime").headers == (("Command", "core show uptime"),)
    assert a.ping().name == "Ping" and a.logoff().name == "Logoff"


def test_list_actions_name_their_complete_event() -> None:
    assert a.queue_status().complete_event == "QueueStatusComplete"
    assert a.queue_status("sales", "Local/1001@agents/n").headers == (("Queue", "sales"), ("Member", "Local/1001@agents/n"))
    assert a.queue_summary("sales").complete_event == "QueueSummaryComplete"
    assert a.core_show_channels().complete_event == "CoreShowChannelsComplete"


@pytest.mark.parametrize(
    "call",
    [
        lambda: a.play_dtmf("A", "12"),
        lambda: a.play_dtmf("A", "x"),
        lambda: a.mix_monitor_mute("A", True, "sideways"),
        lambda: a.queue_penalty("A", -1),
        lambda: a.queue_pause("A", "yes"),  # type: ignore[arg-type]
        lambda: a.redirect("A", "c", "e", extra_context="d"),
        lambda: a.hangup(""),
        lambda: a.login("", "x"),
        lambda: a.command("  "),
    ],
)
def test_invalid_values_are_refused(call) -> None:
    with pytest.raises(AmiValueError):
        call()


# --- CR/LF injection: every string argument of every factory -----------------------------
VALID: dict[str, dict] = {
    "login": {"username": "u", "secret": "s"},
    "originate": {"channel": "Local/1@x", "context": "c", "exten": "s", "caller_id": "n", "account": "a",
                  "channel_id": "i", "other_channel_id": "o"},
    "redirect": {"channel": "A", "context": "c", "exten": "e", "extra_channel": "B", "extra_context": "c2",
                 "extra_exten": "e2"},
    "hangup": {"channel": "A"},
    "queue_add": {"queue": "q", "interface": "i", "member_name": "m", "reason": "r", "state_interface": "s"},
    "queue_remove": {"queue": "q", "interface": "i"},
    "queue_pause": {"interface": "i", "paused": True, "queue": "q", "reason": "r"},
    "queue_penalty": {"interface": "i", "penalty": 1, "queue": "q"},
    "mix_monitor": {"channel": "A", "file": "f", "options": "o", "command": "c"},
    "stop_mix_monitor": {"channel": "A", "mixmonitor_id": "m"},
    "mix_monitor_mute": {"channel": "A", "state": True},
    "setvar": {"variable": "v", "value": "x", "channel": "A"},
    "getvar": {"variable": "v", "channel": "A"},
    "queue_status": {"queue": "q", "member": "m"},
    "queue_summary": {"queue": "q"},
    "play_dtmf": {"channel": "A", "digit": "1"},
    "atxfer": {"channel": "A", "exten": "e", "context": "c"},
    "blind_transfer": {"channel": "A", "exten": "e", "context": "c"},
    "command": {"cmd": "core show uptime"},
}  # fmt: skip
APP_ORIGINATE = {"channel": "Local/1@x", "application": "Playback", "data": "d"}

CASES = [(name, arg) for name, kw in VALID.items() for arg, v in kw.items() if isinstance(v, str)]
CASES += [("originate_app", arg) for arg in APP_ORIGINATE]
CASES += [("originate_var_name", None), ("originate_var_value", None)]


def test_every_factory_is_covered() -> None:
    factories = {
        n for n, f in inspect.getmembers(a, inspect.isfunction) if f.__module__ == a.__name__ and not n.startswith("_")
    }
    assert factories - {"logoff", "ping", "core_show_channels"} == set(VALID)


@pytest.mark.parametrize("name,arg", CASES)
@pytest.mark.parametrize("evil", ["x\r\nAction: Hangup", "x\nChannel: all", "x\rY"])
def test_crlf_injection_is_refused_in_every_factory(name: str, arg: str | None, evil: str) -> None:
    if name == "originate_app":
        fn, kwargs = a.originate, dict(APP_ORIGINATE, **{arg: evil})
    elif name == "originate_var_name":
        fn, kwargs = a.originate, dict(VALID["originate"], variables={evil: "1"})
    elif name == "originate_var_value":
        fn, kwargs = a.originate, dict(VALID["originate"], variables={"V": evil})
    else:
        fn, kwargs = getattr(a, name), dict(VALID[name], **{arg: evil})
        fn(**VALID[name])  # the valid call works
    with pytest.raises(AmiValueError):
        fn(**kwargs)
