"""The real Asterisk 20 captures (live-2026-12): the AMI stream callcore saw, through CtiState and
the facts subscriber, and app_queue's own queue_log of the same calls give the same queue figures."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from cti.state import CtiState
from cti.testing import capture_events, list_events
from reports import formulas as fm
from reports.facts import fold_visits, visits_from_call
from reports.queuelog import parse_file
from reports.service import LiveCounters, ReportConfig
from reports.subscriber import FactsSubscriber

LIVE = Path(__file__).resolve().parents[2] / "fixtures" / "asterisk-captures" / "live-2026-12"
CAPTURES = sorted(p.stem for p in LIVE.glob("*.queue_log"))
COUNTS = ["offered", "answered", "abandoned", "short_abandoned", "timeouts", "asa_seconds", "service_level_pct",
          "longest_wait_seconds", "answered_in_sl"]
#: where talk cannot agree, and why (the replay's clock is synthetic: 0.5 s per event)
TALK_DIFFERS = {
    "ami-blind-transfer-to-queue": "sales' part ends at the Redirect: measured on the replay clock",
    "ami-hold-unhold-agent-hangup": "no AgentComplete after Redirect+Bridge; app_queue logs COMPLETEAGENT at the unhold",
}


class Run:
    def __init__(self) -> None:
        self.state = CtiState(default_wrapup_seconds=5)
        self.facts: dict[str, object] = {}
        self.sub = FactsSubscriber(self.state, self.sink)
        self.now = 1_796_000_000.0

    def sink(self, facts) -> None:
        for f in facts:
            self.facts.setdefault(f.key, f)

    def feed(self, events, step: float = 0.5) -> None:
        for e in events:
            for ch in self.state.apply(e, self.now):
                self.sub(ch, self.now)
            self.now += step

    def queues(self) -> dict[str, dict]:
        return {m.queue: m.to_dict() for m in fm.queues_report(fold_visits(self.facts.values()))}


@pytest.mark.parametrize("name", CAPTURES)
def test_ami_stream_and_queue_log_agree(name):
    run = Run()
    run.feed(capture_events(LIVE / f"{name}.raw"))
    from_ami = run.queues()
    from_log = {m.queue: m.to_dict() for m in fm.queues_report(parse_file(LIVE / f"{name}.queue_log").visits)}
    assert sorted(from_ami) == sorted(from_log)
    for q in from_log:
        assert {k: from_ami[q][k] for k in COUNTS} == {k: from_log[q][k] for k in COUNTS}, q
        if name not in TALK_DIFFERS:
            assert from_ami[q]["avg_talk_seconds"] + from_ami[q]["avg_hold_seconds"] == pytest.approx(
                from_log[q]["avg_talk_seconds"] + from_log[q]["avg_hold_seconds"]), q


def test_every_capture_has_its_queue_log():
    assert len(CAPTURES) == 11 and all((LIVE / f"{n}.raw").is_file() for n in CAPTURES)


def test_queue_log_reads_retries_and_transfers():
    retries = parse_file(LIVE / "ami-pjsip-phone-hold-unreachable-retries.queue_log")
    (v,) = retries.visits
    assert (v.wait, v.talk, v.agent_id, v.outcome) == (22.0, 15.0, "1001", "answered")
    to_queue = parse_file(LIVE / "ami-blind-transfer-to-queue.queue_log")
    sales, support = to_queue.visits
    # app_queue logs sales' talk (16 s) at the final hangup, including support's part; the visit ended
    # when the caller entered support (4 s after CONNECT)
    assert (sales.talk, sales.transferred, support.talk) == (4.0, True, 10.0)
    assert (sales.wrapup, support.wrapup) == (5.0, 5.0)  # PAUSE wrapup → REMOVEMEMBER
    att = parse_file(LIVE / "ami-attended-transfer.queue_log")
    assert (att.visits[0].talk, att.visits[0].transferred, att.visits[0].wrapup) == (10.0, True, 11.0)


def test_resync_keeps_answered_and_talk_consistent(captures_dir):
    """Regression (issue 16): after an AMI resync answered_today was taken from QueueParams while the
    talk total kept growing (30/20/20 s showed avg_talk_seconds 70)."""
    run = Run()
    config = ReportConfig()
    live = LiveCounters(config)
    run.sink = lambda facts: (live.apply(facts, run.now), [run.facts.setdefault(f.key, f) for f in facts])
    run.sub.sink = run.sink
    run.state.counters = live.queue_today
    for name in ("ami-mixmonitor-mute", "ami-pjsip-call", "ami-hold-caller-hangup-on-hold"):  # talk 15, 8, 7
        run.feed(capture_events(LIVE / f"{name}.raw"))
    before = run.state.queue_stats("sales", run.now)
    assert (before["answered_today"], before["avg_talk_seconds"]) == (3, 10.0)
    snap = captures_dir / "ami-resync-snapshot.raw"
    snapshot = [e for a in ("resync-channels", "resync-queues", "resync-summary") for e in list_events(snap, a)]
    assert [e.completed for e in snapshot if getattr(e, "queue", None) == "sales" and hasattr(e, "completed")] == [2]
    for ch in run.state.rebuild(snapshot, run.now):
        run.sub(ch, run.now)
    after = run.state.queue_stats("sales", run.now)
    # + the call the snapshot shows talking in sales (answered while callcore was away); still
    # talking, so not in the average yet
    assert (after["answered_today"], after["avg_talk_seconds"]) == (4, 10.0)
    # the same streams again (a replay after a reconnect): nothing counts twice
    calls = lambda: {k for k in run.facts if k.startswith(("v:", "c:"))}  # noqa: E731
    keys = calls()
    for name in ("ami-mixmonitor-mute", "ami-pjsip-call"):
        run.feed(capture_events(LIVE / f"{name}.raw"))
    assert calls() == keys
    assert run.state.queue_stats("sales", run.now)["answered_today"] == 4


def test_resync_without_report_counters_no_longer_takes_queueparams_completed(captures_dir):
    s = CtiState()
    now = 1_796_000_000.0
    for name in ("ami-mixmonitor-mute", "ami-pjsip-call", "ami-hold-caller-hangup-on-hold"):
        for e in capture_events(LIVE / f"{name}.raw"):
            s.apply(e, now)
            now += 0.5
    s.rebuild(list_events(captures_dir / "ami-resync-snapshot.raw", "resync-queues"), now)
    assert s.queue_stats("sales", now)["avg_talk_seconds"] == 10  # (15 + 8 + 7) / 3, not 30 / Completed


def _call(events, **kw):
    base = dict(id="x", caller_num="010", ended_at=None, queue="sales", queued_at=None, started_at=0.0,
                answered_at=None, agent_id=None)
    base.update(kw)
    return SimpleNamespace(events=events, **base)


def test_a_queue_timeout_on_ami_is_not_an_abandon():
    """Asterisk's queue timeout reaches AMI as QueueCallerAbandon + Leave (queue_log: EXITWITHTIMEOUT):
    the caller goes on in the dialplan (voicemail) instead of hanging up."""
    ev = [{"at": 0.0, "event": "queued", "queue": "sales"}, {"at": 30.0, "event": "abandoned", "hold_time": 30}]
    (timeout,) = visits_from_call(_call(ev, ended_at=75.0), 80.0)
    (abandon,) = visits_from_call(_call(ev, ended_at=30.2), 80.0)
    assert (timeout.outcome, timeout.wait) == ("timeout", 30.0)
    assert (abandon.outcome, abandon.wait) == ("abandoned", 30.0)


def test_a_call_first_seen_by_a_resync_still_counts():
    call = _call([{"at": 50.0, "event": "rebuilt"}], queued_at=None, started_at=40.0, answered_at=50.0,
                 agent_id="1001", ended_at=90.0)
    (v,) = visits_from_call(call, 100.0)
    assert (v.entered_at, v.outcome, v.agent_id, v.completed, v.talk) == (40.0, "answered", "1001", True, 40.0)


def test_the_phones_own_hold_counts_as_hold():
    """ami-pjsip-phone-hold: the phone holds by re-INVITE (Hold/Unhold on PJSIP/1001-…): the visit's
    hold time is that span, inside the talk (replay clock: 0.5 s per event)."""
    run = Run()
    run.feed(capture_events(LIVE / "ami-pjsip-phone-hold.raw"))
    (v,) = fold_visits(run.facts.values())
    assert v.talk == 15.0 and 0 < v.hold < v.talk


def test_settings_make_the_report_config():
    from callcore.settings import Settings

    s = Settings(report_timezone="Asia/Seoul", report_fcr_window_hours=48,
                 report_queues={"sales": {"service_level_seconds": 30, "service_level_formula": "answered",
                                          "short_abandon_seconds": 3, "target_service_level_pct": 90}})
    c = ReportConfig.from_settings(s)
    assert c.timezone == "Asia/Seoul" and c.fcr_window_seconds == 48 * 3600
    assert c.for_queue("sales") == fm.QueueConfig(30, "answered", 3, True) and c.target_sl_pct == {"sales": 90}
    assert c.for_queue("support") == fm.QueueConfig()
    with pytest.raises(ValueError, match="service_level_formula must be one of"):
        Settings(report_queues={"sales": {"service_level_formula": "best"}})
    with pytest.raises(ValueError, match="unknown time zone"):
        Settings(report_timezone="Mars/Olympus")


def test_a_call_found_by_a_resync_keeps_its_visit_numbers_when_it_moves_on():
    """A resync finds a caller talking in sales; later the call is transferred to support. Visit 0
    stays the sales one (its facts were written at the resync), support is visit 1."""
    from reports.facts import facts_for_call, prior_visit

    call = _call([{"at": 50.0, "event": "rebuilt"}], queued_at=None, started_at=40.0, answered_at=50.0,
                 agent_id="1001", outcome="answered", direction="inbound")
    prior = prior_visit(call)
    early = {f.key for f in facts_for_call(call, 50.0, final=False, prior=prior)}
    call.events += [{"at": 60.0, "event": "transferred", "type": "blind"},
                    {"at": 60.5, "event": "queued", "queue": "support"},
                    {"at": 62.0, "event": "answered", "agent_id": "1002", "hold_time": 1}]
    call.queue, call.queued_at, call.agent_id, call.ended_at = "support", 60.5, "1002", 90.0
    facts = facts_for_call(call, 90.0, final=True, prior=prior)
    by_key = {f.key: f for f in facts}
    assert early <= set(by_key)
    assert (by_key["v:x:0:entered"].queue, by_key["v:x:1:entered"].queue) == ("sales", "support")
    assert by_key["v:x:0:completed"].data["talk"] == 10.0 and by_key["v:x:0:completed"].data["transferred"]
    assert by_key["v:x:1:answered"].agent_id == "1002"
