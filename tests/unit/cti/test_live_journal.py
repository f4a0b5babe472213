"""Calls in progress survive a crash of callcore (issue 12, journal/live.py): the live-call
journal keeps each call's newest picture; after a restart the first resync reconciles them —
a call that ended while callcore was down is stored once, with the history it had."""

from __future__ import annotations

import pickle

import pytest

from cti.ami import events as ev
from cti.testing import capture_events, ok
from journal.live import LiveCallJournal
from journal.service import CallJournal
from tests.conftest import CAPTURES

from .conftest import add_agents

pytestmark = pytest.mark.db


def _until_answered(service, clock):
    events = capture_events(CAPTURES / "ami-ivr-queue-agent.raw")
    i = next(i for i, e in enumerate(events) if isinstance(e, ev.AgentConnect))
    for e in events[: i + 1]:
        service.handle_event(e)
        clock.advance(0.5)
    (call,) = service.state.calls.values()
    assert call.answered_at is not None and call.agent_id
    return call


async def _restart(service, path):
    """What a new process does: an empty picture of the calls, the journal read back."""
    service.state.calls.clear()
    service.state.ended.clear()
    journal = CallJournal(path)
    await journal.open()
    live = LiveCallJournal(journal, service.state)
    await live.start()
    service.resyncer.before_first_rebuild = live.before_rebuild
    return journal, live


async def _journaled_call(service, clock, tmp_path):
    """A process that journals its live calls, with one answered call."""
    await add_agents(service)
    path = tmp_path / "journal.sqlite3"
    journal = CallJournal(path)
    await journal.open()
    live = LiveCallJournal(journal, service.state)
    service.dispatcher.subscribe("live-call-journal", live)
    return path, journal, live, _until_answered(service, clock)


def _snapshot(ami, channels=()):
    ami.script("CoreShowChannels", ok("CoreShowChannels", events=list(channels)))
    ami.script("QueueStatus", ok("QueueStatus", events=[]))
    ami.script("QueueSummary", ok("QueueSummary", events=[]))


async def test_a_call_that_ended_while_callcore_was_dead_is_stored_once_with_its_history(service, ami, clock, repo, tmp_path):
    path, journal, live, call = await _journaled_call(service, clock, tmp_path)
    assert await live.flush() == 1
    (row,) = await journal.live()
    assert row[0] == call.id and row[2].answered_at == call.answered_at
    await journal.close()  # kill -9: nothing else happens; the file is all that is left

    journal2, live2 = await _restart(service, path)
    assert [c.id for c in live2.recovered] == [call.id]
    _snapshot(ami)  # Asterisk no longer has the call: it ended while callcore was down
    report = await service.resync()
    await service.idle()
    assert report["calls_lost"] == 1 and live2.restored == 1
    stored = await repo.get_call(call.id)
    assert stored is not None and stored["outcome"] == "answered"
    assert stored["agent_id"] == call.agent_id and stored["caller_num"] == call.caller_num
    assert stored["queue"] == call.queue and "disconnect" in (stored["end_cause_txt"] or "")
    assert len([c for c in await repo.list_calls() if c["call_id"] == call.id]) == 1
    await journal2.close()


async def test_a_call_asterisk_still_has_goes_on_with_its_history(service, ami, clock, tmp_path):
    path, journal, live, call = await _journaled_call(service, clock, tmp_path)
    await live.flush()
    channels = [ev.translate(f) for f in _channel_frames(call)]
    await journal.close()

    journal2, live2 = await _restart(service, path)
    _snapshot(ami, channels)
    await service.resync()
    again = service.state.calls[call.id]
    assert again.answered_at == call.answered_at and again.queued_at == call.queued_at  # not "rebuilt" from zero
    assert again.status != "ended"
    await journal2.close()


def _channel_frames(call):
    """CoreShowChannel frames of the call's live channels (as Asterisk answers after the restart)."""
    frames = []
    for uid, leg in call.legs.items():
        frames.append({"Event": "CoreShowChannel", "Channel": leg.channel, "Uniqueid": uid, "Linkedid": call.id,
                       "ChannelState": "6", "ChannelStateDesc": "Up", "Duration": "00:00:30",
                       "CallerIDNum": call.caller_num or "", "BridgeId": call.bridge_id or ""})
    return frames


async def test_the_ended_record_removes_the_live_picture_in_one_transaction(tmp_path):
    journal = CallJournal(tmp_path / "j.sqlite3")
    await journal.open()
    await journal.put_live([("c1", 1.0, pickle.dumps({"id": "c1"})), ("c2", 1.0, pickle.dumps({"id": "c2"}))])
    assert sorted(r[0] for r in await journal.live()) == ["c1", "c2"]
    await journal.append("c1", {"id": "c1", "ended": True}, 2.0)
    assert [r[0] for r in await journal.live()] == ["c2"] and journal.depth == 1
    await journal.close()
