"""The emulator replays the captured scenarios; its AMI stream must match the capture's.

For each capture: same sequence of consumed event types, same header names (in order)
per event type, same linkage (normalised Uniqueid/Linkedid/Channel/DestChannel/Queue/
Interface/MemberName), and the same action responses.
"""

from __future__ import annotations

import asyncio
import json

from tests.pbxsim import Pbx

from .conftest import capture_config
from .helpers import (
    CAPTURES,
    assert_same_shapes,
    consumed,
    get,
    linkage,
    load_capture,
    names,
    per_channel_sequences,
    poll,
    responses,
    without,
    Normalizer,
)

# the command tour of agi-reference.jsonl line 1 (what the capture's AGI script sent)
AGI_TOUR = [
    "ANSWER",
    'VERBOSE "capture start" 1',
    "GET VARIABLE CALLERID(num)",
    'GET FULL VARIABLE "${CHANNEL(language)}"',
    'STREAM FILE hello-world ""',
    'STREAM FILE hello-world "0123456789*#"',
    "GET DATA beep 3000 1",
    'SET VARIABLE IVR_QUEUE "sales"',
    'SET VARIABLE IVR_NOTE "two words"',
    "CHANNEL STATUS",
    'SAY DIGITS 123 ""',
    "WAIT FOR DIGIT 200",
    "EXEC Playback beep",
    "NOOP hello",
    "BOGUS COMMAND",
    "GET DATA",
    'STREAM FILE does-not-exist ""',
]


def resp_shape(f):
    return [(k, v) for k, v in f if k not in ("Timestamp",)]


def assert_conforms(ours_frames, capture_name, *, same_linkage=True, floating: tuple[str, ...] = ()):
    """``floating``: event types whose position is a race inside Asterisk (the captures disagree
    among themselves, e.g. OriginateResponse vs the dialplan's first apps, or QueueMemberStatus which
    follows device state asynchronously). They must occur as often, with the same linkage, but their
    position is not compared."""
    ref = load_capture(capture_name)
    ours_all, ref_all = consumed(ours_frames), consumed(ref)
    assert sorted(names(ours_all)) == sorted(names(ref_all))
    n_ours, n_ref = Normalizer(), Normalizer()
    linkage(ours_all, n_ours), linkage(ref_all, n_ref)  # ordinals from the whole stream
    assert sorted(map(repr, linkage([f for f in ours_all if f[0][1] in floating], n_ours))) == sorted(
        map(repr, linkage([f for f in ref_all if f[0][1] in floating], n_ref))
    )
    ours_c, ref_c = without(ours_all, floating), without(ref_all, floating)
    assert names(ours_c) == names(ref_c)
    assert_same_shapes(ours_frames, ref)
    if same_linkage:
        assert linkage(ours_c) == linkage(ref_c)
    assert per_channel_sequences(ours_c) == per_channel_sequences(ref_c)


def agi_corrected(session: dict) -> list[tuple[str, list[str]]]:
    """A recorded session with the off-by-one after ``HANGUP`` removed (see the captures README)."""
    out, pending = [], None
    flat = []
    for ex in session["exchanges"]:
        flat.append((ex["cmd"], ex["resp"]))
    answers = [r for _, r in flat]
    if ["HANGUP\n"] in answers:
        i = answers.index(["HANGUP\n"])
        shifted = answers[:i] + answers[i + 1 :] + ([[session["after"]]] if session.get("after") else [])
        return [(c, r) for (c, _), r in zip(flat, shifted)]
    return flat


async def test_ivr_queue_agent(pbx_factory, ami_factory, agi_server):
    script, port = await agi_server(AGI_TOUR)
    # the '1' (pressed 1.5 s in) must land in the second 1 s prompt: a slower clock keeps that robust
    pbx: Pbx = await pbx_factory(agi_port=port, time_scale=0.1)
    pbx.add_member("sales", "Local/1001@agents/n", "Agent 1001")
    ami = await ami_factory(pbx.ami_port)
    assert ami.banner == "Asterisk Call Manager/9.0.0"
    await ami.login()
    await ami.action("QueueAdd", "qa-1", Queue="sales", Interface="Local/1001@agents/n", MemberName="Agent 1001")
    await ami.list_action("QueueStatus", "qs-1", "QueueStatusComplete")
    await ami.action(
        "Originate",
        "orig-1",
        Channel="Local/press1@sim-caller",
        Context="ivr-in",
        Exten="s",
        Priority="1",
        CallerID='"홍길동" <01012345678>',
        Async="true",
    )
    # the call ends when the caller ;1 half hangs up
    await ami.wait(lambda f: get(f, "Event") == "Hangup" and get(f, "Channel", "").startswith("Local/press1") and get(f, "Channel", "").endswith(";1"), 10)
    await ami.list_action("CoreShowChannels", "csc-1", "CoreShowChannelsComplete")
    await ami.list_action("QueueStatus", "qs-2", "QueueStatusComplete", Queue="sales")
    await ami.list_action("QueueSummary", "qsum-1", "QueueSummaryComplete")
    await ami.action("QueuePause", "qp-1", Queue="sales", Interface="Local/1001@agents/n", Paused="true", Reason="lunch")
    await ami.action("Ping", "ping-1")
    await ami.action("NoSuchAction", "bad-1")
    await ami.action("Logoff", "bye")
    await poll(lambda: ami.eof, 5, "socket closed after Logoff")

    assert_conforms(ami.frames, "ami-ivr-queue-agent.raw")
    ref = load_capture("ami-ivr-queue-agent.raw")
    assert [resp_shape(f) for f in responses(ami.frames)] == [resp_shape(f) for f in responses(ref)]
    # UTF-8 caller name intact on the wire
    assert "홍길동".encode() in ami.raw

    # the FastAGI side: same headers (names, order, values that do not depend on the run) and answers
    ref_session = json.loads((CAPTURES / "agi-reference.jsonl").read_text().splitlines()[0])
    ours = script.sessions[0]
    key = lambda line: line.split(":", 1)[0]  # noqa: E731
    assert [key(h) for h in ours["headers"]] == [key(h) for h in ref_session["headers"]]
    fixed = {"agi_network", "agi_network_script", "agi_type", "agi_version", "agi_callerid", "agi_calleridname",
             "agi_context", "agi_extension", "agi_priority", "agi_arg_1", "agi_arg_2", "agi_language"}
    assert [h for h in ours["headers"] if key(h) in fixed] == [h for h in ref_session["headers"] if key(h) in fixed]
    ours_ex = [(e["cmd"], [_mask(r) for r in e["resp"]]) for e in ours["exchanges"]]
    ref_ex = [(e["cmd"], [_mask(r) for r in e["resp"]]) for e in ref_session["exchanges"]]
    assert ours_ex == ref_ex


def _mask(line: str) -> str:
    import re

    return re.sub(r"endpos=\d+", "endpos=N", line) if "endpos=0" not in line else line


async def test_caller_hangup_in_ivr(pbx_factory, ami_factory, agi_server, tmp_path):
    script, port = await agi_server(
        ["ANSWER", 'STREAM FILE hello-world ""', "GET DATA beep 5000 4", "GET VARIABLE CALLERID(num)", "SET VARIABLE X 1", "NOOP done"]
    )
    cfg = capture_config(tmp_path, agi_port=port, time_scale=0.1)
    cfg.prompt_seconds["hello-world"] = 1.4  # the real hello-world: the caller hangs up 1 s into it
    pbx = await pbx_factory(cfg)
    ami = await ami_factory(pbx.ami_port)
    await ami.login()
    await ami.action(
        "Originate", "orig-2", Channel="Local/hangupearly@sim-caller", Context="ivr-hangup", Exten="s",
        Priority="1", CallerID='"Kim Cheolsu" <0212345678>', Async="true",
    )
    await ami.event("Hangup", 10, Channel=pbx.all_channels[0].name)
    await ami.action("Logoff", "bye")
    assert_conforms(ami.frames, "ami-caller-hangup-in-ivr.raw")

    ref = [json.loads(line) for line in (CAPTURES / "agi-caller-hangup.jsonl").read_text().splitlines()][0]
    ours = script.sessions[0]
    assert [h.split(":")[0] for h in ours["headers"]] == [h.split(":")[0] for h in ref["headers"]]
    assert "agi_network_script: ivr?flow=main&lang=ko\n" in ours["headers"]
    # the recording was off by one after HANGUP; ours is read correctly (HANGUP is a notice)
    want = [(c, [_mask(x) for x in r]) for c, r in agi_corrected(ref)]
    got = [(e["cmd"], [_mask(x) for x in e["resp"]]) for e in ours["exchanges"]]
    assert got == want
    assert ours["notices"] == 1 and ours["notice_before"] == "GET DATA beep 5000 4"
    call = pbx.all_channels[0]
    assert call.vars["AGISTATUS"] == "HANGUP" and call.vars["X"] == "1"


async def test_queue_abandon(pbx_factory, ami_factory):
    pbx = await pbx_factory()
    ami = await ami_factory(pbx.ami_port)
    await ami.login()
    await ami.action("QueueAdd", "qa-b", Queue="sales", Interface="Local/1001@agents-noanswer/n", MemberName="Agent 1001")
    await ami.action(
        "Originate", "orig-b", Channel="Local/wait6@sim-caller", Context="queue-direct", Exten="sales",
        Priority="1", CallerID='"이영희" <01099998888>', Async="true",
    )
    await ami.event("DialBegin", 5, DialString="Local/1001@agents-noanswer/n")
    status = await ami.list_action("QueueStatus", "qs-b", "QueueStatusComplete", Queue="sales")
    assert [get(f, "Event") for f in status if get(f, "Event")] == ["QueueParams", "QueueMember", "QueueEntry", "QueueStatusComplete"]
    await ami.action("QueueRemove", "qr-b", Queue="sales", Interface="Local/1001@agents-noanswer/n")
    await ami.event("QueueCallerAbandon", 10)
    await ami.wait(lambda f: get(f, "Event") == "Hangup" and get(f, "Channel", "").startswith("Local/wait6") and get(f, "Channel", "").endswith(";1"), 5)
    await ami.action("Logoff", "bye")
    assert_conforms(ami.frames, "ami-queue-abandon.raw", floating=("OriginateResponse",))
    ab = next(f for f in ami.frames if get(f, "Event") == "QueueCallerAbandon")
    assert get(ab, "Position") == "1" and get(ab, "OriginalPosition") == "1" and 5 <= int(get(ab, "HoldTime")) <= 7


async def test_queue_leastrecent_answer(pbx_factory, ami_factory):
    pbx = await pbx_factory()
    ami = await ami_factory(pbx.ami_port)
    await ami.login()
    await ami.action("QueueAdd", "qa-c1", Queue="support", Interface="Local/1001@agents-noanswer/n", MemberName="Agent 1001")
    await ami.action("QueueAdd", "qa-c2", Queue="support", Interface="Local/1002@agents/n", MemberName="Agent 1002")
    await ami.action(
        "Originate", "orig-c", Channel="Local/wait30@sim-caller", Context="queue-direct", Exten="support",
        Priority="1", CallerID='"Park" <01055554444>', Async="true",
    )
    await ami.wait(lambda f: get(f, "Event") == "QueueMemberStatus" and get(f, "Status") == "1", 10)
    await ami.wait(lambda f: get(f, "Event") == "Hangup" and get(f, "Channel", "").startswith("Local/wait30") and get(f, "Channel", "").endswith(";1"), 5)
    await ami.action("QueueRemove", "qr-c1", Queue="support", Interface="Local/1001@agents-noanswer/n")
    await ami.action("QueueRemove", "qr-c2", Queue="support", Interface="Local/1002@agents/n")
    await ami.action("Logoff", "bye")
    # in this capture AgentComplete overtook the agent ;2 Hangup (it follows it in the others)
    assert_conforms(ami.frames, "ami-queue-leastrecent-answer.raw", floating=("QueueMemberStatus", "Hangup"))
    called = [get(f, "MemberName") for f in ami.frames if get(f, "Event") == "AgentCalled"]
    assert called == ["Agent 1002"]


async def test_click_to_call(pbx_factory, ami_factory):
    pbx = await pbx_factory()
    ami = await ami_factory(pbx.ami_port)
    await ami.login()
    resp = await ami.action(
        "Originate", "orig-e", timeout=10, Channel="Local/1001@agents-long", Context="sim-caller", Exten="wait6",
        Priority="1", CallerID='"Click to call" <01012345678>', Timeout="15000",
        Variable="CALLCORE_ORIGIN=click-to-call",
    )
    assert get(resp, "Message") == "Originate successfully queued"
    await ami.wait(lambda f: get(f, "Event") == "Hangup" and get(f, "Channel", "").endswith(";2"), 10)
    await ami.action("Logoff", "bye")
    assert_conforms(ami.frames, "ami-click-to-call.raw")
    # the synchronous Originate answers only once the first leg is up (no OriginateResponse)
    assert not [f for f in ami.frames if get(f, "Event") == "OriginateResponse"]
    varsets = [f for f in ami.frames if get(f, "Event") == "VarSet" and get(f, "Variable") == "CALLCORE_ORIGIN"]
    assert len(varsets) == 2 and {get(f, "Value") for f in varsets} == {"click-to-call"}


async def test_action_errors(pbx_factory, ami_factory):
    pbx = await pbx_factory()
    ami = await ami_factory(pbx.ami_port)
    await ami.login()
    await ami.action("QueueAdd", "qa-d1", Queue="sales", Interface="Local/1001@agents-long/n", MemberName="Agent 1001")
    await ami.action("QueueAdd", "qa-d2", Queue="support", Interface="Local/1002@agents/n", MemberName="Agent 1002")
    await ami.action(
        "Originate", "orig-d", Channel="Local/wait30@sim-caller", Context="queue-direct", Exten="sales",
        Priority="1", CallerID='"최민수" <01077776666>', Async="true",
    )
    await ami.wait(lambda f: get(f, "Event") == "BridgeEnter" and get(f, "BridgeNumChannels") == "2", 10)
    await ami.list_action("CoreShowChannels", "csc-d", "CoreShowChannelsComplete")
    bogus = "Local/wait30@sim-caller-00000010;1"
    mute = await ami.action("MixMonitorMute", "mute-d", Channel=bogus, Direction="both", State="1")
    unmute = await ami.action("MixMonitorMute", "unmute-d", Channel=bogus, Direction="both", State="0")
    redir = await ami.action("Redirect", "redir-d", Channel=bogus, Context="transfer", Exten="support", Priority="1")
    await ami.action("QueueRemove", "qr-d1", Queue="sales", Interface="Local/1001@agents-long/n")
    await ami.action("QueueRemove", "qr-d2", Queue="support", Interface="Local/1002@agents/n")
    await ami.wait(lambda f: get(f, "Event") == "Hangup" and get(f, "Channel", "").startswith("Local/wait30") and get(f, "Channel", "").endswith(";1"), 10)
    await ami.action("Logoff", "bye")
    # here the caller's ;1 went Up before its ;2 (the other captures show ;2 first)
    assert_conforms(ami.frames, "ami-action-errors.raw", floating=("OriginateResponse", "QueueMemberStatus", "Newstate"))
    ref = {get(f, "ActionID"): f for f in responses(load_capture("ami-action-errors.raw"))}
    for got in (mute, unmute, redir):
        assert got == ref[get(got, "ActionID")]
    assert get(redir, "Message") == f"Channel does not exist: {bogus}"


async def test_resync_snapshot(pbx_factory, ami_factory):
    pbx = await pbx_factory()
    ami = await ami_factory(pbx.ami_port)
    await ami.login()
    await ami.action("QueueAdd", "qa-r1", Queue="sales", Interface="Local/1001@agents-long/n", MemberName="Agent 1001", StateInterface="Local/1001@agents-long")
    await ami.action("QueueAdd", "qa-r2", Queue="sales", Interface="Local/1003@agents-noanswer/n", MemberName="Agent 1003", Paused="true", Reason="training")
    await ami.action(
        "Originate", "orig-r", Channel="Local/wait30@sim-caller", Context="queue-direct", Exten="sales",
        Priority="1", CallerID='"정수진" <01033332222>', Async="true",
    )
    await ami.event("AgentConnect", 5)
    await ami.event("QueueMemberStatus", 5, Status="2")
    await ami.action(
        "Originate", "orig-r2", Channel="Local/wait30@sim-caller", Context="queue-direct", Exten="support",
        Priority="1", CallerID='"Waiting Caller" <01044441111>', Async="true",
    )
    await ami.event("QueueCallerJoin", 5, Queue="support")
    await pbx.sleep(5)
    chans = await ami.list_action("CoreShowChannels", "resync-channels", "CoreShowChannelsComplete")
    queues = await ami.list_action("QueueStatus", "resync-queues", "QueueStatusComplete")
    summary = await ami.list_action("QueueSummary", "resync-summary", "QueueSummaryComplete")
    await ami.wait(lambda f: get(f, "Event") == "Hangup" and get(f, "CallerIDName") == "정수진" and get(f, "Channel", "").startswith("Local/wait30") and get(f, "Channel", "").endswith(";1"), 10)
    await ami.action("QueueRemove", "qr-r1", Queue="sales", Interface="Local/1001@agents-long/n")
    await ami.action("QueueRemove", "qr-r2", Queue="sales", Interface="Local/1003@agents-noanswer/n")
    await ami.action("Logoff", "bye")
    assert_conforms(ami.frames, "ami-resync-snapshot.raw", floating=("OriginateResponse", "QueueMemberStatus"))
    # what a resync sees: bridged channels carry the BridgeId, the queue caller its Application
    by_chan = {get(f, "Channel"): f for f in chans if get(f, "Event") == "CoreShowChannel"}
    assert len(by_chan) == 6
    bridged = [f for f in by_chan.values() if get(f, "BridgeId")]
    assert len(bridged) == 2 and len({get(f, "BridgeId") for f in bridged}) == 1
    waiting = [f for f in by_chan.values() if get(f, "Application") == "Queue" and not get(f, "BridgeId")]
    assert [get(f, "ApplicationData") for f in waiting] == ["support,t,,,60"]
    entry = next(f for f in queues if get(f, "Event") == "QueueEntry")
    assert get(entry, "Queue") == "support" and int(get(entry, "Wait")) >= 5
    members = {get(f, "Name"): f for f in queues if get(f, "Event") == "QueueMember"}
    assert get(members["Agent 1001"], "InCall") == "1" and get(members["Agent 1001"], "Status") == "2"
    assert get(members["Agent 1003"], "Paused") == "1" and get(members["Agent 1003"], "PausedReason") == "training"
    sums = {get(f, "Queue"): f for f in summary if get(f, "Event") == "QueueSummary"}
    assert get(sums["support"], "Callers") == "1" and get(sums["sales"], "LoggedIn") == "2"
    assert get(sums["sales"], "Available") == "0"


async def test_asterisk_restart_and_after(pbx_factory, ami_factory):
    pbx = await pbx_factory()
    pbx.add_member("sales", "Local/1001@agents/n", "Agent 1001")
    ami = await ami_factory(pbx.ami_port)
    await ami.login()
    await ami.action(
        "Originate", "orig-x", Channel="Local/wait30@sim-caller", Context="queue-direct", Exten="support",
        Priority="1", CallerID='"Restart Victim" <01011112222>', Async="true",
    )
    await ami.event("QueueCallerJoin", 5)
    await pbx.sleep(3)
    await pbx.shutdown(restart=True)
    await poll(lambda: ami.eof, 5, "AMI socket closed by the restart")
    assert get(ami.frames[-1], "Event") == "Shutdown"
    assert_conforms(ami.frames, "ami-asterisk-restart.raw", floating=("OriginateResponse",))
    hangups = [f for f in ami.frames if get(f, "Event") == "Hangup"]
    assert {get(f, "Cause") for f in hangups} == {"0"}

    # a new login after the restart: small Uptime, no dynamic members any more
    after = await ami_factory(pbx.ami_port)
    await after.login()
    qs = await after.list_action("QueueStatus", "qs-after", "QueueStatusComplete")
    await after.action("Logoff", "bye")
    ref = load_capture("ami-after-restart.raw")
    assert names(consumed(after.frames)) == names(consumed(ref))
    assert_same_shapes(after.frames, ref)
    booted = next(f for f in after.frames if get(f, "Event") == "FullyBooted")
    assert int(get(booted, "Uptime")) < 10
    assert not [f for f in qs if get(f, "Event") == "QueueMember"]


async def test_bad_login(pbx_factory, ami_factory):
    pbx = await pbx_factory()
    ami = await ami_factory(pbx.ami_port)
    await ami.action("Login", "bad-login", Username="callcore", Secret="wrong")
    ami.send("Ping", ActionID="ping-after-bad-login")
    await asyncio.sleep(0.2)
    # byte for byte what Asterisk sent, then silence
    assert ami.raw == (CAPTURES / "ami-bad-login.raw").read_bytes()


def test_comparison_tells_scenarios_apart():
    """The conformance check is not vacuous: two different captured scenarios do not pass it."""
    import pytest

    abandon = load_capture("ami-queue-abandon.raw")
    with pytest.raises(AssertionError):
        assert_conforms(abandon, "ami-ivr-queue-agent.raw")
    with pytest.raises(AssertionError):
        assert_conforms(load_capture("ami-queue-leastrecent-answer.raw"), "ami-resync-snapshot.raw",
                        floating=("OriginateResponse", "QueueMemberStatus"))
    # …while a capture trivially conforms to itself
    assert_conforms(abandon, "ami-queue-abandon.raw")


async def test_timestampevents_header_as_asterisk_writes_it(pbx_factory, ami_factory):
    """manager.conf ``timestampevents = yes`` (asterisk-config/manager.conf): every event gets
    ``Timestamp: <sec>.<usec>`` right after ``Privilege`` (manager.c ``"Timestamp: %ld.%06lu"``;
    the captures show that format on Ping's answer). The rest of the stream is unchanged: it still
    conforms to the capture, and the typed events carry the value (cti/ami/events.py)."""
    import re

    from cti.ami.events import translate

    (ping,) = [f for f in responses(load_capture("ami-ivr-queue-agent.raw")) if get(f, "Ping") == "Pong"]
    shape = re.compile(r"^[0-9]+\.[0-9]{6}$")
    assert shape.match(get(ping, "Timestamp"))  # the format, as captured
    pbx = await pbx_factory(timestampevents=True)
    ami = await ami_factory(pbx.ami_port)
    await ami.login()
    await ami.action(
        "Originate", "orig-e", timeout=10, Channel="Local/1001@agents-long", Context="sim-caller", Exten="wait6",
        Priority="1", CallerID='"Click to call" <01012345678>', Timeout="15000",
        Variable="CALLCORE_ORIGIN=click-to-call",
    )
    await ami.wait(lambda f: get(f, "Event") == "Hangup" and get(f, "Channel", "").endswith(";2"), 10)
    await ami.action("Logoff", "bye")
    # FullyBooted at login is astman_append'ed by action_login (no Timestamp); every manager_event has one
    evs = [f for f in ami.frames if f and f[0][0] == "Event" and get(f, "Privilege") and get(f, "Event") != "FullyBooted"]
    assert evs and all(f[2][0] == "Timestamp" and shape.match(f[2][1]) for f in evs), evs[:2]
    stamps = [float(f[2][1]) for f in evs]
    assert stamps == sorted(stamps) and abs(stamps[-1] - pbx.now()) < 60
    assert_conforms([[h for h in f if h[0] != "Timestamp"] for f in ami.frames], "ami-click-to-call.raw")
    typed = [translate(dict(f)) for f in evs]
    assert all(e.timestamp == float(get(f, "Timestamp")) for e, f in zip(typed, evs) if e is not None)
    captured = [translate(dict(f)) for f in consumed(load_capture("ami-click-to-call.raw"))]
    assert captured and all(e.timestamp is None for e in captured if e is not None)  # timestampevents = no there
