"""The emulator's app_queue against the second-round real captures (``live-2026-12/``):
blind transfer to a queue and to an agent, hold/unhold with each way of ending, attended
transfer, a desk phone's own hold, ChanSpy without ``E``.

The captures were made with test-only agents (``Local/91xx@sim-agent-long/n``) and a test-only
``[transfer] _9XXX`` route; the emulator plays the same scenario with the project's dialplan
(``Local/100x@agents/n``, ``[transfer] _1XXX → Dial(PJSIP/…)``). What must agree is app_queue's
part — the *skeleton*: which of AgentConnect / AgentComplete / Hold / Unhold / BridgeMerge /
AttendedTransfer / ChanSpy* come, in which order relative to the parties' hangups, with which
Queue and Reason, and which channel blocks they carry (AgentComplete often lacks the caller or
the agent block) — plus the header layout of those events.
"""

from __future__ import annotations

import re

import pytest

from tests.pbxsim import Pbx

from .helpers import Frame, assert_same_shapes, get, load_capture
from .test_behaviour import cfg, pbx_of  # noqa: F401  (fixture)

LIVE = "live-2026-12"
KEY = ("AgentConnect", "AgentComplete", "Hold", "Unhold", "BridgeMerge", "AttendedTransfer", "ChanSpyStart", "ChanSpyStop")
_EXT = re.compile(r"^(?:Local|PJSIP)/(\d{4})[@-]")


def skeleton(frames: list[Frame]) -> list[tuple]:
    """app_queue's part of a stream, with channels replaced by roles: ``caller`` (who joined the
    queue), ``agent1``/``agent2``… (agents in order of appearance, whatever their channel tech)."""
    evs = [f for f in frames if f and f[0][0] == "Event"]
    join = next(f for f in evs if get(f, "Event") == "QueueCallerJoin")
    caller = get(join, "Channel")
    order: list[str] = []

    def role(ch: str | None) -> str | None:
        if not ch:
            return None
        if ch == caller:
            return "caller"
        m = _EXT.match(ch)
        if m is None:
            return "other"
        if m.group(1) not in order:
            order.append(m.group(1))
        return f"agent{order.index(m.group(1)) + 1}"

    out: list[tuple] = []
    gone: set[str] = set()
    for f in evs:
        name = get(f, "Event")
        if name in KEY:
            keys = {k for k, _ in f}
            if name.startswith("ChanSpy"):
                out.append((name, role(get(f, "SpyeeChannel"))))
                continue
            out.append((
                name,
                role(get(f, "Channel") or get(f, "OrigTransfererChannel")),
                role(get(f, "DestChannel") or get(f, "TransferTargetChannel")),
                get(f, "Queue"),
                get(f, "Reason") or get(f, "Result"),
                "MusicClass" in keys,
            ))
        elif name == "Hangup":
            ch = get(f, "Channel") or ""
            r = role(ch)
            if r and r != "other" and r not in gone and not ch.endswith(";2"):
                gone.add(r)  # a party is gone with its first ;1 (or only) channel
                out.append(("Hangup", r))
    # parties hanging up together (no app_queue event between them) go in no defined order
    merged: list[tuple] = []
    for item in out:
        if item[0] == "Hangup" and merged and isinstance(merged[-1], frozenset):
            merged[-1] = merged[-1] | {item}
        elif item[0] == "Hangup":
            merged.append(frozenset({item}))
        else:
            merged.append(item)
    return merged


def ours(pbx: Pbx) -> list[Frame]:
    return [list(e.headers) for e in pbx.events]


def key_events(frames: list[Frame]) -> list[Frame]:
    return [f for f in frames if f and f[0][0] == "Event" and get(f, "Event") in KEY]


async def _two_agents(pbx_of, q1: str = "sales", q2: str = "support"):
    pbx = await pbx_of()
    a, b = pbx.agent("1001", manual=True), pbx.agent("1002", manual=True)
    pbx.add_member(q1, "Local/1001@agents/n", "Agent 1001")
    pbx.add_member(q2, "Local/1002@agents/n", "Agent 1002")
    return pbx, a, b


def _conforms(pbx: Pbx, capture: str) -> None:
    ref = load_capture(f"{LIVE}/{capture}.raw")
    assert skeleton(ours(pbx)) == skeleton(ref)
    assert_same_shapes(key_events(ours(pbx)), ref)


@pytest.mark.parametrize("target,second_queue,capture", [
    ("support", "support", "ami-blind-transfer-to-queue"),  # re-enters a queue: AgentCalled/Connect for 1002
    ("1002", "billing", "ami-blind-transfer-to-agent"),  # a plain Dial to the agent: no queue events
])
async def test_blind_transfer(pbx_of, target, second_queue, capture):
    pbx, a, b = await _two_agents(pbx_of, q2=second_queue)
    call = await pbx.dial("01012345678", "홍길동", context="queue-direct", exten="sales")
    await a.answer()
    pbx.redirect(call.one, "transfer", target)  # callcore's REST blind transfer
    await b.answer()
    await pbx.sleep(5)
    await call.hangup()
    await call.wait_for_hangup()
    _conforms(pbx, capture)


async def _held(pbx_of):
    pbx, a, _ = await _two_agents(pbx_of, q2="billing")
    call = await pbx.dial("01012345678", "홍길동", context="queue-direct", exten="sales")
    leg = await a.answer()
    pbx.redirect(call.one, "hold", "s")  # callcore's hold: one dual Redirect
    pbx.redirect(leg, "hold", "agent")
    await pbx.wait_for(lambda: call.one.moh is not None, 5, "customer on hold")
    return pbx, a, call, leg


async def test_hold_unhold_then_agent_hangs_up(pbx_of):
    pbx, a, call, leg = await _held(pbx_of)
    await pbx.sleep(5)
    pbx.bridge_channels(leg, call.one)  # callcore's unhold: AMI Bridge
    await pbx.wait_for(lambda: call.one.bridge is not None and call.one.bridge is leg.bridge, 5, "bridged")
    await pbx.sleep(5)
    await pbx.hangup_channel(leg)  # the agent hangs up
    await call.wait_for_hangup()
    await pbx.sleep(1)
    _conforms(pbx, "ami-hold-unhold-agent-hangup")
    assert not pbx.events_named("AgentComplete")  # never, after the unhold Bridge


async def test_hold_caller_hangs_up_on_hold(pbx_of):
    pbx, a, call, leg = await _held(pbx_of)
    await pbx.sleep(4)
    await call.hangup()
    await call.wait_for_hangup()
    await pbx.hangup_channel(leg)  # callcore hangs up the parked agent leg
    await pbx.wait_for(lambda: leg.gone, 5, "agent leg gone")
    _conforms(pbx, "ami-hold-caller-hangup-on-hold")


async def test_attended_transfer(pbx_of):
    pbx, a, b = await _two_agents(pbx_of, q2="billing")
    call = await pbx.dial("01012345678", "홍길동", context="queue-direct", exten="sales")
    leg = await a.answer()
    pbx.atxfer(leg, "*2", "1002", "transfer")
    await b.answer()
    await pbx.sleep(3)
    await pbx.hangup_channel(leg)  # the transferer hangs up: the transfer completes
    await pbx.wait_for_event("AttendedTransfer")
    await pbx.sleep(5)
    await call.hangup()
    await call.wait_for_hangup()
    await pbx.sleep(1)
    _conforms(pbx, "ami-attended-transfer")


async def test_desk_phone_hold_keeps_the_bridge(pbx_of):
    """ami-pjsip-phone-hold: Hold (MusicClass default) / Unhold (none) on the phone's channel and
    nothing else — no Bridge*, Dial*, Queue* event between them; AgentComplete at the hangup."""
    pbx, a, _ = await _two_agents(pbx_of, q2="billing")
    call = await pbx.dial("01012345678", "홍길동", context="queue-direct", exten="sales")
    await a.answer()
    await pbx.sleep(4)
    mark = len(pbx.events)
    a.hold("default")
    await pbx.sleep(6)
    a.unhold()
    between = [e.name for e in pbx.events[mark:] if e.name in ("Hold", "Unhold") or e.name.startswith(("Bridge", "Dial", "Queue", "Agent"))]
    assert between == ["Hold", "Unhold"]
    await pbx.sleep(5)
    await a.hangup()
    await call.wait_for_hangup()
    ref = load_capture(f"{LIVE}/ami-pjsip-phone-hold.raw")
    ref_between = [get(f, "Event") for f in ref if f[0][0] == "Event" and (get(f, "Event") in ("Hold", "Unhold") or
                   get(f, "Event").startswith(("Bridge", "Dial", "Queue", "Agent")))]
    i = ref_between.index("Hold")
    assert ref_between[i : i + 2] == between
    def reasons(frames):
        return [r[4] for r in skeleton(frames) if isinstance(r, tuple) and r[0] == "AgentComplete"]

    assert reasons(ref) == reasons(ours(pbx)) == ["agent"]
    assert_same_shapes(key_events(ours(pbx)), ref)


async def test_chanspy_without_e_keeps_the_spyer_up(pbx_of):
    """ami-chanspy-listen: ``ChanSpy(<agent leg>,q)`` — after ChanSpyStop the spying channel
    stays up (the capture's scenario hung it up 5 s later, Cause 0)."""
    pbx, a, _ = await _two_agents(pbx_of, q2="billing")
    pbx.agent("9900", answer_after=0, hangup_after=None)  # the supervisor's phone
    call = await pbx.dial("01012345678", "홍길동", context="queue-direct", exten="sales")
    leg = await a.answer()
    ok, spyer = await pbx.originate("Local/9900@agents", application="ChanSpy", data=f"{leg.name},q", action_id="spy-1")
    assert ok and spyer is not None
    await pbx.wait_for_event("ChanSpyStart")
    await call.hangup()
    await call.wait_for_hangup()
    await pbx.wait_for_event("ChanSpyStop")
    await pbx.sleep(3)
    assert not spyer.gone  # the capture: no Hangup of the spyer until someone hangs it up
    ref = load_capture(f"{LIVE}/ami-chanspy-listen.raw")
    stop = next(i for i, f in enumerate(ref) if get(f, "Event") == "ChanSpyStop")
    spyer_ref = get(ref[stop], "SpyerChannel")
    hangup = next(i for i, f in enumerate(ref) if get(f, "Event") == "Hangup" and get(f, "Channel") == spyer_ref)
    assert hangup > stop and get(ref[hangup], "Cause") == "0"
    await pbx.hangup_channel(spyer, 0)
    await pbx.wait_for(lambda: spyer.gone, 5, "spyer hung up")
