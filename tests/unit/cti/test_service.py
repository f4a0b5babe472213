"""CtiService against the test database, a FakeAmi and the real captures."""

from __future__ import annotations

import asyncio

import pytest

from callcore.bus import Message
from cti.ami import events as ev
from cti.ami.actions import AmiActionError, AmiNotConnected, AmiTimeout
from api.auth import Principal
from cti.service import AmiFailed, AmiUnavailable, Conflict, Forbidden, Invalid, NotFound
from cti.state import QueueSettings
from cti.testing import capture_events, drain, list_events, ok, read_frames, wait_for
from ivr.ports import CallbackRequest

from .conftest import add_agents

pytestmark = pytest.mark.db

CALL = "1795395806.2"  # ami-ivr-queue-agent.raw


def feed(service, clock, events, step=0.5):
    for e in events:
        service.handle_event(e)
        clock.advance(step)


def split_at(events, kind):
    i = next(i for i, e in enumerate(events) if isinstance(e, kind))
    return events[:i], events[i:]


def names(msgs):
    return [m.name for m in msgs]


# ------------------------------------------------------------------ agents
async def test_login_pause_unpause_logout(service, ami, repo):
    await add_agents(service)
    view = await service.agents.login("1001")
    adds = ami.of("QueueAdd")
    assert [(a.get("Queue"), a.get("Interface"), a.get("Penalty"), a.get("MemberName"), a.get("Paused")) for a in adds] == [
        ("sales", "Local/1001@agents/n", "0", "Agent 1001", "false"),
        ("support", "Local/1001@agents/n", "1", "Agent 1001", "false"),
    ]
    assert view["logged_in"] is True
    assert (await repo.get_agent("1001")).logged_in is True
    # Asterisk confirms the membership
    for q in ("sales", "support"):
        service.handle_event(ev.QueueMemberAdded(ev.MemberInfo.parse({"Queue": q, "Interface": "Local/1001@agents/n", "Status": "1"})))
    assert service.state.agents["1001"].status == "ready"
    with pytest.raises(Conflict):
        await service.agents.login("1001")

    with pytest.raises(Invalid):
        await service.agents.pause("1001", "nap")
    await service.agents.pause("1001", "lunch")
    (p,) = ami.of("QueuePause")
    assert (p.get("Interface"), p.get("Paused"), p.get("Reason"), p.get("Queue")) == ("Local/1001@agents/n", "true", "lunch", None)
    rec = await repo.get_agent("1001")
    assert rec.paused and rec.pause_reason == "lunch"

    await service.agents.unpause("1001")
    assert ami.of("QueuePause")[-1].get("Paused") == "false"
    assert (await repo.get_agent("1001")).paused is False

    await service.agents.logout("1001")
    assert sorted(a.get("Queue") for a in ami.of("QueueRemove")) == ["sales", "support"]
    assert (await repo.get_agent("1001")).logged_in is False
    events = [e["event"] for e in await repo.agent_events("1001")]
    assert events == ["logout", "unpause", "pause", "login", "login"]


async def test_login_preconditions_and_ami_errors(service, ami):
    await add_agents(service)
    with pytest.raises(NotFound):
        await service.agents.login("nobody")
    with pytest.raises(Invalid):
        await service.agents.login("1002", ["sales"])  # no skill
    with pytest.raises(Conflict):
        await service.agents.pause("1002", "lunch")  # not logged in
    ami.down = AmiNotConnected("AMI 127.0.0.1:5038 is disconnected")
    with pytest.raises(AmiUnavailable):
        await service.agents.login("1002")
    ami.down = None
    ami.script("QueueAdd", AmiTimeout("no answer"))
    with pytest.raises(AmiFailed):
        await service.agents.login("1002")
    # "Already there" (as in ami-ivr-queue-agent.raw) is not an error for a login
    ami.script("QueueAdd", AmiActionError("QueueAdd", "Unable to add interface: Already there"))
    assert (await service.agents.login("1002"))["logged_in"] is True


async def test_wrapup_pauses_member_then_returns_to_ready(service, ami, clock, repo):
    await add_agents(service)
    await service.queues.queue_settings_update(QueueSettings("sales", wrapup_seconds=30))
    events = [e for e in capture_events(service_captures() / "ami-ivr-queue-agent.raw") if not isinstance(e, ev.QueueMemberPause)]
    feed(service, clock, events)
    agent = service.state.agents["1001"]
    assert agent.status == "wrapup"
    await wait_for(lambda: ami.of("QueuePause"))
    (p,) = ami.of("QueuePause")
    assert (p.get("Interface"), p.get("Paused"), p.get("Reason")) == ("Local/1001@agents/n", "true", "wrapup")
    # the wrap-up time of the queue (30 s) passes: ready again and unpaused in Asterisk
    clock.advance(31)
    await wait_for(lambda: len(ami.of("QueuePause")) == 2)
    assert ami.of("QueuePause")[1].get("Paused") == "false"
    assert service.state.agents["1001"].status == "ready"
    await service.idle()
    assert [e["event"] for e in await repo.agent_events("1001")][:2] == ["ready", "wrapup"]


async def test_ready_ends_wrapup_early(service, ami, clock):
    await add_agents(service)
    events = [e for e in capture_events(service_captures() / "ami-ivr-queue-agent.raw") if not isinstance(e, ev.QueueMemberPause)]
    feed(service, clock, events)
    await wait_for(lambda: ami.of("QueuePause"))
    with pytest.raises(Conflict):
        await service.agents.ready("1002")
    view = await service.agents.ready("1001")
    assert view["status"] == "ready"
    assert ami.of("QueuePause")[-1].get("Paused") == "false"


# -------------------------------------------------------------- screen pop
def service_captures():
    from tests.conftest import CAPTURES

    return CAPTURES


async def _crm_fixture(repo):
    customer = await repo.create_customer(name="홍길동", phone="01012345678", vip=True, company="ACME")
    await repo.add_customer_note(customer["id"], "prefers mornings", author="1002", call_id=None)
    return customer


async def test_ringing_pop_is_preloaded_and_only_for_that_agent(service, bus, clock, repo, ivr_ctx):
    await add_agents(service)
    customer = await _crm_fixture(repo)
    ivr_ctx.contexts[CALL] = {"path": ["main", "1"], "digits": "1", "language": "ko", "lookups": {"balance": 42}, "queue": "sales"}
    mine = bus.subscribe({"agent:1001"})
    other = bus.subscribe({"agent:1002"})
    sup = bus.subscribe({"queue:sales"})

    events = capture_events(service_captures() / "ami-ivr-queue-agent.raw")
    before, rest = split_at(events, ev.AgentCalled)
    feed(service, clock, before)
    await service.idle()  # the preload started at QueueCallerJoin is done
    drain(mine), drain(sup)

    service.handle_event(rest[0])  # AgentCalled: the pop is published synchronously
    (pop,) = [m for m in drain(mine) if m.name == "call.ringing"]
    p = pop.payload
    assert p["call_id"] == CALL and p["agent_id"] == "1001" and p["queue"] == "sales"
    assert p["caller_num"] == "01012345678" and p["caller_name"] == "홍길동"
    assert p["customer"]["id"] == customer["id"] and p["customer"]["vip"] is True
    assert p["customer"]["notes"][0]["text"] == "prefers mornings"
    assert p["ivr"]["lookups"] == {"balance": 42} and p["ivr"]["language"] == "ko"
    assert p["waited"] is not None
    assert "call.ringing" in names(drain(sup))
    assert [m for m in drain(other) if m.name.startswith("call.")] == []

    feed(service, clock, rest[1:])
    got = names(drain(mine))
    assert "call.answered" in got and "call.ended" in got
    assert not [m for m in drain(other) if m.name.startswith("call.")]

    await service.idle()
    stored = await repo.get_call(CALL)
    assert stored["outcome"] == "answered" and stored["agent_id"] == "1001"
    assert stored["customer_id"] == customer["id"]
    assert stored["ivr_context"]["path"] == ["main", "1"]
    assert {l["role"] for l in stored["legs"]} >= {"caller", "agent"}
    assert [e["event"] for e in stored["events"]][:2] == ["created", "recording_started"]
    assert "answered" in [e["event"] for e in stored["events"]]
    # the next call of this number sees it as a previous interaction
    prev = await repo.previous_calls("01012345678")
    assert [c["call_id"] for c in prev] == [CALL]


async def test_pop_sent_before_preload_is_completed_by_call_updated(service, bus, clock, repo):
    await add_agents(service)
    await _crm_fixture(repo)
    mine = bus.subscribe({"agent:1001"})
    events = capture_events(service_captures() / "ami-ivr-queue-agent.raw")
    before, rest = split_at(events, ev.AgentCalled)
    feed(service, clock, before)
    service.handle_event(rest[0])  # no await in between: the CRM is not loaded yet
    ringing = [m for m in drain(mine) if m.name == "call.ringing"]
    assert ringing and ringing[0].payload["customer"] is None
    await service.idle()
    updated = [m for m in drain(mine) if m.name == "call.updated"]
    assert updated and updated[-1].payload["customer"]["name"] == "홍길동"


async def test_abandoned_call_is_persisted_and_missed_pop_sent(service, bus, clock, repo):
    mine = bus.subscribe({"agent:1001"})
    feed(service, clock, capture_events(service_captures() / "ami-queue-abandon.raw"))
    got = names(drain(mine))
    assert got.count("call.ringing") == 1 and got.count("call.missed") == 1
    await service.idle()
    stored = await repo.get_call("1795395910.10")
    assert stored["outcome"] == "abandoned" and stored["hold_time"] == 7 and stored["caller_name"] == "이영희"


# ------------------------------------------------------------------ resync
async def test_resync_after_restart_readds_logged_in_agents(service, ami, bus):
    await add_agents(service)
    await service.agents.login("1001")
    await service.agents.login("1003")
    for q in ("sales",):
        service.handle_event(ev.QueueMemberAdded(ev.MemberInfo.parse({"Queue": q, "Interface": "Local/1003@agents-noanswer/n", "Status": "1"})))
    await service.agents.pause("1003", "training")
    desk = bus.subscribe({"agent:1001"})
    ami.sent.clear()
    after = service_captures() / "ami-after-restart.raw"
    ami.script("CoreShowChannels", ok("CoreShowChannels", events=[]))
    ami.script("QueueStatus", ok("QueueStatus", events=list_events(after, "qs-after")))
    ami.script("QueueSummary", ok("QueueSummary", events=[]))

    report = await service.resync()

    assert ami.names()[:3] == ["CoreShowChannels", "QueueStatus", "QueueSummary"]
    adds = sorted((a.get("Queue"), a.get("Interface"), a.get("Paused"), a.get("Reason")) for a in ami.of("QueueAdd"))
    assert adds == [
        ("sales", "Local/1001@agents/n", "false", None),
        ("sales", "Local/1003@agents-noanswer/n", "true", "training"),
        ("support", "Local/1001@agents/n", "false", None),
    ]
    assert sorted(report["agents_readded"]) == ["1001", "1003"]
    told = [m for m in drain(desk) if m.name == "agent.resync"]
    assert told and told[0].payload["agent"]["agent_id"] == "1001"


async def test_resync_snapshot_rebuilds_and_tells_desks(service, ami, bus, repo):
    await service.agents.create_agent(id="1001", name="A", interface="Local/1001@agents-long/n", skills={"sales": 0})
    await service.agents.create_agent(id="1003", name="C", interface="Local/1003@agents-noanswer/n", skills={"sales": 0})
    await repo.set_agent_state("1001", logged_in=True)
    await repo.set_agent_state("1003", logged_in=True, paused=True, pause_reason="training")
    path = service_captures() / "ami-resync-snapshot.raw"
    ami.script("CoreShowChannels", ok(events=list_events(path, "resync-channels")))
    ami.script("QueueStatus", ok(events=list_events(path, "resync-queues")))
    ami.script("QueueSummary", ok(events=list_events(path, "resync-summary")))
    desk = bus.subscribe({"agent:1001"})
    report = await service.resync()
    assert report["calls"] == 2 and report["agents_readded"] == []
    assert ami.of("QueueAdd") == [] and ami.of("QueuePause") == []  # Asterisk already agrees
    (told,) = [m for m in drain(desk) if m.name == "agent.resync"]
    assert told.payload["agent"]["status"] == "on_call"
    assert told.payload["call"]["call_id"] == "1795396653.40"
    assert told.payload["call"]["caller_num"] == "01033332222"
    views = {q["queue"]: q for q in service.queues.queue_views()}
    assert views["support"]["waiting"] == 1


async def test_resync_propagates_ami_failure(service, ami):
    ami.down = AmiNotConnected("down")
    with pytest.raises(AmiNotConnected):
        await service.resync()


# ------------------------------------------------------------- call control
SUP = Principal("sup1", "supervisor")
A1001 = Principal("1001", "agent")
A1002 = Principal("1002", "agent")


async def _talking_call(service, clock, capture="ami-resync-snapshot.raw"):
    events = capture_events(service_captures() / capture)
    i = max(i for i, e in enumerate(events) if isinstance(e, ev.QueueCallerJoin))
    feed(service, clock, events[: i + 1])


async def test_call_control_maps_asterisk_errors(service, ami, clock):
    await service.agents.create_agent(id="1001", name="A", interface="Local/1001@agents-long/n", skills={"sales": 0}, extension="1001")
    await service.agents.create_agent(id="1002", name="B", interface="Local/1002@agents/n", skills={"support": 0}, extension="1002")
    await _talking_call(service, clock)
    call_id = "1795396653.40"

    with pytest.raises(NotFound):
        await service.calls.hangup("nope", SUP)
    with pytest.raises(Forbidden):
        await service.calls.hangup(call_id, A1002)

    await service.calls.hangup(call_id, A1001)
    assert ami.of("Hangup")[-1].get("Channel") == "Local/wait30@sim-caller-00000014;1"

    # the real error frame of ami-action-errors.raw
    frame = next(f for f in read_frames(service_captures() / "ami-action-errors.raw") if f.get("ActionID") == "redir-d")
    ami.script("Redirect", AmiActionError("Redirect", frame["Message"], frame))
    with pytest.raises(NotFound):
        await service.calls.transfer(call_id, A1001, "queue", "support")
    ami.down = AmiNotConnected("down")
    with pytest.raises(AmiUnavailable):
        await service.calls.dtmf(call_id, A1001, "12#")
    ami.down = None
    with pytest.raises(Invalid):
        await service.calls.dtmf(call_id, A1001, "12x")
    # the waiting caller is not talking: no transfer
    with pytest.raises(Conflict):
        await service.calls.transfer("1795396653.44", SUP, "number", "0212345678")


async def test_blind_transfer_hold_dtmf_atxfer(service, ami, clock, bus):
    await service.agents.create_agent(id="1001", name="A", interface="Local/1001@agents-long/n", skills={"sales": 0}, extension="1001")
    await service.agents.create_agent(id="1002", name="B", interface="Local/1002@agents/n", skills={"sales": 0}, extension="2002")
    service.handle_event(ev.QueueMemberAdded(ev.MemberInfo.parse({"Queue": "sales", "Interface": "Local/1002@agents/n", "Status": "1"})))
    await _talking_call(service, clock)
    call_id = "1795396653.40"
    desk1, desk2 = bus.subscribe({"agent:1001"}), bus.subscribe({"agent:1002"})

    await service.calls.dtmf(call_id, A1001, "1#")
    assert [(a.get("Channel"), a.get("Digit")) for a in ami.of("PlayDTMF")] == [
        ("Local/wait30@sim-caller-00000014;1", "1"),
        ("Local/wait30@sim-caller-00000014;1", "#"),
    ]
    await service.calls.hold(call_id, A1001)
    r = ami.of("Redirect")[-1]
    assert (r.get("Channel"), r.get("Context"), r.get("ExtraChannel"), r.get("ExtraExten")) == (
        "Local/wait30@sim-caller-00000014;1", "hold", "Local/1001@agents-long-00000015;1", "agent"
    )
    assert service.state.calls[call_id].on_hold
    with pytest.raises(Conflict):
        await service.calls.hold(call_id, A1001)
    await service.calls.unhold(call_id, A1001)
    b = ami.of("Bridge")[-1]
    assert (b.get("Channel1"), b.get("Channel2")) == ("Local/1001@agents-long-00000015;1", "Local/wait30@sim-caller-00000014;1")

    await service.calls.atxfer(call_id, A1001, "number", "0212345678")
    a = ami.of("Atxfer")[-1]
    assert (a.get("Channel"), a.get("Exten"), a.get("Context")) == ("Local/1001@agents-long-00000015;1", "0212345678", "transfer")

    drain(desk1), drain(desk2)
    info = await service.calls.transfer(call_id, A1001, "agent", "1002")
    r = ami.of("Redirect")[-1]
    assert (r.get("Channel"), r.get("Context"), r.get("Exten")) == ("Local/wait30@sim-caller-00000014;1", "transfer", "2002")
    assert info["to_agent"] == "1002"
    assert "call.transferred" in names(drain(desk1))
    assert "call.transferred" in names(drain(desk2))


async def test_click_to_call_originates_agent_first_with_customer(service, ami, clock, bus, repo):
    await service.agents.create_agent(id="1001", name="A", interface="Local/1001@agents-long/n", skills={"sales": 0})
    customer = await repo.create_customer(name="Kim", phone="01012345678")
    desk = bus.subscribe({"agent:1001"})
    out = await service.outbound.click_to_call("1001", "01012345678")
    assert out["customer"]["id"] == customer["id"]
    (o,) = ami.of("Originate")
    assert o.get("Channel") == "Local/1001@agents-long"
    assert (o.get("Context"), o.get("Exten"), o.get("Async")) == ("outbound", "01012345678", "true")
    variables = [v for k, v in o.headers if k == "Variable"]
    assert "CALLCORE_ORIGIN=click-to-call" in variables and f"CALLCORE_CUSTOMER_ID={customer['id']}" in variables
    assert o.get("CallerID") == '"Kim" <01012345678>'
    with pytest.raises(Conflict):
        await service.outbound.click_to_call("1001", "01012345678")  # one at a time

    feed(service, clock, capture_events(service_captures() / "ami-click-to-call.raw"))
    msgs = drain(desk)
    (answered,) = [m for m in msgs if m.name == "call.answered"]
    assert answered.payload["origin"] == "click-to-call"
    assert answered.payload["customer"]["name"] == "Kim"
    assert answered.payload["direction"] == "outbound"
    await service.idle()
    stored = await repo.get_call("1795396151.38")
    assert stored["origin"] == "click-to-call" and stored["customer_id"] == customer["id"]

    with pytest.raises(Invalid):
        await service.outbound.click_to_call("1001", "12; Hangup")


async def test_failed_originate_tells_the_agent(service, ami, bus):
    await service.agents.create_agent(id="1001", name="A", interface="Local/1001@agents-long/n", skills={"sales": 0})
    desk = bus.subscribe({"agent:1001"})
    await service.outbound.click_to_call("1001", "0299999999")
    service.handle_event(ev.OriginateResponse("x", "Failure", "Local/1001@agents-long", "outbound", "0299999999", 3, None, None, None))
    (failed,) = [m for m in drain(desk) if m.name == "call.failed"]
    assert failed.payload["number"] == "0299999999"
    await service.outbound.click_to_call("1001", "0299999999")  # the pending slot was freed


async def test_disposition_after_the_call(service, clock, repo):
    await add_agents(service)
    customer = await _crm_fixture(repo)
    feed(service, clock, capture_events(service_captures() / "ami-ivr-queue-agent.raw"))
    await service.idle()
    with pytest.raises(Forbidden):
        await service.calls.set_disposition(CALL, A1002, "sale", None)
    out = await service.calls.set_disposition(CALL, A1001, "sale", "wants a quote")
    assert out["disposition"] == "sale"
    stored = await repo.get_call(CALL)
    assert (stored["disposition"], stored["notes"]) == ("sale", "wants a quote")
    notes = (await repo.get_customer(customer["id"]))["notes"]
    assert notes[-1]["text"] == "wants a quote" and notes[-1]["call_id"] == CALL
    with pytest.raises(NotFound):
        await service.calls.set_disposition("no-call", SUP, "x", None)


async def test_supervisor_spy_modes(service, ami, clock):
    await service.agents.create_agent(id="1001", name="A", interface="Local/1001@agents-long/n", skills={"sales": 0})
    await service.agents.create_agent(id="sup1", name="S", interface="SIP/2001", role="supervisor")
    with pytest.raises(Conflict):
        await service.supervision.spy(SUP, "1001", "listen")
    await _talking_call(service, clock)
    for mode, opt in (("listen", "qES"), ("whisper", "qESw"), ("barge", "qESB")):
        await service.supervision.spy(SUP, "1001", mode)
        o = ami.of("Originate")[-1]
        assert (o.get("Channel"), o.get("Application"), o.get("Data")) == ("SIP/2001", "ChanSpy", f"Local/1001@agents-long-00000015;1,{opt}")
    with pytest.raises(Forbidden):
        await service.supervision.spy(A1002, "1001", "listen")


# --------------------------------------------------------------- callbacks
async def test_callback_created_taken_and_dialled(service, ami, bus, repo):
    await add_agents(service)
    desk = bus.subscribe({"agent:1002"})
    cb_id = await service.callbacks.create_callback(
        CallbackRequest("1795396653.44", "01044441111", "01044441111", "support", None, {"ivr": {"path": ["main", "2"]}})
    )
    (created,) = [m for m in drain(desk) if m.name == "callback.created"]
    assert created.payload["id"] == cb_id and created.payload["status"] == "open"
    # 1003 serves sales only: cannot see or take it
    assert await service.callbacks.list_callbacks(Principal("1003", "agent")) == []
    with pytest.raises(Forbidden):
        await service.callbacks.take_callback(Principal("1003", "agent"), cb_id)
    with pytest.raises(Conflict):
        await service.callbacks.dial_callback(A1002, cb_id)
    taken = await service.callbacks.take_callback(A1002, cb_id)
    assert taken["agent_id"] == "1002" and taken["status"] == "taken"
    with pytest.raises(Conflict):
        await service.callbacks.take_callback(A1001, cb_id)
    await service.callbacks.dial_callback(A1002, cb_id)
    o = ami.of("Originate")[-1]
    assert o.get("Exten") == "01044441111" and "CALLCORE_CALLBACK_ID=" + cb_id in [v for k, v in o.headers if k == "Variable"]


async def test_overflow_redirects_waiting_callers(service, ami, clock):
    """Support has no agent (ami-resync-snapshot.raw): its caller is moved to the overflow queue."""
    await service.queues.queue_settings_update(QueueSettings("sales", overflow_queue="support", overflow_after_seconds=30))
    await service.queues.queue_settings_update(QueueSettings("support", overflow_queue="sales"))
    await service.agents.create_agent(id="1001", name="A", interface="Local/1001@agents-long/n", skills={"sales": 0})
    events = capture_events(service_captures() / "ami-resync-snapshot.raw")
    i = max(i for i, e in enumerate(events) if isinstance(e, ev.QueueCallerJoin))
    feed(service, clock, events[: i + 1])
    await wait_for(lambda: ami.of("Redirect"))
    (r,) = ami.of("Redirect")
    assert (r.get("Channel"), r.get("Context"), r.get("Exten")) == ("Local/wait30@sim-caller-00000016;1", "transfer", "sales")
    assert service.state.calls["1795396653.44"].overflowed_to == "sales"
    # the sales caller is being served: never moved, however long the call
    clock.advance(120)
    await service.idle()
    await asyncio.sleep(0.05)
    assert len(ami.of("Redirect")) == 1


async def test_call_persistence_retries_a_failing_write(service, clock, repo, monkeypatch):
    real = repo.save_call
    tries = 0

    async def flaky(call):
        nonlocal tries
        tries += 1
        if tries == 1:
            raise ConnectionError("database restarting")
        return await real(call)

    monkeypatch.setattr(service.persistence, "backoff", 0.01)
    monkeypatch.setattr(repo, "save_call", flaky)
    feed(service, clock, capture_events(service_captures() / "ami-queue-abandon.raw"))
    await service.idle()
    assert tries == 2 and service.persist_failures == 0
    assert (await repo.get_call("1795395910.10"))["outcome"] == "abandoned"
