"""Behaviour of the emulator beyond the captured scenarios: strategies, paused members, ring-no-answer
retry, priorities, MixMonitor WAV files, Redirect transfers, the scripted-caller API, AMI actions.

These run the project's own dialplan (``asterisk-config/extensions.conf`` profile).
"""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import pytest

from tests.pbxsim import AgentBehavior, Hangup, Pbx, PbxConfig, Press, QueueConfig, Wait, load_manager_user

from .helpers import RawAmi, get, poll

REPO = Path(__file__).resolve().parents[3]
SCALE = 0.02


def cfg(tmp_path: Path, **kw) -> PbxConfig:
    base = dict(time_scale=SCALE, monitor_dir=tmp_path / "monitor")
    base.update(kw)
    return PbxConfig(**base)


class MiniIvr:
    """A FastAGI server playing a tiny IVR: welcome (1 → sales, 2 → billing), else hang up."""

    def __init__(self, priority: str | None = None) -> None:
        self.priority = priority
        self.sessions: list[dict] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        s: dict = {"headers": {}, "log": []}
        self.sessions.append(s)
        while (line := await reader.readline()) not in (b"\n", b""):
            k, _, v = line.decode().rstrip("\n").partition(": ")
            s["headers"][k] = v

        async def cmd(text: str) -> str:
            writer.write((text + "\n").encode())
            await writer.drain()
            while True:
                resp = (await reader.readline()).decode()
                if resp == "HANGUP\n":
                    s["log"].append(("notice", "HANGUP"))
                    continue
                s["log"].append((text, resp.strip()))
                return resp.strip()

        try:
            await cmd("ANSWER")
            r = await cmd('STREAM FILE welcome "12"')
            digit = {"200 result=49": "1", "200 result=50": "2"}.get(r.split(" endpos")[0])
            if digit is None:
                r = await cmd("GET DATA menu 2000 1")
                digit = r.split("=", 1)[1].split(" ")[0] or None
            if digit in ("1", "2"):
                await cmd(f'SET VARIABLE IVR_QUEUE "{"sales" if digit == "1" else "billing"}"')
                if self.priority:
                    await cmd(f'SET VARIABLE IVR_PRIORITY "{self.priority}"')
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        writer.close()


@pytest.fixture
async def ivr():
    servers = []

    async def make(priority: str | None = None) -> tuple[MiniIvr, int]:
        app = MiniIvr(priority)
        server = await asyncio.start_server(app.handle, "127.0.0.1", 0)
        servers.append(server)
        return app, server.sockets[0].getsockname()[1]

    yield make
    for s in servers:
        s.close()
        await s.wait_closed()


@pytest.fixture
async def pbx_of(tmp_path):
    made: list[Pbx] = []

    async def make(**kw) -> Pbx:
        p = await Pbx(cfg(tmp_path, **kw)).start()
        made.append(p)
        return p

    yield make
    for p in made:
        await p.close()
        assert not p.errors, p.errors


def names_of(pbx: Pbx, *types: str) -> list[tuple[str, str]]:
    return [(e.name, e.get("MemberName") or "") for e in pbx.events if e.name in types]


# ----------------------------------------------------------------------------- strategies
async def test_ringall_rings_every_free_member_skips_paused(pbx_of):
    pbx = await pbx_of()
    for ext in ("1001", "1002", "1003"):
        pbx.agent(ext, manual=True)
        pbx.add_member("sales", f"Local/{ext}@agents/n", f"Agent {ext}", paused=(ext == "1003"), reason="lunch")
    call = await pbx.dial("01012345678", "홍길동", context="queue-direct", exten="sales")
    await call.wait_for_queue("sales")
    await pbx.agent("1001").wait_ringing()
    await pbx.agent("1002").wait_ringing()
    assert not pbx.agent("1003").ringing
    await pbx.agent("1002").answer()
    assert await call.wait_for_agent() == "Agent 1002"
    called = {e["MemberName"] for e in call.events("AgentCalled")}
    assert called == {"Agent 1001", "Agent 1002"}
    cancelled = [e for e in call.events("DialEnd") if e.get("DialStatus") == "CANCEL"]
    assert [e["DestChannel"].split("-")[0] for e in cancelled] == ["Local/1001@agents"]
    await pbx.agent("1002").hangup()
    await call.wait_for_hangup()
    done = call.events("AgentComplete")
    assert [(e["MemberName"], e["Reason"]) for e in done] == [("Agent 1002", "agent")]
    # every agent leg carries the caller's Linkedid
    assert {e["DestLinkedid"] for e in call.events("AgentCalled")} == {call.linkedid}


async def test_leastrecent_picks_the_longest_idle_member(pbx_of):
    pbx = await pbx_of()
    for ext in ("1001", "1002"):
        pbx.agent(ext, answer_after=0.5, hangup_after=2)
    m1 = pbx.add_member("billing", "Local/1001@agents/n", "Agent 1001")
    m2 = pbx.add_member("billing", "Local/1002@agents/n", "Agent 1002")
    m1.last_call, m2.last_call = int(pbx.now()) - 100, int(pbx.now()) - 5000
    m1.wrapuptime = m2.wrapuptime = 0
    first = await pbx.dial("01000000001", context="queue-direct", exten="billing")
    assert await first.wait_for_agent() == "Agent 1002"
    await first.wait_for_hangup()
    second = await pbx.dial("01000000002", context="queue-direct", exten="billing")
    assert await second.wait_for_agent() == "Agent 1001"  # 1002 took the last call
    assert len(second.events("AgentCalled")) == 1


async def test_rrmemory_rotates_through_members(pbx_of):
    pbx = await pbx_of(queues=[QueueConfig("tech", "rrmemory", timeout=5, retry=1)])
    for ext in ("1001", "1002", "1003"):
        pbx.agent(ext, answer_after=0.2, hangup_after=1)
        pbx.add_member("tech", f"Local/{ext}@agents/n", f"Agent {ext}")
    got = []
    for n in range(4):
        call = await pbx.dial(f"0100000000{n}", context="queue-direct", exten="tech")
        got.append(await call.wait_for_agent())
        await call.wait_for_hangup()
    assert got == ["Agent 1001", "Agent 1002", "Agent 1003", "Agent 1001"]


async def test_ring_no_answer_then_retry(pbx_of):
    pbx = await pbx_of(queues=[QueueConfig("sales", "ringall", timeout=2, retry=1)])
    agent = pbx.agent("1001", manual=True)
    pbx.add_member("sales", "Local/1001@agents/n", "Agent 1001")
    call = await pbx.dial("01012345678", context="queue-direct", exten="sales")
    await pbx.wait_for_event("AgentRingNoAnswer", 5)
    await agent.answer()
    seq = [e.name for e in call.events("AgentCalled", "AgentRingNoAnswer", "AgentConnect")]
    assert seq == ["AgentCalled", "AgentRingNoAnswer", "AgentCalled", "AgentConnect"]
    rna = call.events("AgentRingNoAnswer")[0]
    assert rna["RingTime"] in ("2", "3") and rna["Interface"] == "Local/1001@agents/n"
    rna_t = next(e.t for e in pbx.events if e.name == "AgentRingNoAnswer")
    t_recall = [e.t for e in pbx.events if e.name == "AgentCalled"][1]
    assert t_recall - rna_t >= 0.9  # the queue's retry (1 s) before ringing again
    # the unanswered leg is gone (Hangup with cause 0) before the new one rings
    legs = [e["DestChannel"] for e in call.events("AgentCalled")]
    assert legs[0] != legs[1]
    assert any(e.name == "Hangup" and e["Channel"] == legs[0] for e in pbx.events)
    await call.hangup()
    assert call.events("AgentComplete")[0]["Reason"] == "caller"


async def test_priority_callers_are_served_first(pbx_of):
    pbx = await pbx_of()
    pbx.agent("1001", answer_after=0, hangup_after=1)
    pbx.add_member("sales", "Local/1001@agents/n", "Agent 1001", paused=True, reason="break")
    pbx.queues["sales"].members["Local/1001@agents/n"].wrapuptime = 0
    a = await pbx.dial("01000000001", "A", context="queue-direct", exten="sales")
    await a.wait_for_queue("sales")
    b = await pbx.dial("01000000002", "B", context="queue-direct", exten="sales")
    await b.wait_for_queue("sales")
    vip = await pbx.dial("01000000003", "VIP", context="queue-direct", exten="sales", variables={"IVR_PRIORITY": "5"})
    await vip.wait_for_queue("sales")
    joins = [(e["CallerIDName"], e["Position"], e["Count"]) for e in pbx.events_named("QueueCallerJoin")]
    assert joins == [("A", "1", "1"), ("B", "2", "2"), ("VIP", "1", "3")]
    assert [e.chan.cid_name for e in pbx.queues["sales"].callers] == ["VIP", "A", "B"]
    pbx.pause_member("sales", "Local/1001@agents/n", False)
    for c in (vip, a, b):
        await c.wait_for_agent()
    order = [e["CallerIDName"] for e in pbx.events_named("AgentConnect")]
    assert order == ["VIP", "A", "B"]


# ----------------------------------------------------------------------------- recording
async def test_mixmonitor_writes_a_wav_of_the_bridged_time_with_mute(pbx_of):
    pbx = await pbx_of()
    pbx.agent("1001", answer_after=1, hangup_after=4)
    pbx.add_member("sales", "Local/1001@agents/n", "Agent 1001")
    ami = await RawAmi().connect(pbx.ami_port)
    await ami.login()
    try:
        call = await pbx.dial("01012345678", "홍길동", context="queue-direct", exten="sales")
        await call.wait_for_agent()
        await pbx.sleep(1)
        r = await ami.action("MixMonitorMute", "m1", Channel=call.channel, Direction="both", State="1")
        assert get(r, "Response") == "Success"
        await pbx.sleep(1)
        await ami.action("MixMonitorMute", "m2", Channel=call.channel, Direction="both", State="0")
        await call.wait_for_hangup()
    finally:
        await ami.close()
    path = call.recording
    assert path is not None and path == pbx.monitor_dir / f"{call.uniqueid}.wav"
    assert call.variables["MIXMONITOR_FILENAME"] == str(path)
    with wave.open(str(path)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        frames = w.readframes(w.getnframes())
        seconds = w.getnframes() / 8000
    # option b: only the bridged time is recorded (not the 1 s of ringing), on the emulator's clock
    entered = next(e.t for e in call.events("BridgeEnter") if e["Channel"] == call.channel)
    left = next(e.t for e in call.events("BridgeLeave") if e["Channel"] == call.channel)
    assert abs(seconds - (left - entered)) < 0.01
    assert 3.9 <= seconds  # the agent talked 4 s
    import array

    samples = array.array("h", frames)
    windows = [samples[i : i + 400] for i in range(0, len(samples) - 399, 400)]  # 50 ms each
    loud = [max(abs(x) for x in w) > 1000 for w in windows]
    t_mute, t_unmute = (e.t for e in pbx.events_named("MixMonitorMute"))
    assert loud[0] and loud[-1]  # audio before and after the mute
    assert abs(loud.count(False) * 0.05 - (t_unmute - t_mute)) <= 0.1  # the muted stretch is silence
    mutes = [(e["Direction"], e["State"]) for e in pbx.events_named("MixMonitorMute")]
    assert mutes == [("both", "1"), ("both", "0")]


async def test_stop_mixmonitor_via_ami(pbx_of):
    pbx = await pbx_of()
    pbx.agent("1001", manual=True)
    pbx.add_member("sales", "Local/1001@agents/n", "Agent 1001")
    ami = await RawAmi().connect(pbx.ami_port)
    await ami.login()
    try:
        call = await pbx.dial("01012345678", context="queue-direct", exten="sales")
        await pbx.agent("1001").answer()
        await pbx.sleep(2)
        r = await ami.action("StopMixMonitor", "s1", Channel=call.channel)
        assert r == [("Response", "Success"), ("ActionID", "s1")]
        await ami.event("MixMonitorStop", 2, Channel=call.channel)
        again = await ami.action("StopMixMonitor", "s2", Channel=call.channel)
        assert get(again, "Message") == "Could not stop monitoring channel"
        await call.hangup()
    finally:
        await ami.close()
    entered = next(e.t for e in call.events("BridgeEnter") if e["Channel"] == call.channel)
    stopped = pbx.events_named("MixMonitorStop")[0].t
    with wave.open(str(call.recording)) as w:
        assert abs(w.getnframes() / 8000 - (stopped - entered)) < 0.01  # nothing after StopMixMonitor
        assert w.getnframes() / 8000 >= 1.9


# ----------------------------------------------------------------------------- transfer
async def test_redirect_blind_transfer_into_another_queue_keeps_linkedid(pbx_of):
    pbx = await pbx_of()
    pbx.agent("1001", manual=True)
    pbx.agent("1002", manual=True)
    pbx.add_member("sales", "Local/1001@agents/n", "Agent 1001")
    pbx.add_member("billing", "Local/1002@agents/n", "Agent 1002")
    ami = await RawAmi().connect(pbx.ami_port)
    await ami.login()
    try:
        call = await pbx.dial("01012345678", "홍길동", context="queue-direct", exten="sales")
        await pbx.agent("1001").answer()
        r = await ami.action("Redirect", "tr-1", Channel=call.channel, Context="transfer", Exten="billing", Priority="1")
        assert get(r, "Message") == "Redirect successful"
        await call.wait_for_queue("billing")
        await pbx.agent("1002").answer()
        assert (await call.wait_for_agent()) == "Agent 1002"
    finally:
        await ami.close()
    # real app_queue sends nothing for sales/1001 at the Redirect (ami-blind-transfer-to-queue)
    assert call.events("AgentComplete") == []
    joins = call.events("QueueCallerJoin")
    assert [e["Queue"] for e in joins] == ["sales", "billing"]
    assert {e["Linkedid"] for e in joins} == {call.linkedid} and {e["Channel"] for e in joins} == {call.channel}
    # agent 1001's leg is gone, 1001 is free again; the recording continues (one file per call)
    assert pbx.queues["sales"].members["Local/1001@agents/n"].in_call is False
    assert len(pbx.events_named("MixMonitorStart")) == 1
    await call.hangup()
    await call.wait_for_hangup()
    # at the caller's final hangup: billing's, then the late one for sales (no DestChannel block,
    # TalkTime counted from the sales connect, so it covers 1002's part too)
    done = call.events("AgentComplete")
    assert [(e["Queue"], e["MemberName"], e["Reason"]) for e in done] == [
        ("billing", "Agent 1002", "caller"), ("sales", "Agent 1001", "caller")]
    assert done[0].get("DestChannel") and done[1].get("DestChannel") is None
    assert int(done[1]["TalkTime"]) >= int(done[0]["TalkTime"])
    assert pbx.queues["sales"].members["Local/1001@agents/n"].calls_taken == 1


async def test_redirect_waiting_caller_to_queue_direct(pbx_of):
    pbx = await pbx_of()
    call = await pbx.dial("01012345678", context="queue-direct", exten="sales")
    await call.wait_for_queue("sales")
    pbx.redirect(call.one, "queue-direct", "vip")
    await call.wait_for_queue("vip")
    seq = [(e.name, e.get("Queue")) for e in call.events("QueueCallerJoin", "QueueCallerLeave", "QueueCallerAbandon")]
    assert seq == [("QueueCallerJoin", "sales"), ("QueueCallerLeave", "sales"), ("QueueCallerJoin", "vip")]
    await call.hangup()
    assert [e["Queue"] for e in call.events("QueueCallerAbandon")] == ["vip"]


# ----------------------------------------------------------------------------- scripted callers through the IVR
async def test_scripted_call_through_ivr_into_queue(pbx_of, ivr):
    app, port = await ivr()
    pbx = await pbx_of(agi_port=port)
    pbx.agent("1001", manual=True)
    pbx.add_member("sales", "Local/1001@agents/n", "Agent 1001")
    call = await pbx.dial("01012345678", name="홍길동", exten="1588", context="ivr-in")
    await call.expect_prompt("welcome")
    await call.press("1")
    await call.wait_for_queue("sales")
    await pbx.agent("1001").answer()
    await call.wait(3)
    await call.hangup()
    h = app.sessions[0]["headers"]
    assert h["agi_network_script"] == "ivr?flow=main&lang=ko" and h["agi_calleridname"] == "홍길동"
    assert h["agi_dnid"] == "1588" and h["agi_channel"] == call.channel
    assert call.variables["IVR_QUEUE"] == "sales" and call.variables["AGISTATUS"] == "SUCCESS"
    assert ("STREAM FILE welcome \"12\"", "200 result=49 endpos=0") != app.sessions[0]["log"][1]
    assert app.sessions[0]["log"][1][1].startswith("200 result=49 endpos=")
    assert [e["Digit"] for e in call.events("DTMFEnd")] == ["1"]
    assert call.events("AgentComplete")[0]["Reason"] == "caller"
    assert call.recording is not None and call.recording.exists()


async def test_declarative_caller_script(pbx_of, ivr):
    app, port = await ivr()
    pbx = await pbx_of(agi_port=port, prompt_seconds={"welcome": 2.0})
    pbx.agent("1001", answer_after=1, hangup_after=None)
    pbx.add_member("sales", "Local/1001@agents/n", "Agent 1001")
    call = await pbx.dial("01012345678", "홍길동", context="ivr-in", script=[Wait(1.5), Press("1"), Wait(10), Hangup()])
    await call.wait_for_hangup(5)
    seq = [e.name for e in call.events("QueueCallerJoin", "AgentConnect", "AgentComplete", "Hangup")
           if e.name != "Hangup" or e["Channel"] == call.channel]
    assert seq == ["QueueCallerJoin", "AgentConnect", "AgentComplete", "Hangup"]
    assert call.events("AgentComplete")[0]["Reason"] == "caller"
    talk = int(call.events("AgentComplete")[0]["TalkTime"])
    assert 8 <= talk <= 11


async def test_caller_hangs_up_while_agi_idle_gets_notice_then_511(pbx_of):
    got: list[str] = []

    async def script(reader, writer):
        while await reader.readline() not in (b"\n", b""):
            pass
        writer.write(b"ANSWER\n")
        got.append((await reader.readline()).decode())
        # stay idle until Asterisk tells us about the hangup
        got.append((await reader.readline()).decode())
        for cmd in ('STREAM FILE x ""', "SET VARIABLE AFTER 1", "GET VARIABLE CALLERID(num)"):
            writer.write(cmd.encode() + b"\n")
            got.append((await reader.readline()).decode())
        writer.close()

    server = await asyncio.start_server(script, "127.0.0.1", 0)
    try:
        pbx = await pbx_of(agi_port=server.sockets[0].getsockname()[1])
        call = await pbx.dial("0212345678", "Kim", context="ivr-in")
        await poll(lambda: len(got) >= 1, 5, "ANSWER done")
        await call.hangup()
        await poll(lambda: len(got) == 5, 5, "script finished")
    finally:
        server.close()
        await server.wait_closed()
    assert got == [
        "200 result=0\n",
        "HANGUP\n",
        "511 Command Not Permitted on a dead channel or intercept routine\n",
        "200 result=1\n",
        "200 result=1 (0212345678)\n",
    ]
    await call.wait_for_hangup()
    assert call.variables["AGISTATUS"] == "HANGUP"


async def test_queue_timeout_goes_to_voicemail(pbx_of, ivr):
    pbx = await pbx_of()
    call = await pbx.dial("01012345678", context="queue-direct", exten="sales", variables={"IVR_TIMEOUT": "3"})
    await call.expect_prompt("vm-intro", 5)
    assert call.variables["QUEUESTATUS"] == "TIMEOUT"
    assert [e.name for e in call.events("QueueCallerJoin", "QueueCallerLeave", "QueueCallerAbandon")] == [
        "QueueCallerJoin",
        "QueueCallerLeave",
    ]
    await call.hangup()


# ----------------------------------------------------------------------------- AMI actions
async def test_ami_actions_and_errors(pbx_of):
    pbx = await pbx_of()
    pbx.agent("1001", manual=True)
    ami = await RawAmi().connect(pbx.ami_port)
    try:
        denied = await ami.action("Ping", "early")
        assert get(denied, "Message") == "Permission denied"
        await ami.login()
        assert (await ami.action("QueueAdd", "a1", Queue="nope", Interface="Local/1@agents/n"))[-1] == (
            "Message", "Unable to add interface to queue: No such queue")
        await ami.action("QueueAdd", "a2", Queue="sales", Interface="Local/1001@agents/n", MemberName="Agent 1001", Penalty="2")
        again = await ami.action("QueueAdd", "a3", Queue="sales", Interface="Local/1001@agents/n")
        assert again == [("Response", "Error"), ("ActionID", "a3"), ("Message", "Unable to add interface: Already there")]
        pen = await ami.action("QueuePenalty", "p1", Queue="sales", Interface="Local/1001@agents/n", Penalty="1")
        assert get(pen, "Message") == "Interface penalty set successfully"
        await ami.event("QueueMemberPenalty", 2, Penalty="1")
        unp = await ami.action("QueuePause", "p2", Queue="sales", Interface="Local/1001@agents/n", Paused="false")
        assert get(unp, "Message") == "Interface unpaused successfully"
        nf = await ami.action("QueuePause", "p3", Interface="Local/9999@agents/n", Paused="true")
        assert get(nf, "Message") == "Interface not found"
        rm = await ami.action("QueueRemove", "r1", Queue="sales", Interface="Local/9999@agents/n")
        assert get(rm, "Message") == "Unable to remove interface: Not there"

        call = await pbx.dial("01012345678", context="queue-direct", exten="sales")
        await ami.event("QueueCallerJoin", 2)
        sv = await ami.action("Setvar", "v1", Channel=call.channel, Variable="CALLCORE_TICKET", Value="T-1")
        assert get(sv, "Message") == "Variable Set"
        gv = await ami.action("Getvar", "v2", Channel=call.channel, Variable="CALLCORE_TICKET")
        assert gv == [("Response", "Success"), ("ActionID", "v2"), ("Variable", "CALLCORE_TICKET"), ("Value", "T-1")]
        nochan = await ami.action("Getvar", "v3", Channel="Local/none-00000099;1", Variable="X")
        assert get(nochan, "Message") == "No such channel"
        dt = await ami.action("PlayDTMF", "d1", Channel=call.channel, Digit="5")
        assert get(dt, "Message") == "DTMF successfully queued"
        await ami.event("DTMFEnd", 2, Digit="5", Direction="Sent")

        fail = await ami.action("Originate", "o1", Channel="Local/nobody@nowhere", Context="x", Exten="s", Async="true")
        assert get(fail, "Message") == "Originate successfully queued"
        resp = await ami.event("OriginateResponse", 2, ActionID="o1")
        assert get(resp, "Response") == "Failure" and get(resp, "Reason") == "0"

        hu = await ami.action("Hangup", "h1", Channel=call.channel)
        assert get(hu, "Message") == "Channel Hungup"
        await ami.event("QueueCallerAbandon", 2)
        gone = await ami.action("Hangup", "h2", Channel=call.channel)
        assert get(gone, "Message") == "No such channel"
        bye = await ami.action("Logoff", "bye")
        assert bye == [("Response", "Goodbye"), ("ActionID", "bye"), ("Message", "Thanks for all the fish.")]
        await poll(lambda: ami.eof, 2, "closed after Logoff")
    finally:
        await ami.close()


async def test_click_to_call_to_an_outside_number(pbx_of):
    pbx = await pbx_of()
    pbx.agent("1001", manual=True)
    pbx.customers["01055556666"] = AgentBehavior(answer_after=1, hangup_after=3)
    ami = await RawAmi().connect(pbx.ami_port)
    await ami.login()
    try:
        ami.send("Originate", ActionID="c2c", Channel="Local/1001@agents", Context="outbound", Exten="01055556666",
                 CallerID='"Click to call" <01055556666>', Async="true", Variable="CALLCORE_ORIGIN=click-to-call")
        await pbx.agent("1001").answer()
        resp = await ami.event("OriginateResponse", 2, ActionID="c2c")
        assert get(resp, "Response") == "Success"
        end = await ami.event("DialEnd", 5, DialStatus="ANSWER", DestExten="01055556666")
        assert get(end, "DestChannel").startswith("PJSIP/trunk-")
        await ami.wait(lambda f: get(f, "Event") == "Hangup" and get(f, "Channel", "").startswith("Local/1001@agents") and get(f, "Channel", "").endswith(";2"), 5)
        linked = {get(f, "Linkedid") for f in ami.frames if get(f, "Event") == "Hangup"}
        assert linked == {get(resp, "Uniqueid")}
    finally:
        await ami.close()


async def test_manager_conf_user_filters_and_privileges(pbx_of):
    """The emulator enforces asterisk-config/manager.conf: its read classes, eventfilters and write classes."""
    user = load_manager_user(str(REPO / "asterisk-config" / "manager.conf"))
    assert user["event_filters"] and user["write_classes"] == {"call", "agent", "originate", "reporting"}
    pbx = await pbx_of(**user)
    pbx.agent("1001", answer_after=0, hangup_after=1)
    pbx.add_member("sales", "Local/1001@agents/n", "Agent 1001")
    ami = await RawAmi().connect(pbx.ami_port)
    ok = await ami.action("Login", "l1", Username="callcore", Secret=user["secret"])
    assert get(ok, "Message") == "Authentication accepted"
    try:
        call = await pbx.dial("01012345678", context="queue-direct", exten="sales")
        await call.wait_for_hangup()
        await ami.wait(lambda f: get(f, "Event") == "Hangup" and get(f, "Channel") == call.channel, 2)
        # what callcore may do …
        assert get(await ami.action("QueueStatus", "q1"), "Response") == "Success"
        assert get(await ami.action("CoreShowChannels", "c1"), "Response") == "Success"
        # … and what it may not (no system/command/config class)
        for action in ("Command", "Reload", "MixMonitor"):
            denied = await ami.action(action, f"x-{action}", Channel=call.channel, Command="core restart now")
            assert get(denied, "Message") == "Permission denied", action
    finally:
        await ami.close()
    got = {get(f, "Event") for f in ami.frames if get(f, "Event")}
    assert {"Newexten", "VarSet", "DeviceStateChange", "NewCallerid", "LocalBridge", "SuccessfulAuth"}.isdisjoint(got)
    assert {"FullyBooted", "QueueCallerJoin", "AgentCalled", "AgentConnect", "AgentComplete", "BridgeEnter", "Hangup"} <= got
    emitted = {e.name for e in pbx.events}
    assert "Newexten" in emitted and "VarSet" in emitted  # they exist, the filter removed them


async def test_transfer_to_agent_extension_and_outside_number(pbx_of):
    pbx = await pbx_of()
    pbx.agent("1001", manual=True)
    pbx.agent("1004", manual=True)
    pbx.add_member("sales", "Local/1001@agents/n", "Agent 1001")
    call = await pbx.dial("01012345678", context="queue-direct", exten="sales")
    await pbx.agent("1001").answer()
    pbx.redirect(call.one, "transfer", "1004")  # blind transfer to a colleague's phone
    await pbx.agent("1004").answer()
    begin = [e for e in call.events("DialBegin") if e.get("DialString") == "1004"]
    assert begin and begin[0]["DestChannel"].startswith("PJSIP/1004-") and begin[0]["DestLinkedid"] == call.linkedid
    await pbx.agent("1004").hangup()
    await call.wait_for_hangup()
    (done,) = call.events("AgentComplete")  # only at the end (ami-blind-transfer-to-agent)
    assert done["Reason"] == "caller" and done.get("DestChannel") is None


async def test_hold_unhold_and_originate_noanswer(pbx_of):
    pbx = await pbx_of()
    agent = pbx.agent("1001", manual=True)
    pbx.add_member("sales", "Local/1001@agents/n", "Agent 1001")
    call = await pbx.dial("01012345678", context="queue-direct", exten="sales")
    leg = await agent.answer()
    bridge = leg.bridge
    agent.hold("default")
    agent.unhold()
    # a desk phone's own hold: on the phone's channel (behind the member's Local ;2), with
    # MusicClass on Hold only; no bridge changes (ami-pjsip-phone-hold)
    phone = leg.peer.name
    assert [(e.name, e["Channel"]) for e in pbx.events_named("Hold", "Unhold")] == [("Hold", phone), ("Unhold", phone)]
    assert pbx.events_named("Hold")[0]["MusicClass"] == "default" and pbx.events_named("Unhold")[0].get("MusicClass") is None
    assert leg.bridge is bridge
    await call.hangup()

    ok, one = await pbx.originate("Local/1003@agents-noanswer", context="sim-caller", exten="wait6",
                                  timeout=2, action_id="o-na", async_=True)
    assert ok is False
    resp = pbx.events_named("OriginateResponse")[-1]
    assert (resp["Response"], resp["Reason"], resp["Channel"]) == ("Failure", "3", "Local/1003@agents-noanswer")
    assert one is not None and one.gone


def test_cli_script_parsing():
    from tests.pbxsim.__main__ import build_parser, parse_agent, parse_script

    assert parse_script("wait:1.5,press:1,wait:25,hangup") == [Wait(1.5), Press("1"), Wait(25), Hangup()]
    ext, b = parse_agent("1001:answer=2,hangup=never")
    assert (ext, b.answer_after, b.hangup_after) == ("1001", 2.0, None)
    args = build_parser().parse_args(["--ami-port", "0", "--agi", "127.0.0.1:4999"])
    assert args.ami_port == 0 and args.agi == "127.0.0.1:4999"


async def test_cli_runs_a_server(tmp_path):
    import os
    import sys

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.pbxsim", "--ami-port", "0", "--agi", "127.0.0.1:1",
        "--monitor-dir", str(tmp_path), "--time-scale", "0.01",
        cwd=str(REPO), stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()
        port = int(line.split("listening on 127.0.0.1:")[1].split(" ")[0])
        ami = await RawAmi().connect(port)
        ok = await ami.login()
        assert get(ok, "Message") == "Authentication accepted"
        await ami.close()
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 10) == 0


async def test_supervisor_chanspy_on_an_agent_call(pbx_of):
    pbx = await pbx_of()
    pbx.agent("1001", manual=True)
    pbx.agent("1004", answer_after=0, hangup_after=None)  # the supervisor's phone
    pbx.add_member("sales", "Local/1001@agents/n", "Agent 1001")
    call = await pbx.dial("01012345678", context="queue-direct", exten="sales")
    leg = await pbx.agent("1001").answer()
    ok, spyer = await pbx.originate("Local/1004@agents", context="spy-whisper", exten="1001", action_id="spy-1")
    assert ok and spyer is not None
    start = await pbx.wait_for_event("ChanSpyStart", 2)
    assert start["SpyeeChannel"] == leg.name and start["SpyerChannel"] == spyer.name
    assert spyer.appdata == "PJSIP/1001,qESw"
    await pbx.agent("1001").hangup()
    await pbx.wait_for_event("ChanSpyStop", 2)
    await pbx.wait_for(lambda: spyer.gone, 2, "spy leg ends with the spied call (option E)")
    await call.wait_for_hangup()


async def test_agi_digit_collection_results(pbx_of):
    """GET DATA / WAIT FOR DIGIT / SAY DIGITS / GET FULL VARIABLE answer like res_agi."""
    results: list[str] = []
    cmds = [
        "GET DATA enter-account 3000 4",   # caller types 1 2 3 #
        "GET DATA enter-pin 1000 4",       # caller types 4 5, then nothing
        "WAIT FOR DIGIT 5000",             # caller presses *
        'SAY DIGITS 9876 "#"',             # caller interrupts with #
        'GET FULL VARIABLE "${CALLERID(name)} on ${CHANNEL(language)}"',
        'SET VARIABLE IVR_NOTE "two words"',
        "GET VARIABLE IVR_NOTE",
        "GET DATA",
    ]

    async def script(reader, writer):
        while await reader.readline() not in (b"\n", b""):
            pass
        for cmd in cmds:
            writer.write(cmd.encode() + b"\n")
            first = (await reader.readline()).decode()
            lines = [first]
            while lines[-1].startswith("520-") or (lines[0].startswith("520-") and not lines[-1].startswith("520 ")):
                lines.append((await reader.readline()).decode())
            results.append("".join(lines))
        writer.close()

    server = await asyncio.start_server(script, "127.0.0.1", 0)
    try:
        pbx = await pbx_of(agi_port=server.sockets[0].getsockname()[1])
        call = await pbx.dial("01012345678", "홍길동", context="ivr-in")
        await call.expect_prompt("enter-account")
        await call.press("123#")
        await call.expect_prompt("enter-pin")
        await call.press("45")
        await poll(lambda: len(results) >= 2, 5, "pin timeout")
        await poll(lambda: len(call.agi_commands) >= 3, 5, "WAIT FOR DIGIT sent")
        await asyncio.sleep(0.01)
        await call.press("*")
        await call.expect_prompt("digits/9")
        await call.press("#")
        await poll(lambda: len(results) == len(cmds), 5, "all answers")
    finally:
        server.close()
        await server.wait_closed()
    assert results[:7] == [
        "200 result=123\n",
        "200 result=45 (timeout)\n",
        f"200 result={ord('*')}\n",
        f"200 result={ord('#')}\n",
        "200 result=1 (홍길동 on en)\n",
        "200 result=1\n",
        "200 result=1 (two words)\n",
    ]
    assert results[7].startswith("520-Invalid command syntax.") and results[7].endswith("520 End of proper usage.\n")
    assert "digits/8" not in call.prompts  # SAY DIGITS stopped at the first digit
    await call.hangup()


async def test_restart_with_calls_in_every_state(pbx_of, ivr):
    app, port = await ivr()
    pbx = await pbx_of(agi_port=port, prompt_seconds={"welcome": 30.0})
    pbx.agent("1001", manual=True)
    pbx.add_member("sales", "Local/1001@agents/n", "Agent 1001")
    ami = await RawAmi().connect(pbx.ami_port)
    await ami.login()
    talking = await pbx.dial("01000000001", context="queue-direct", exten="sales")
    await pbx.agent("1001").answer()
    waiting = await pbx.dial("01000000002", context="queue-direct", exten="billing")
    await waiting.wait_for_queue("billing")
    in_ivr = await pbx.dial("01000000003", context="ivr-in")
    await in_ivr.expect_prompt("welcome")
    await pbx.shutdown(restart=True)
    await poll(lambda: ami.eof, 5, "AMI dropped")
    await ami.close()
    assert all(c.gone for c in pbx.all_channels)
    assert get(ami.frames[-1], "Event") == "Shutdown" and get(ami.frames[-1], "Restart") == "True"
    assert talking.events("AgentComplete") and waiting.events("QueueCallerAbandon")
    assert in_ivr.variables["AGISTATUS"] == "HANGUP"
    assert not pbx.queues["sales"].members  # persistentmembers=no
    again = await RawAmi().connect(pbx.ami_port)
    try:
        assert get(await again.login(), "Message") == "Authentication accepted"
    finally:
        await again.close()


async def test_ringinuse_no_and_wrapuptime(pbx_of):
    pbx = await pbx_of(queues=[QueueConfig("sales", "ringall", timeout=5, retry=1, wrapuptime=3),
                               QueueConfig("billing", "ringall", timeout=5, retry=1)])
    agent = pbx.agent("1001", manual=True)
    pbx.add_member("sales", "Local/1001@agents/n", "Agent 1001")
    pbx.add_member("billing", "Local/1001@agents/n", "Agent 1001")
    first = await pbx.dial("01000000001", context="queue-direct", exten="sales")
    await agent.answer()
    other = await pbx.dial("01000000002", context="queue-direct", exten="billing")
    await other.wait_for_queue("billing")
    await pbx.sleep(2)
    assert not other.events("AgentCalled")  # 1001 is on a call in sales: ringinuse=no
    await agent.hangup()
    await first.wait_for_hangup()
    await agent.answer()  # free again: the billing caller rings 1001 (billing has no wrapuptime)
    assert await other.wait_for_agent() == "Agent 1001"
    await other.hangup()
    # sales has wrapuptime=3 and shared_lastcall: a sales caller rings 1001 only 3 s after the billing call
    ended = other.events("AgentComplete")[0].t
    third = await pbx.dial("01000000003", context="queue-direct", exten="sales")
    await third.wait_for_queue("sales")
    await agent.wait_ringing(5)
    called_at = third.events("AgentCalled")[0].t
    assert 3.0 <= called_at - ended <= 4.5
    await agent.answer()
    await third.hangup()


async def test_uniqueids_are_seeded_from_the_clock_like_asterisk(tmp_path):
    """Issue 9 item 14: Uniqueid = ``<creation time>.<sequence>``, the time from the real clock, so a
    second run does not reuse the first run's ids (call records and WAV files are keyed by them)."""
    import time

    seen = []
    for run in range(2):
        before = time.time()
        async with Pbx(cfg(tmp_path / str(run), time_scale=1.0)) as pbx:  # real time: the epoch part is the real second
            call = await pbx.dial("01012345678", context="queue-direct", exten="sales")
            seen.append(call.uniqueid)
            epoch, _, seq = call.uniqueid.partition(".")
            assert int(before) <= int(epoch) <= int(time.time()) + 1
            assert seq.isdigit()
            await call.hangup()
        if run == 0:
            # the next run starts in a later second: its ids are new, as after restarting Asterisk
            await asyncio.sleep(max(0.0, int(before) + 1 - time.time()) + 0.01)
    assert seen[0] != seen[1]
    # a fixed epoch stays available for tests that want one
    async with Pbx(cfg(tmp_path / "fixed", epoch=1795395000.0)) as pbx:
        call = await pbx.dial("01012345678", context="queue-direct", exten="sales")
        assert call.uniqueid.startswith("1795395000.")
        await call.hangup()


async def test_await_prompt_step_presses_while_the_ivr_listens(pbx_of, ivr):
    """``AwaitPrompt`` (``await:PROMPT`` on the command line): the press lands during the prompt."""
    from tests.pbxsim import AwaitPrompt
    from tests.pbxsim.__main__ import parse_script

    assert parse_script("await:main_menu,press:3,hangup") == [AwaitPrompt("main_menu"), Press("3"), Hangup()]
    app, port = await ivr()
    pbx = await pbx_of(agi_port=port, default_prompt_seconds=5.0)
    pbx.add_member("sales", "Local/1001@agents/n", "Agent 1001")
    call = await pbx.dial("01012345678", script=[AwaitPrompt("welcome"), Press("1"), Wait(10), Hangup()])
    await call.wait_for_queue("sales")
    assert call.variables["IVR_QUEUE"] == "sales"
    # a prompt that never comes: the caller gives up after the step's timeout
    call2 = await pbx.dial("01012345679", script=[AwaitPrompt("no-such-prompt", timeout=3)])
    await call2.wait_for_hangup()


async def test_wait_for_ami_client_waits_for_login_and_resync(pbx_of):
    pbx = await pbx_of()
    waiter = asyncio.ensure_future(pbx.wait_for_ami_client())
    await asyncio.sleep(0.05)
    assert not waiter.done()
    ami = await RawAmi().connect(pbx.ami_port)
    await ami.login()
    await asyncio.sleep(0.05)
    assert not waiter.done()  # logged in, resync not done yet
    await ami.list_action("QueueSummary", "sum-1", "QueueSummaryComplete")
    await asyncio.wait_for(waiter, 2)
    await ami.close()
