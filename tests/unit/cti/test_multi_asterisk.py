"""Several named Asterisk servers (issue 19): settings, per-server state, action routing, and
the whole server in process against two emulators (one ``Container``, two ``Pbx``)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from auth.checker import problems
from callcore.app import Container
from callcore.settings import Settings
from cti.ami import actions as act
from cti.ami import events as ev
from cti.servers import ServerMap, targets
from cti.state import CtiState
from tests.e2e.conftest import ADMIN_TOKEN, OPEN_HOURS, ROOT, Desk, Stack, eventually
from tests.pbxsim import Pbx, PbxConfig

SERVERS = [
    {"name": "ast1", "host": "127.0.0.1", "port": 5038, "username": "callcore", "secret": "s3cret-one"},
    {"name": "ast2", "host": "127.0.0.1", "port": 5039, "username": "callcore", "secret": "s3cret-two"},
]


# ------------------------------------------------------------------ settings
def test_servers_from_environment_json(monkeypatch):
    monkeypatch.setenv("CALLCORE_AMI_SERVERS", json.dumps(SERVERS))
    s = Settings()
    assert [(x.name, x.port) for x in s.effective_ami_servers] == [("ast1", 5038), ("ast2", 5039)]
    assert s.effective_ami_servers[1].secret.get_secret_value() == "s3cret-two"
    assert "s3cret" not in repr(s.effective_ami_servers)


def test_servers_from_yaml(tmp_path, monkeypatch):
    cfg = tmp_path / "callcore.yaml"
    cfg.write_text("ami_servers:\n  - {name: east, host: 10.0.0.1, secret: x1}\n"
                   "  - {name: west, host: 10.0.0.2, secret: x2, queues: [sales]}\n", encoding="utf-8")
    monkeypatch.setenv("CALLCORE_CONFIG_FILE", str(cfg))
    s = Settings()
    assert [(x.name, x.host, x.queues) for x in s.effective_ami_servers] == [
        ("east", "10.0.0.1", None), ("west", "10.0.0.2", ["sales"])]


def test_no_servers_is_the_legacy_single_endpoint():
    s = Settings(ami_host="10.1.1.1", ami_port=6038, ami_name="main")
    (only,) = s.effective_ami_servers
    assert (only.name, only.host, only.port, only.username) == ("main", "10.1.1.1", 6038, "callcore")


@pytest.mark.parametrize("servers, error", [
    ([SERVERS[0], {**SERVERS[1], "name": "ast1"}], "ast1 appear more than once"),
    ([{**SERVERS[0], "name": "bad name!"}], "name"),
    ([{**SERVERS[0], "port": 70000}], "port"),
    ([{**SERVERS[0], "colour": "red"}], "colour"),
])
def test_bad_server_lists_are_refused_clearly(monkeypatch, servers, error):
    monkeypatch.setenv("CALLCORE_AMI_SERVERS", json.dumps(servers))
    with pytest.raises(ValidationError, match=error):
        Settings()


def test_agent_servers_must_name_a_server():
    with pytest.raises(ValidationError, match="unknown server"):
        Settings(ami_servers=SERVERS, agent_servers={"1001": "ast9"})


def test_change_me_secret_of_any_server_is_a_startup_problem():
    s = Settings(ami_servers=[SERVERS[0], {**SERVERS[1], "secret": "change-me-callcore-secret"}],
                 jwt_key="x" * 40)
    found = [p for p in problems(s) if "AMI secret" in p]
    assert len(found) == 1 and "'ast2'" in found[0]


# ------------------------------------------------------------------ pure state
def _chan(uid: str, name: str, linkedid: str | None = None) -> ev.ChannelInfo:
    return ev.ChannelInfo(channel=name, uniqueid=uid, linkedid=linkedid or uid, state=6, state_desc="Up",
                          caller_num="0101", caller_name="", connected_num="", connected_name="",
                          context="x", exten="s", priority=1, language="en", accountcode="")


def _tag(event, server: str):
    object.__setattr__(event, "server", server)
    return event


def _member(queue: str, iface: str, server: str) -> ev.QueueMemberAdded:
    return _tag(ev.QueueMemberAdded(ev.MemberInfo(queue, "A", iface, iface, "dynamic", 0, 0, 0, 0, 0, False, 1,
                                                  False, "", 0)), server)


def test_each_call_and_membership_carries_its_server():
    s = CtiState()
    s.apply(_tag(ev.Newchannel(_chan("ast1-1.1", "PJSIP/trunk-1")), "ast1"), 1.0)
    s.apply(_tag(ev.Newchannel(_chan("ast2-1.1", "PJSIP/trunk-2")), "ast2"), 1.0)
    s.apply(_member("sales", "Local/1001@agents/n", "ast1"), 1.0)
    s.apply(_member("sales", "Local/1001@agents/n", "ast2"), 1.0)
    assert {c.id: c.server for c in s.calls.values()} == {"ast1-1.1": "ast1", "ast2-1.1": "ast2"}
    agent = s.agents["1001"]
    assert agent.memberships == {"ast1": {"sales": 0}, "ast2": {"sales": 0}}
    assert agent.to_dict()["servers"] == {"ast1": ["sales"], "ast2": ["sales"]}
    # removed on one server: still a member (on the other)
    s.apply(_tag(ev.QueueMemberRemoved(_member("sales", "Local/1001@agents/n", "ast1").member), "ast1"), 2.0)
    assert agent.logged_in and agent.queues == {"sales": 0} and "1001" in s.queues["sales"].members
    assert s.queues["sales"].servers == {"ast1", "ast2"}
    assert s.server_of_channel("PJSIP/trunk-2") == "ast2"


def test_a_colliding_uniqueid_from_another_server_is_not_merged():
    s = CtiState()
    s.apply(_tag(ev.Newchannel(_chan("1.1", "PJSIP/trunk-1")), "ast1"), 1.0)
    s.apply(_tag(ev.Newchannel(_chan("1.1", "PJSIP/trunk-9")), "ast2"), 1.0)
    s.apply(_tag(ev.Hangup(_chan("1.1", "PJSIP/trunk-9"), 16, "Normal"), "ast2"), 2.0)
    assert list(s.calls) == ["1.1"] and s.calls["1.1"].server == "ast1" and s.calls["1.1"].status != "ended"
    assert s.collisions >= 2


def test_rebuild_and_shutdown_of_one_server_leave_the_other_alone():
    s = CtiState()
    s.apply(_tag(ev.Newchannel(_chan("ast1-1.1", "PJSIP/trunk-1")), "ast1"), 1.0)
    s.apply(_tag(ev.Newchannel(_chan("ast2-1.1", "PJSIP/trunk-2")), "ast2"), 1.0)
    for srv in ("ast1", "ast2"):
        s.apply(_member("sales", "Local/1001@agents/n", srv), 1.0)
    params = ev.QueueParams("r1", "sales", "ringall", 0, 0, 0, 0, 0, 20, 0.0)
    changes = s.rebuild([params], 5.0, "ast1")  # ast1 came back (restarted): sales is empty there
    ended = {c.call_id for c in changes if c.kind == "call.ended"}
    assert ended == {"ast1-1.1"} and "ast2-1.1" in s.calls
    assert s.agents["1001"].memberships == {"ast2": {"sales": 0}}
    s.apply(_tag(ev.Newchannel(_chan("ast1-2.2", "PJSIP/trunk-3")), "ast1"), 6.0)
    s.apply(_tag(ev.Shutdown("Cleanly", True), "ast2"), 7.0)
    assert list(s.calls) == ["ast1-2.2"] and not s.agents["1001"].logged_in


# ------------------------------------------------------------------ routing (pure)
def test_actions_go_to_the_right_servers():
    servers = ServerMap([("ast1", None), ("ast2", ["sales"])], {"2002": "ast2"})
    where = {"PJSIP/trunk-7": "ast2"}.get
    assert targets(act.queue_add("sales", "Local/1001@agents/n"), servers, where) == ["ast1", "ast2"]
    assert targets(act.queue_add("billing", "Local/1001@agents/n"), servers, where) == ["ast1"]
    assert targets(act.queue_pause("Local/1001@agents/n", True, reason="lunch"), servers, where) == ["ast1", "ast2"]
    assert targets(act.hangup("PJSIP/trunk-7"), servers, where) == ["ast2"]
    assert targets(act.redirect("PJSIP/trunk-1", "transfer", "sales"), servers, where) == ["ast1"]
    c2c = act.originate("Local/2002@agents", context="outbound", exten="0101", variables={"CALLCORE_AGENT": "2002"})
    assert targets(c2c, servers, where) == ["ast2"]
    other = act.originate("Local/1001@agents", context="outbound", exten="0101", variables={"CALLCORE_AGENT": "1001"})
    assert targets(other, servers, where) == ["ast1"]
    spy = act.originate("PJSIP/9000", application="ChanSpy", data="PJSIP/trunk-7,qES")
    assert targets(spy, servers, where) == ["ast2"]


# ------------------------------------------------------------------ two emulators, one server
async def _pbxs(tmp_path: Path) -> list[Pbx]:
    pbxs = []
    for name in ("ast1", "ast2"):
        pbx = Pbx(PbxConfig(agi_port=1, time_scale=0.02, monitor_dir=tmp_path / f"monitor-{name}", system_name=name,
                            restart_downtime=0.2 / 0.02))
        await pbx.start()
        pbxs.append(pbx)
    return pbxs


def _settings(tmp_path: Path, database_url: str, pbxs: list[Pbx], **kw) -> Settings:
    return Settings(
        data_dir=tmp_path / "data", database_url=database_url, http_port=0, agi_port=0,
        ami_servers=[{"name": f"ast{i + 1}", "host": "127.0.0.1", "port": p.ami_port, "username": "callcore",
                      "secret": p.cfg.secret} for i, p in enumerate(pbxs)],
        agent_servers={"1002": "ast2"},
        ami_reconnect_min=0.05, ami_reconnect_max=0.2, dialplans_dir=ROOT / "dialplans", dialplan_watch=False,
        api_tokens={ADMIN_TOKEN: "admin"}, default_wrapup_seconds=1, recording_enabled=False, **kw,
    )


async def _stack(settings: Settings, pbx: Pbx) -> Stack:
    container = Container(settings, clock=lambda: OPEN_HOURS)
    await container.start()
    base = f"http://127.0.0.1:{container.http_port}"
    return Stack(container, pbx, httpx.AsyncClient(base_url=base, timeout=10), base)


async def _stop(stack: Stack) -> None:
    for desk in stack.desks:
        await desk.close()
    await stack.http.aclose()
    await stack.container.stop()


@pytest.fixture
async def two(tmp_path: Path, migrated_database_url):
    pbxs = await _pbxs(tmp_path)
    stack = await _stack(_settings(tmp_path, migrated_database_url, pbxs), pbxs[0])
    try:
        await eventually(lambda: all(st == "connected" for st in stack.container.ami.states.values()), 10,
                         "both logged in")
        yield stack, pbxs
    finally:
        await _stop(stack)
        for p in pbxs:
            await p.close()


def _actions(pbx: Pbx, name: str) -> list:
    return [f for n, f in pbx.ami.actions if n == name]


@pytest.mark.slow  # ≈2.6 s on a loaded 2-core machine (five calls, a server dropped and back)
async def test_two_servers_separate_state_routed_control_and_one_down(two):
    s, (ast1, ast2) = two
    tok = await s.create_agent("1001", "김상담", ["sales"])
    await s.api("POST", "/api/agents/1001/login", token=tok, expect=200)
    # login = QueueAdd on every server where the agent's queues live
    await eventually(lambda: all("Local/1001@agents/n" in p.queues["sales"].members for p in (ast1, ast2)), 5, "member on both")
    agent = s.cti.state.agents["1001"]
    await eventually(lambda: set(agent.memberships) == {"ast1", "ast2"}, 5, "memberships on both")
    desk = await s.desk(tok)
    phone1, phone2 = ast1.agent("1001", manual=True), ast2.agent("1001", manual=True)

    # a call on ast2 pops with its server; the ids of the two emulators never collide
    call2 = await ast2.dial("01022220000", exten="sales", context="queue-direct")
    await phone2.wait_ringing()
    pop = (await desk.wait_for("call.ringing", call_id=call2.linkedid))["payload"]
    assert pop["server"] == "ast2" and call2.linkedid.startswith("ast2-")
    live = await s.api("GET", "/api/calls", expect=200)
    assert [(c["call_id"], c["server"]) for c in live if c["call_id"] == call2.linkedid] == [(call2.linkedid, "ast2")]
    # call control goes to the call's server only
    hangups1 = len(_actions(ast1, "Hangup"))
    await s.api("POST", f"/api/calls/{call2.linkedid}/hangup", expect=202)
    await eventually(lambda: call2.linkedid not in s.cti.state.calls, 5, "call 2 ended")
    assert len(_actions(ast2, "Hangup")) == 1 and len(_actions(ast1, "Hangup")) == hangups1
    # pause with a reason: on both servers
    await s.api("POST", "/api/agents/1001/pause", token=tok, json={"reason": "lunch"}, expect=200)
    assert all(len(_actions(p, "QueuePause")) >= 1 for p in (ast1, ast2))
    await s.api("POST", "/api/agents/1001/unpause", token=tok, expect=200)
    await eventually(lambda: s.cti.state.agents["1001"].status == "ready", 5, "ready again")

    # click-to-call goes to the agent's server (agent_servers: 1002 → ast2; others: the first server)
    tok2 = await s.create_agent("1002", "이상담", ["sales"])
    ast2.agent("1002", manual=True)
    await s.api("POST", "/api/calls/click-to-call", token=tok2, json={"number": "0109990000"}, expect=202)
    await eventually(lambda: len(_actions(ast2, "Originate")) == 1, 5, "Originate on ast2")
    assert _actions(ast1, "Originate") == []
    await eventually(lambda: any(c.origin == "click-to-call" and c.server == "ast2" for c in s.cti.state.calls.values()),
                     5, "the click-to-call on ast2")
    for c in [c for c in s.cti.state.calls.values() if c.server == "ast2"]:
        await s.api("POST", f"/api/calls/{c.id}/hangup", expect=202)
    await eventually(lambda: not s.cti.state.calls, 5, "no call left")

    # ast1 goes away for good: ast2's calls still pop, readiness names ast1
    await ast1.ami.stop_listening()
    await ast1.ami.drop_sessions()
    await eventually(lambda: s.container.ami.states["ast1"] != "connected", 5, "ast1 down")
    ready = await s.api("GET", "/readyz")
    assert ready["ready"] is True and ready["ami"]["down"] == ["ast1"]
    assert ready["ami"]["servers"]["ast2"]["state"] == "connected"
    call3 = await ast2.dial("01033330000", exten="sales", context="queue-direct")
    await phone2.wait_ringing()
    pop3 = (await desk.wait_for("call.ringing", call_id=call3.linkedid))["payload"]
    assert pop3["server"] == "ast2"
    await call3.hangup()
    await eventually(lambda: call3.linkedid not in s.cti.state.calls, 5, "call 3 ended")
    metrics = (await s.http.get("/metrics")).text
    assert 'callcore_ami_server_connected{server="ast1"} 0.0' in metrics
    assert 'callcore_ami_server_connected{server="ast2"} 1.0' in metrics
    assert f'callcore_ami_endpoint_up{{endpoint="127.0.0.1:{ast1.ami_port}"}} 0.0' in metrics
    assert f'callcore_ami_endpoint_up{{endpoint="127.0.0.1:{ast2.ami_port}"}} 1.0' in metrics
    # the stored record carries its server
    rows: list = []
    for _ in range(100):
        rows = [r for r in await s.api("GET", "/api/calls/history", params={"limit": 50}, expect=200)
                if r["call_id"] == call3.linkedid]
        if rows:
            break
        await asyncio.sleep(0.05)
    assert rows and rows[0]["server"] == "ast2"
    assert phone1 is not None

    # logged out while ast1 is away: ast1 still has the member; its resync removes it there
    await s.api("POST", "/api/agents/1001/logout", token=tok, expect=200)
    assert "Local/1001@agents/n" not in ast2.queues["sales"].members
    assert "Local/1001@agents/n" in ast1.queues["sales"].members
    await ast1.ami.start(ast1.cfg.ami_host, ast1.ami.port)
    await eventually(lambda: "Local/1001@agents/n" not in ast1.queues["sales"].members, 10, "removed on ast1 at its resync")
    await eventually(lambda: not s.cti.state.agents["1001"].logged_in, 5, "1001 logged out everywhere")


async def test_restart_of_one_server_readds_agents_there_only_and_keeps_the_others_calls(two):
    s, (ast1, ast2) = two
    tok = await s.create_agent("1001", "김상담", ["sales", "billing"])
    await s.api("POST", "/api/agents/1001/login", token=tok, expect=200)
    await eventually(lambda: all("Local/1001@agents/n" in p.queues["sales"].members for p in (ast1, ast2)), 5, "members")
    phone2 = ast2.agent("1001", manual=True)
    call2 = await ast2.dial("01022220000", exten="sales", context="queue-direct")
    await phone2.wait_ringing()
    await phone2.answer()
    await eventually(lambda: getattr(s.cti.state.calls.get(call2.linkedid), "status", None) == "talking", 5, "talking")
    adds2 = len(_actions(ast2, "QueueAdd"))
    resyncs = s.cti.resyncs
    await ast1.shutdown(restart=True)
    await eventually(lambda: s.container.ami.states["ast1"] == "connected" and s.cti.resyncs > resyncs, 10, "ast1 resynced")
    await eventually(lambda: "Local/1001@agents/n" in ast1.queues["sales"].members, 5, "re-added on ast1")
    assert "Local/1001@agents/n" in ast1.queues["billing"].members
    assert len(_actions(ast2, "QueueAdd")) == adds2  # nothing re-added where nothing was lost
    call = s.cti.state.calls.get(call2.linkedid)
    assert call is not None and call.status == "talking" and call.server == "ast2"  # ast1's restart left it alone
    assert set(s.cti.state.agents["1001"].memberships) == {"ast1", "ast2"}
    await call2.hangup()


def test_recording_file_names_accept_systemname_ids_only():
    from recording.service import source_name

    assert source_name("ast1-1796311642.17") == "ast1-1796311642.17.wav"
    for bad in ("../x-1.1", "ast/1-1.1", "a b-1.1", "ast1-1.1.wav"):
        with pytest.raises(ValueError):
            source_name(bad)


def test_readiness_names_every_server_when_none_is_up():
    from types import SimpleNamespace

    from callcore.readiness import readiness_reasons, server_states
    from cti.ami import AmiClient
    from cti.ami.multi import MultiAmi, ServerPort

    smap = ServerMap([("ast1", None), ("ast2", None)])
    multi = MultiAmi([ServerPort(n, AmiClient("127.0.0.1", p, "u", "s", server=n), smap)
                      for n, p in (("ast1", 5038), ("ast2", 5039))], smap)
    c = SimpleNamespace(ami=multi, settings=Settings(), cti=SimpleNamespace(), relay=None)
    (reason,) = readiness_reasons(c, True, multi.state)
    assert reason == "no Asterisk server connected: ast1 (127.0.0.1:5038) disconnected, ast2 (127.0.0.1:5039) disconnected"
    assert {n: v["state"] for n, v in server_states(c, "standby").items()} == {"ast1": "standby", "ast2": "standby"}
    assert readiness_reasons(c, True, "standby") == []


async def test_journal_restored_calls_of_a_server_that_never_comes_back_end_once_as_server_lost(tmp_path,
                                                                                               migrated_database_url):
    """A killed (here: stopped) callcore restarts while ast2 stays down for good: ast1's resync
    reconciles ast1's restored call; ast2's restored call stays live until ``ami_server_lost_grace``
    is over, then it is ended once ("server lost"), stored, and its agent is free."""
    pbxs = await _pbxs(tmp_path)
    ast1, ast2 = pbxs
    first = await _stack(_settings(tmp_path, migrated_database_url, pbxs), ast1)
    second = None
    try:
        s = first
        await eventually(lambda: all(st == "connected" for st in s.container.ami.states.values()), 10, "both up")
        tok = await s.create_agent("1001", "김상담", ["sales"])
        await s.api("POST", "/api/agents/1001/login", token=tok, expect=200)
        await eventually(lambda: all("Local/1001@agents/n" in p.queues["sales"].members for p in pbxs), 5, "members")
        phone2 = ast2.agent("1001", manual=True)
        call2 = await ast2.dial("01022220000", exten="sales", context="queue-direct")
        await phone2.wait_ringing()
        await phone2.answer()
        call1 = await ast1.dial("01011110000", exten="billing", context="queue-direct")  # waits on ast1 (no member)
        await eventually(lambda: getattr(s.cti.state.calls.get(call2.linkedid), "status", None) == "talking", 5, "talking")
        await eventually(lambda: call1.linkedid in s.cti.state.calls, 5, "call 1 live")
        await _stop(first)  # the live-call journal keeps both calls (they are still going on)
        first = None
        await ast2.ami.stop_listening()  # ast2 never comes back for the new process

        # a grace no test waits for: the restored picture is observable first, then the grace is shortened
        s = second = await _stack(_settings(tmp_path, migrated_database_url, pbxs, ami_server_lost_grace=3600), ast1)
        await eventually(lambda: s.container.ami.states["ast1"] == "connected" and s.cti.resyncs >= 1, 10, "ast1 resynced")
        assert s.container.ami.states["ast2"] != "connected"
        assert s.container.live_journal.restored == 2
        restored = s.cti.state.calls[call2.linkedid]
        assert (restored.server, restored.agent_id, restored.status) == ("ast2", "1001", "talking")
        assert call1.linkedid in s.cti.state.calls  # ast1 still has it: its resync kept it
        desk = await s.desk(await s.token_for("1001", "4321"))
        watch = s.container.server_watch
        await watch.stop()  # the running task sleeps a tenth of the long grace: restart it with a short one
        watch.grace, watch.interval = 0.05, 0.01
        await watch.start()
        ended = await desk.wait_for("call.ended", call_id=call2.linkedid)
        assert ended is not None
        await eventually(lambda: call2.linkedid not in s.cti.state.calls, 5, "ast2's call ended")
        gone = s.cti.state.ended[call2.linkedid]
        assert (gone.end_cause_txt, gone.outcome) == ("server lost", "answered")
        assert s.cti.state.call_for_agent("1001") is None
        assert call1.linkedid in s.cti.state.calls and watch.lost == {"ast2"} and watch.calls_ended == 1
        stored = None
        for _ in range(100):  # the persistence subscriber writes it
            stored = await s.cti.repository.get_call(call2.linkedid)
            if stored:
                break
            await asyncio.sleep(0.05)
        assert stored is not None and (stored["server"], stored["end_cause_txt"]) == ("ast2", "server lost")
        assert stored["outcome"] == "answered" and stored["agent_id"] == "1001"
        watch.check()
        assert watch.calls_ended == 1  # ended once
        await call1.hangup()
    finally:
        for stack in (first, second):
            if stack is not None:
                await _stop(stack)
        for p in pbxs:
            await p.close()


async def test_one_agent_resync_per_start_up_and_one_per_later_reconnect(two):
    """Each server resyncs on its own; the desks get one ``agent.resync`` for the start-up (after
    every server's first resync, or the window when one is down), then one per later reconnect."""
    s, (ast1, ast2) = two
    resyncer = s.cti.resyncer
    assert (s.cti.resyncs, resyncer.desk_resyncs) == (2, 1)  # the real start-up: two resyncs, desks told once
    tok = await s.create_agent("1001", "김상담", ["sales"])
    await s.api("POST", "/api/agents/1001/login", token=tok, expect=200)
    desk = await s.desk(tok)

    async def told(expected: int, what: str) -> None:
        # a pause after the resyncs: every agent.resync they sent is on the socket before its status
        await s.api("POST", "/api/agents/1001/pause", token=tok, json={"reason": "lunch"}, expect=200)
        await desk.wait_for("agent.status", status="paused")
        await s.api("POST", "/api/agents/1001/unpause", token=tok, expect=200)
        await desk.wait_for("agent.status", status="ready")
        assert len(desk.named("agent.resync")) == expected, what
        desk.messages.clear()

    async def reconnect(*pbxs: Pbx) -> None:
        before = s.cti.resyncs
        for p in pbxs:
            await p.ami.drop_sessions()
        names = [n for n, port in s.container.ami.ports.items() if port.client.port in {p.ami_port for p in pbxs}]
        await eventually(lambda: s.cti.resyncs >= before + len(pbxs)
                         and all(s.container.ami.states[n] == "connected" for n in names), 10, "resynced")

    # a start-up again (what a cluster instance taking the AMI lease does): both servers, one agent.resync
    resyncer.coalesce_next()
    await reconnect(ast1, ast2)
    await told(1, "one agent.resync for a start-up with two servers")
    # a later reconnect of one server: one
    await reconnect(ast1)
    await told(1, "one per later per-server reconnect")
    # a start-up with ast2 down: the window ends the wait, ast2's own resync later sends its one
    resyncer.coalesce_next()
    resyncer.startup_window = 0.1
    await ast2.ami.stop_listening()
    await ast2.ami.drop_sessions()
    await reconnect(ast1)
    await desk.wait_for("agent.resync")
    await told(1, "one agent.resync when the window ends")
    await ast2.ami.start(ast2.cfg.ami_host, ast2.ami.port)
    await eventually(lambda: s.container.ami.states["ast2"] == "connected", 10, "ast2 back")
    await told(1, "ast2's own resync when it comes back")
