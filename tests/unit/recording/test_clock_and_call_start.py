"""Recording from call entry (``start: call``, the IVR's AGI ``EXEC MixMonitor``), the called
number from the IVR's DID, click-to-call/callback Originate variables, and spans on
Asterisk's clock (``timestampevents``) — on the test database."""

from __future__ import annotations

from dataclasses import dataclass, field
import pytest

from cti.ami.events import MixMonitorMute, parse_timestamp, translate
from ivr.channel import CallInfo
from recording.checker import parse_policy
from tests.unit.recording.audio import wav
from tests.unit.recording.helpers import T0, Clock, answered, end, make_call, make_service, start

pytestmark = pytest.mark.db

CALL_POLICY = """\
defaults: {action: record, retention_days: 30}
rules:
  - name: payment-line
    match: {called: ["15887000"]}
    start: call
  - name: stereo-line
    match: {called: ["15889999"]}
    start: call
    channels: stereo
  - name: outbound-off
    match: {direction: [outbound]}
    action: dont_record
  - name: callbacks-never-to-the-board
    match: {direction: [callback], called: ["0107777*"]}
    action: never
"""


@dataclass
class FakeChannel:
    info: CallInfo
    executed: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)

    async def exec(self, application: str, *args: str) -> str:
        self.executed.append((application, args))
        return "0"


def svc_with(db_sessionmaker, tmp_path, clock=None, **kw):
    svc = make_service(db_sessionmaker, tmp_path, clock=clock or Clock(), **kw)
    svc.policy = parse_policy(CALL_POLICY, "c.yaml").policy
    return svc


def chan(call_id: str = "1795395000.1", dialed: str | None = "15887000", caller: str = "01055551234") -> FakeChannel:
    return FakeChannel(CallInfo(call_id, f"Local/{caller}@sim-caller-00000001;1", caller, "홍길동", dialed, linkedid=call_id))


# ------------------------------------------------------------------ AMI Timestamp
def test_timestamp_header_is_parsed_into_the_typed_event():
    frame = {"Event": "MixMonitorMute", "Privilege": "call,all", "Timestamp": "1795395821.348534",
             "Channel": "PJSIP/trunk-1", "Uniqueid": "1.1", "Linkedid": "1.1", "Direction": "both", "State": "1"}
    e = translate(frame)
    assert isinstance(e, MixMonitorMute) and e.state and e.timestamp == pytest.approx(1795395821.348534)
    assert translate({k: v for k, v in frame.items() if k != "Timestamp"}).timestamp is None
    assert parse_timestamp("garbage") is None and parse_timestamp("-1") is None and parse_timestamp("nan") is None
    assert translate({**frame, "Timestamp": "x"}).timestamp is None
    assert e == translate({**frame, "Timestamp": "1.0"})  # the clock is not part of the event's identity


# ------------------------------------------------------------------ start: call
async def test_call_entry_starts_mixmonitor_with_the_call_id_only(db_sessionmaker, tmp_path):
    svc = svc_with(db_sessionmaker, tmp_path)
    ch = chan()
    assert await svc.call_entered(ch)
    assert ch.executed == [("MixMonitor", ("1795395000.1.wav",))]  # no option b: the IVR is recorded
    live = svc.live["1795395000.1"]
    assert not live.bridged_only and live.call_decision.start == "call" and live.called == "15887000"
    assert not await svc.call_entered(ch)  # once per call
    stereo = chan("1795395000.2", dialed="15889999")
    assert await svc.call_entered(stereo)
    assert stereo.executed == [("MixMonitor", ("1795395000.2.wav", "r(1795395000.2-caller.wav)t(1795395000.2-agent.wav)"))]
    other = chan("1795395000.3", dialed="15881234")
    assert not await svc.call_entered(other) and other.executed == []  # not a start: call line
    evil = chan('1.1,W(4)";rm', dialed="15887000")  # never a non-Asterisk id into a file name / options
    assert not await svc.call_entered(evil) and evil.executed == []
    await svc.idle()
    row = await svc.repo.by_call("1795395000.1")
    assert row["status"] == "recording" and row["called"] == "15887000"


async def test_ivr_card_input_is_muted_in_a_recording_started_at_call_entry(db_sessionmaker, tmp_path):
    clock = Clock()
    svc = svc_with(db_sessionmaker, tmp_path, clock=clock)
    call = make_call(queue=None)
    call.status, call.queued_at = "ivr", None
    call.dialed = call.caller_num  # the CTI's view of a Local-channel call: the caller's number
    assert await svc.call_entered(chan(call.id))
    start(svc, call, T0)  # MixMonitorStart reaches the CTI
    clock.now = T0 + 2
    await svc.sensitive_input(call.id, True, "main:card_payment")
    mute = svc.ami.actions[-1]  # telephony first: muted on the channel IVR runs on
    assert mute.name == "MixMonitorMute" and ("Channel", chan(call.id).info.channel) in mute.headers
    clock.now = T0 + 5
    await svc.sensitive_input(call.id, False, "main:card_payment")
    call.status, call.queue, call.queued_at = "queued", "billing", T0 + 6
    svc.call_changed("call.queued", call, None, T0 + 6)
    answered(svc, call, "1001", T0 + 8)
    (svc.monitor_dir / f"{call.id}.wav").write_bytes(wav([(2.0, False), (3.0, True), (5.0, False)]))
    end(svc, call, T0 + 10)
    await svc.idle()
    rec = await svc.repo.by_call(call.id)
    assert rec["muted_spans"][0]["start"] == 2.0 and rec["muted_spans"][0]["end"] == 5.0
    assert rec["agents"][0]["from"] == pytest.approx(8.0) and not rec["late_start"]
    assert rec["called"] == "15887000" and rec["policy"]["start"] == "call"  # the DID, not call.dialed
    assert rec["audio"]["clock"] == {"muted_spans": "callcore", "agents": "callcore"}  # no timestamps here


def test_called_number_prefers_the_ivr_did_over_the_local_channel_exten(db_sessionmaker, tmp_path):
    svc = svc_with(db_sessionmaker, tmp_path)
    call = make_call()
    call.dialed = "01055551234"  # Newchannel Exten of Local/01055551234@sim-caller;1
    call.ivr_context = {"flow": "main", "dialed": "15887000"}
    assert svc.facts(call, None).called == "15887000"
    call.ivr_context = None
    assert svc.facts(call, None).called == "01055551234"  # nothing better known


def test_originate_variables_follow_direction_rules(db_sessionmaker, tmp_path):
    svc = svc_with(db_sessionmaker, tmp_path)
    assert svc.originate_variables("click-to-call", "01022223333", "1001") == {"CALLCORE_RECORD": "1", "CALLCORE_REC_STEREO": "0"}
    assert svc.originate_variables("callback", "01077771234", "1001")["CALLCORE_RECORD"] == "0"  # never
    assert svc.originate_variables("callback", "01022223333", "1001")["CALLCORE_RECORD"] == "1"
    assert svc.originate_variables("agent-dial", "01022223333", "1001")["CALLCORE_RECORD"] == "0"  # plain outbound: off


# ------------------------------------------------------------------ Asterisk's clock
async def test_spans_follow_asterisks_clock_when_every_change_has_a_timestamp(db_sessionmaker, tmp_path):
    """Asterisk's clock runs twice as fast as callcore's here: the spans follow Asterisk's."""
    clock = Clock()
    svc = svc_with(db_sessionmaker, tmp_path, clock=clock)
    call = make_call()
    A0 = 1795399000.0

    def ast(t: float) -> float:
        return A0 + 2 * (t - T0)

    call.recording = True
    svc.call_changed("call.updated", call, None, T0, ast(T0))  # MixMonitorStart
    call.status, call.agent_id, call.answered_at = "talking", "1001", T0 + 1
    svc.call_changed("call.answered", call, "1001", T0 + 1, ast(T0 + 1))
    clock.now = T0 + 2
    await svc.pause(call.id, "1001", "card")
    call.recording_muted = True
    svc.call_changed("call.updated", call, None, T0 + 2, ast(T0 + 2))  # MixMonitorMute State 1
    clock.now = T0 + 3
    await svc.resume(call.id, "1001")
    call.recording_muted = False
    svc.call_changed("call.updated", call, None, T0 + 3, ast(T0 + 3))
    (svc.monitor_dir / f"{call.id}.wav").write_bytes(wav([(2.0, False), (2.0, True), (2.0, False)]))
    call.status, call.outcome, call.ended_at = "ended", "answered", T0 + 4
    svc.call_changed("call.ended", call, "1001", T0 + 4, ast(T0 + 4))
    await svc.idle()
    rec = await svc.repo.by_call(call.id)
    (span,) = rec["muted_spans"]
    assert (span["start"], span["end"]) == (2.0, 4.0)  # Asterisk seconds of audio (bridged from A0+2)
    assert span["callcore"] == {"start": 1.0, "end": 2.0}
    assert rec["audio"]["clock"] == {"muted_spans": "asterisk", "agents": "asterisk"}
    assert rec["audio"]["expected_seconds"] == 6.0
    assert rec["agents"][0]["from"] == 0.0 and rec["agents"][0]["to"] == 6.0


async def test_one_change_without_timestamp_falls_back_to_callcores_clock(db_sessionmaker, tmp_path):
    clock = Clock()
    svc = svc_with(db_sessionmaker, tmp_path, clock=clock)
    call = make_call()
    call.recording = True
    svc.call_changed("call.updated", call, None, T0, 1795399000.0)
    call.status, call.agent_id, call.answered_at = "talking", "1001", T0 + 1
    svc.call_changed("call.answered", call, "1001", T0 + 1, None)  # an event without Timestamp
    clock.now = T0 + 2
    await svc.pause(call.id, "1001", "card")
    clock.now = T0 + 3
    await svc.resume(call.id, "1001")
    (svc.monitor_dir / f"{call.id}.wav").write_bytes(wav([(3.0, False)]))
    call.status, call.outcome, call.ended_at = "ended", "answered", T0 + 4
    svc.call_changed("call.ended", call, "1001", T0 + 4, 1795399008.0)
    await svc.idle()
    rec = await svc.repo.by_call(call.id)
    assert rec["audio"]["clock"] == {"muted_spans": "callcore", "agents": "callcore"}
    assert (rec["muted_spans"][0]["start"], rec["muted_spans"][0]["end"]) == (1.0, 2.0)
