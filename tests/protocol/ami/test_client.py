"""AmiClient against a fake Asterisk over loopback, speaking from the captures."""

from __future__ import annotations

import asyncio
import logging
import random
import re

import pytest

from cti.ami import AmiActionError, AmiAuthError, AmiClient, AmiNotConnected, AmiTimeout, actions, backoff_delay
from cti.ami import events as ev

from .fake_asterisk import (
    FakeAsterisk,
    Session,
    capture_frames,
    first_line,
    relabel,
    response,
    section,
    wait_for,
)

SECRET = "Zx9-very-secret-value"
IVR = capture_frames("ami-ivr-queue-agent.raw")
RESYNC = capture_frames("ami-resync-snapshot.raw")
ERRORS = capture_frames("ami-action-errors.raw")
RESTART = capture_frames("ami-asterisk-restart.raw")
AFTER = capture_frames("ami-after-restart.raw")
BAD_LOGIN = capture_frames("ami-bad-login.raw")

VARSET = b"Event: VarSet\r\nPrivilege: dialplan,all\r\nChannel: Local/x;1\r\nVariable: V\r\nValue: 1\r\n\r\n"


def hangup_event(uid: str, name: str = "이영희") -> bytes:
    return (
        f"Event: Hangup\r\nChannel: Local/9@x-{uid};1\r\nCallerIDName: {name}\r\nUniqueid: {uid}\r\n"
        f"Linkedid: {uid}\r\nCause: 16\r\nCause-txt: Normal Clearing\r\n\r\n"
    ).encode()


def answer_from(frames: list[bytes], old_id: str, new_id: str) -> list[bytes]:
    """The captured answer to ``old_id``, re-labelled for the client's ActionID."""
    found = section(frames, old_id)
    assert found, old_id
    return [relabel(f, old_id, new_id) for f in found]


def typed(frames: list[bytes]) -> list[ev.AmiEvent]:
    from cti.ami.protocol import AmiFrameParser

    parser = AmiFrameParser(consumed_events=ev.CONSUMED_EVENTS)
    parser.feed(b"".join(frames))
    out = []
    while (got := parser.parse()) is not None:
        out += [e for h in got if "Event" in h and (e := ev.translate(h)) is not None]
    return out


async def make(server: FakeAsterisk, **kw) -> AmiClient:
    port = await server.start()
    kw.setdefault("ping_interval", None)
    return AmiClient("127.0.0.1", port, "callcore", SECRET, **kw)


# ---------------------------------------------------------------- (b) matching
async def test_responses_matched_by_action_id_out_of_order() -> None:
    async def script(s: Session) -> None:
        await s.accept_login()
        first = await s.expect("Getvar")
        second = await s.expect("Getvar")
        await s.write(response(second["ActionID"], message="", Variable=second["Variable"], Value="second"))
        await s.write(response(first["ActionID"], message="", Variable=first["Variable"], Value="first"))
        await s.answer_logoff()

    server = FakeAsterisk(script)
    client = await make(server)
    try:
        await client.connect_once()
        r1, r2 = await asyncio.gather(client.send(actions.getvar("A")), client.send(actions.getvar("B")))
        assert (r1.headers["Variable"], r1.headers["Value"]) == ("A", "first")
        assert (r2.headers["Variable"], r2.headers["Value"]) == ("B", "second")
        ids = [a["ActionID"] for a in server.sessions[0].actions]
        assert len(set(ids)) == len(ids)  # unique ActionIDs
    finally:
        await client.close()
        await server.close()
    assert not server.errors


LISTS = [
    (actions.queue_status, IVR, "qs-1", "QueueStatusComplete"),
    (actions.core_show_channels, RESYNC, "resync-channels", "CoreShowChannelsComplete"),
    (actions.queue_status, RESYNC, "resync-queues", "QueueStatusComplete"),
    (actions.queue_summary, RESYNC, "resync-summary", "QueueSummaryComplete"),
    (actions.queue_summary, IVR, "qsum-1", "QueueSummaryComplete"),
]


@pytest.mark.parametrize("factory,frames,captured_id,complete", LISTS, ids=[x[2] for x in LISTS])
async def test_list_action_collects_its_events_and_keeps_them_off_on_event(factory, frames, captured_id, complete):
    delivered: list[ev.AmiEvent] = []
    answer: list[bytes] = []

    async def script(s: Session) -> None:
        await s.accept_login()
        action = await s.expect(factory().name)
        answer.extend(answer_from(frames, captured_id, action["ActionID"]))
        # response, then the list interleaved with noise and with an unrelated live event
        await s.write(answer[0] + VARSET)
        for i, frame in enumerate(answer[1:]):
            await s.write(frame + VARSET + (hangup_event(f"77.{i}") if i == 0 else b""))
        await s.answer_logoff()

    server = FakeAsterisk(script)
    client = await make(server, on_event=delivered.append)
    try:
        await client.connect_once()
        resp = await client.send(factory())
        assert resp.success and resp.action == factory().name
        assert resp.headers["EventList"] == "start"
        expected = typed(answer[1:-1])
        assert resp.events == expected and len(expected) == int(resp.complete_headers["ListItems"])
        assert resp.raw_events == []
        assert resp.complete_headers["Event"] == complete
        # only the unrelated live event reached on_event
        await wait_for(lambda: len(delivered) >= 1, what="the live event")
        assert [type(e) for e in delivered] == [ev.Hangup]
        assert client.dropped_noise == len(answer)  # every VarSet, never the list frames
    finally:
        await client.close()
        await server.close()
    assert not server.errors


async def test_resync_snapshot_content() -> None:
    """What a resync sees mid-call (ami-resync-snapshot.raw): channels, queue entry, members."""

    async def script(s: Session) -> None:
        await s.accept_login()
        for name, cid in (("CoreShowChannels", "resync-channels"), ("QueueStatus", "resync-queues")):
            action = await s.expect(name)
            await s.write(b"".join(answer_from(RESYNC, cid, action["ActionID"])))
        await s.answer_logoff()

    server = FakeAsterisk(script)
    client = await make(server)
    try:
        await client.connect_once()
        channels = await client.send(actions.core_show_channels())
        queues = await client.send(actions.queue_status())
    finally:
        await client.close()
        await server.close()
    assert {c.chan.caller_name for c in channels.events} == {"정수진", "Waiting Caller"}
    assert all(isinstance(c, ev.CoreShowChannel) for c in channels.events)
    (entry,) = [e for e in queues.events if isinstance(e, ev.QueueEntry)]
    assert entry.queue == "support" and entry.caller_name == "Waiting Caller"
    members = {m.member.name: m.member for m in queues.events if isinstance(m, ev.QueueMember)}
    assert members["Agent 1003"].paused and members["Agent 1003"].paused_reason == "training"
    assert members["Agent 1001"].in_call or members["Agent 1001"].status == 2


# ------------------------------------------------------------------ (c) errors
@pytest.mark.parametrize(
    "action,frames,captured_id,message",
    [
        (actions.mix_monitor_mute("Local/nope;1", True), ERRORS, "mute-d", "No such channel"),
        (actions.redirect("Local/wait30@sim-caller-00000010;1", "agents", "1002"), ERRORS, "redir-d",
         "Channel does not exist: Local/wait30@sim-caller-00000010;1"),
        (actions.queue_add("sales", "Local/1001@agents/n"), IVR, "qa-1", "Unable to add interface: Already there"),
        (actions.queue_status(), IVR, "bad-1", "Invalid/unknown command: NoSuchAction."),
    ],
)  # fmt: skip
async def test_error_response_raises_with_asterisk_message(action, frames, captured_id, message) -> None:
    async def script(s: Session) -> None:
        await s.accept_login()
        sent = await s.expect(action.name)
        await s.write(b"".join(answer_from(frames, captured_id, sent["ActionID"])))
        await s.write(response("after", message="still alive"))
        ping = await s.expect("Ping")
        await s.write(response(ping["ActionID"], message="", Ping="Pong"))
        await s.answer_logoff()

    server = FakeAsterisk(script)
    client = await make(server)
    try:
        await client.connect_once()
        with pytest.raises(AmiActionError) as info:
            await client.send(action)
        assert info.value.message.startswith(message)
        assert info.value.action == action.name
        assert info.value.headers["Response"] == "Error"
        assert (await client.send(actions.ping())).headers["Ping"] == "Pong"  # the link is fine
    finally:
        await client.close()
        await server.close()
    assert not server.errors


async def test_timeout_and_late_list_events_are_swallowed() -> None:
    delivered: list[ev.AmiEvent] = []
    release = asyncio.Event()

    async def script(s: Session) -> None:
        await s.accept_login()
        action = await s.expect("QueueStatus")
        answer = answer_from(IVR, "qs-1", action["ActionID"])
        await s.write(answer[0])
        await release.wait()  # the client gives up first
        await s.write(b"".join(answer[1:]) + hangup_event("5.5"))
        await s.answer_logoff()

    server = FakeAsterisk(script)
    client = await make(server, on_event=delivered.append, action_timeout=0.2)
    try:
        await client.connect_once()
        with pytest.raises(AmiTimeout):
            await client.send(actions.queue_status())
        release.set()
        await wait_for(lambda: delivered, what="the live event after the late list")
        assert [type(e) for e in delivered] == [ev.Hangup]  # no stray QueueParams/QueueMember
    finally:
        await client.close()
        await server.close()


async def test_not_connected_before_start() -> None:
    client = AmiClient("127.0.0.1", 1, "callcore", SECRET)
    with pytest.raises(AmiNotConnected):
        await client.send(actions.ping())
    assert client.state == "disconnected"


# -------------------------------------------------------------- originate
async def test_async_originate_and_originate_response() -> None:
    delivered: list[ev.AmiEvent] = []

    async def script(s: Session) -> None:
        await s.accept_login()
        for _ in range(2):
            sent = await s.expect("Originate")
            assert sent["Variable"] == "CALLCORE_ORIGIN=click-to-call"
            resp, event = answer_from(IVR, "orig-1", sent["ActionID"])
            await s.write(resp)
            await s.write(VARSET + event)
        await s.answer_logoff()

    server = FakeAsterisk(script)
    client = await make(server, on_event=delivered.append)
    action = actions.originate(
        "Local/press1@sim-caller", context="ivr-in", exten="s", caller_id='"홍길동" <01012345678>',
        variables={"CALLCORE_ORIGIN": "click-to-call"},
    )  # fmt: skip
    try:
        await client.connect_once()
        resp = await client.send(action)
        assert resp.message == "Originate successfully queued"
        await wait_for(lambda: any(isinstance(e, ev.OriginateResponse) for e in delivered), what="OriginateResponse")
        first = next(e for e in delivered if isinstance(e, ev.OriginateResponse))
        assert first.action_id == resp.headers["ActionID"]
        result = await client.send_originate(action)
        assert result.response == "Success" and result.caller_name == "홍길동" and result.reason == 4
        await wait_for(lambda: sum(isinstance(e, ev.OriginateResponse) for e in delivered) == 2, what="2nd event")
    finally:
        await client.close()
        await server.close()
    assert not server.errors


# ----------------------------------------------------------------- (d) login
async def test_bad_login_is_auth_failed_and_retried_at_max_backoff(caplog) -> None:
    caplog.set_level(logging.DEBUG)
    states: list[str] = []

    async def script(s: Session) -> None:
        login = await s.expect("Login")
        await s.write(b"".join(answer_from(BAD_LOGIN, "bad-login", login["ActionID"])))
        await s.read_action(timeout=10)  # then silence, as Asterisk does

    server = FakeAsterisk(script)
    client = await make(server, on_state=states.append, reconnect_min=0.01, reconnect_max=0.1)
    try:
        with pytest.raises(AmiAuthError, match="AMI login refused for user 'callcore'.*CALLCORE_AMI_USERNAME/SECRET"):
            await client.connect_once()
        assert client.state == "auth_failed"
        await client.start()
        # the third session is counted by the server before the client has read its refusal
        await wait_for(lambda: len(server.sessions) >= 3 and client.auth_failures >= 3, what="retries")
        assert client.state == "auth_failed"
        assert client.last_retry_delay == 0.1  # max backoff, not the exponential ramp
        assert client.auth_failures >= 3
    finally:
        await client.close()
        await server.close()
    errors = [r for r in caplog.records if "login refused" in r.getMessage()]
    assert errors and all(r.levelno == logging.ERROR for r in errors[1:])
    assert "retrying in 0.10 s" in errors[-1].getMessage()
    assert not any(SECRET in r.getMessage() for r in caplog.records)
    assert states[:2] == ["connecting", "auth_failed"]


# ------------------------------------------------------------- (e) reconnect
async def test_shutdown_then_reconnect_with_resync_and_held_events(caplog) -> None:
    """ami-asterisk-restart.raw then ami-after-restart.raw; on_connect each time."""
    caplog.set_level(logging.INFO)
    order: list[str] = []
    states: list[str] = []
    snapshots: list[list[ev.AmiEvent]] = []
    client: AmiClient

    async def on_connect() -> None:
        resp = await client.send(actions.queue_status())  # a list action inside the hook
        snapshots.append(resp.events)
        order.append(f"resync-{len(snapshots)}")

    def on_event(e: ev.AmiEvent) -> None:
        order.append(e.name)

    async def before_restart(s: Session) -> None:
        login = await s.accept_login()
        qs = await s.expect("QueueStatus")
        # events arriving while the resync runs: must be delivered after it
        during = [f for f in RESTART if first_line(f) in (b"Event: Newchannel", b"Event: FullyBooted")]
        await s.write(b"".join(during))
        await s.write(b"".join(answer_from(IVR, "qs-1", qs["ActionID"])))
        rest = [f for f in RESTART[1:] if f not in during]  # [0] is the captured login response
        await s.write(b"".join(rest))  # ... ends with Event: Shutdown
        assert login
        await s.read_action(timeout=5)  # EOF: the client hangs up on Shutdown

    async def after_restart(s: Session) -> None:
        login = await s.expect("Login")
        ok, booted, auth, *_ = AFTER
        await s.write(relabel(ok, "login-1", login["ActionID"]))
        qs = await s.expect("QueueStatus")
        await s.write(booted + auth)  # during the resync
        await s.write(b"".join(answer_from(AFTER, "qs-after", qs["ActionID"])))
        await s.answer_logoff()

    server = FakeAsterisk(before_restart, after_restart)
    client = await make(server, on_event=on_event, on_connect=on_connect, on_state=states.append,
                        reconnect_min=0.05, reconnect_max=0.2)  # fmt: skip
    try:
        await client.start()
        await wait_for(lambda: "resync-2" in order and client.state == "connected", 5, "second resync")
        await wait_for(lambda: order[-1] == "FullyBooted", what="events held during the 2nd resync")
    finally:
        await client.close()
    await server.close()
    assert not server.errors
    first = order[: order.index("resync-2")]
    assert first[0] == "resync-1"  # nothing delivered before the first snapshot
    assert first[1:4] == ["FullyBooted", "Newchannel", "Newchannel"]  # held during the resync, in order
    assert first[-1] == "Shutdown" and "Hangup" in first and "QueueCallerAbandon" in first
    assert order[order.index("resync-2") :] == ["resync-2", "FullyBooted"]
    # after the restart the queues have no dynamic members any more
    assert [type(e) for e in snapshots[1]] == [ev.QueueParams, ev.QueueParams]
    assert any(isinstance(e, ev.QueueMember) for e in snapshots[0])
    assert states == ["connecting", "connected", "disconnected", "connecting", "connected", "disconnected"]
    assert client.reconnects == 1 and client.logins == 2
    assert any("connection lost" in r.getMessage() and "reconnecting in" in r.getMessage() for r in caplog.records)


async def test_network_down_backoff_then_connects(caplog) -> None:
    caplog.set_level(logging.WARNING)

    async def script(s: Session) -> None:
        await s.accept_login()
        await s.answer_logoff()

    server = FakeAsterisk(script)
    port = await server.start()
    await server.stop_listening()  # nothing listens on the port now
    client = AmiClient("127.0.0.1", port, "callcore", SECRET, reconnect_min=0.02, reconnect_max=0.16,
                       ping_interval=None, rng=random.Random(7))  # fmt: skip
    try:
        await client.start()
        await wait_for(lambda: client.connect_failures >= 5, 5, "5 refused connections")
        assert client.state in ("disconnected", "connecting")
        with pytest.raises(AmiTimeout):
            await client.wait_connected(timeout=0.05)
        await server.start(port)
        await client.wait_connected(timeout=5)
        assert client.state == "connected"
    finally:
        await client.close()
        await server.close()
    msgs = [r.getMessage() for r in caplog.records if "not reachable" in r.getMessage()]
    assert msgs[0].startswith(f"AMI 127.0.0.1:{port} not reachable (ConnectionRefusedError")
    delays = [re.search(r"retrying in ([0-9.]+) s", m).group(1) for m in msgs]
    rng = random.Random(7)
    expected = [f"{backoff_delay(i, 0.02, 0.16, rng.random()):.2f}" for i in range(5)]
    assert delays[:5] == expected  # capped exponential with the client's jitter source
    assert float(expected[0]) < float(expected[3])
    assert all(r.levelno == logging.WARNING for r in caplog.records if "not reachable" in r.getMessage())


# ---------------------------------------------------------- (f) cut frame
async def test_frame_cut_in_half_then_drop_fails_pending_and_reconnects() -> None:
    async def cut(s: Session) -> None:
        await s.accept_login()
        ping = await s.expect("Ping")
        whole = response(ping["ActionID"], message="", Ping="Pong") + hangup_event("1.1", "최민수")
        await s.write(whole[: len(whole) - 40])  # the response, and half of an event
        await asyncio.sleep(0.05)
        s.close()

    async def healthy(s: Session) -> None:
        await s.accept_login()
        ping = await s.expect("Ping")
        await s.write(response(ping["ActionID"], message="", Ping="Pong"))
        await s.write(hangup_event("2.2", "최민수"))
        await s.answer_logoff()

    delivered: list[ev.AmiEvent] = []
    server = FakeAsterisk(cut, healthy)
    client = await make(server, on_event=delivered.append, reconnect_min=0.02, reconnect_max=0.1)
    try:
        await client.start()
        await wait_for(lambda: client.state == "connected", what="first login")
        assert (await client.send(actions.ping())).headers["Ping"] == "Pong"
        pending = asyncio.ensure_future(client.send(actions.getvar("X")))  # never answered
        await wait_for(lambda: pending.done(), what="the pending action to fail")
        with pytest.raises(AmiNotConnected):
            pending.result()
        await wait_for(lambda: client.state == "connected" and client.logins == 2, what="reconnect")
        assert (await client.send(actions.ping())).headers["Ping"] == "Pong"
        await wait_for(lambda: delivered, what="the event of the new session")
    finally:
        await client.close()
        await server.close()
    assert not server.errors
    # the half event of the dead session was never delivered
    assert [(type(e), e.chan.uniqueid, e.chan.caller_name) for e in delivered] == [(ev.Hangup, "2.2", "최민수")]


# ------------------------------------------------------------ (i) big burst
async def test_200k_frames_in_one_write() -> None:
    count = 0

    def on_event(e: ev.AmiEvent) -> None:
        nonlocal count
        assert isinstance(e, ev.Hangup) and e.chan.caller_name == "이영희"
        count += 1

    blob = b"".join(VARSET + hangup_event(f"9.{i}") for i in range(100_000))

    async def script(s: Session) -> None:
        await s.accept_login()
        s.writer.write(blob)  # one write: 200k frames
        await s.writer.drain()
        await s.answer_logoff(timeout=30)

    server = FakeAsterisk(script)
    client = await make(server, on_event=on_event)
    try:
        await client.connect_once()
        await wait_for(lambda: count == 100_000, 30, "100k events")
        # still responsive for actions after the burst
        assert client.state == "connected"
    finally:
        await client.close()
        await server.close()
    stats = client.stats
    assert stats.dropped_noise == 100_000
    assert stats.frames >= 200_000
    assert stats.bytes_in >= len(blob)
    assert stats.scanned_bytes <= 3 * stats.bytes_in and stats.moved_bytes <= stats.bytes_in
    assert client.events_delivered == 100_000


# --------------------------------------------------------------- lifecycle
async def test_close_logs_off_and_leaves_no_task(caplog) -> None:
    caplog.set_level(logging.DEBUG)

    async def script(s: Session) -> None:
        await s.accept_login()
        await s.answer_logoff()

    server = FakeAsterisk(script)
    client = await make(server, ping_interval=0.05)
    try:
        await client.start()
        await wait_for(lambda: client.state == "connected", what="login")
        await wait_for(lambda: any(a["Action"] == "Ping" for a in server.sessions[0].actions), what="keepalive")
        runner = client._runner
        assert runner is not None and not runner.done()
    finally:
        await client.close()
    assert runner.done() and client.state == "disconnected"
    assert any(a["Action"] == "Logoff" for a in server.sessions[0].actions)
    await server.close()
    assert not server.errors
    assert not any(SECRET in r.getMessage() for r in caplog.records)
    with pytest.raises(AmiNotConnected):
        await client.send(actions.ping())


async def test_failing_resync_hook_drops_the_connection_and_retries(caplog) -> None:
    caplog.set_level(logging.ERROR)
    calls = 0

    async def on_connect() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("state store unavailable")

    async def script(s: Session) -> None:
        await s.accept_login()
        await s.answer_logoff()

    server = FakeAsterisk(script)
    client = await make(server, on_connect=on_connect, reconnect_min=0.02, reconnect_max=0.05)
    try:
        await client.start()
        await wait_for(lambda: client.state == "connected", what="second attempt")
    finally:
        await client.close()
        await server.close()
    assert calls == 2 and len(server.sessions) == 2
    assert any("resync failed (RuntimeError: state store unavailable)" in r.getMessage() for r in caplog.records)


async def test_send_originate_works_even_if_originate_response_is_filtered() -> None:
    async def script(s: Session) -> None:
        await s.accept_login()
        sent = await s.expect("Originate")
        resp, event = answer_from(ERRORS, "orig-d", sent["ActionID"])
        await s.write(resp + event)
        await s.answer_logoff()

    server = FakeAsterisk(script)
    client = await make(server, consumed_events=frozenset({"Hangup"}))
    try:
        await client.connect_once()
        result = await client.send_originate(
            actions.originate("Local/wait30@sim-caller", context="queue-direct", exten="sales", timeout_ms=1000)
        )
    finally:
        await client.close()
        await server.close()
    assert result.caller_name == "최민수" and result.uniqueid == "1795396084.28"
    with pytest.raises(ValueError):
        await client.send_originate(actions.originate("Local/x@y", context="c", exten="s", async_=False))
