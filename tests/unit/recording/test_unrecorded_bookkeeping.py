"""Ended calls that were never recorded (issue 18): a call this process saw from its start
costs no database lookup at its end; a call that began before this process (a restart, a
take-over: rebuilt by the resync, or seen before the first resync) is still looked up, so a
recording row left open by the previous process is closed."""

from __future__ import annotations

from recording.subscriber import RecordingSubscriber
from tests.unit.recording.helpers import T0, Clock, answered, end, make_call, make_service, start


def _count_lookups(svc) -> list[str]:
    seen: list[str] = []
    by_call = svc.repo.by_call

    async def counting(call_id):
        seen.append(call_id)
        return await by_call(call_id)

    svc.repo.by_call = counting
    return seen


def _born(svc, call, how: str) -> None:
    call.log(T0, how, channel=call.legs[call.id].channel)
    svc.call_changed("call.created", call, None, T0)


async def test_a_call_seen_from_its_start_and_never_recorded_costs_no_lookup(db_sessionmaker, tmp_path):
    svc = make_service(db_sessionmaker, tmp_path, clock=Clock())
    svc.synced = lambda: True  # the first resync is done
    lookups = _count_lookups(svc)
    calls = [make_call(f"1795395000.{n}") for n in range(1, 6)]
    for call in calls:
        _born(svc, call, "created")
        answered(svc, call, "1001", T0 + 1)
        end(svc, call, T0 + 9)
    await svc.idle()
    assert lookups == [] and svc.unrecorded_skipped == 5 and svc.unrecorded_lookups == 0
    assert svc._fresh == set()  # forgotten at their end
    assert [await svc.repo.by_call(c.id) for c in calls] == [None] * 5


async def test_a_recorded_call_seen_from_its_start_is_still_finished(db_sessionmaker, tmp_path):
    clock = Clock()
    svc = make_service(db_sessionmaker, tmp_path, clock=clock)
    svc.synced = lambda: True
    call = make_call()
    _born(svc, call, "created")
    start(svc, call, T0)  # MixMonitorStart: followed through ``live``
    answered(svc, call, "1001", T0 + 1)
    end(svc, call, T0 + 5)
    await svc.idle()
    assert (await svc.repo.by_call(call.id))["status"] == "pending" and svc.unrecorded_skipped == 0


async def _row_left_by_a_previous_process(db_sessionmaker, tmp_path, clock, call) -> None:
    first = make_service(db_sessionmaker, tmp_path, clock=clock)
    start(first, call, T0)
    answered(first, call, "1001", T0 + 1)
    await first.idle()
    assert (await first.repo.by_call(call.id))["status"] == "recording"  # then that process dies


async def test_calls_from_before_this_process_are_still_looked_up_and_closed(db_sessionmaker, tmp_path):
    clock = Clock()
    rebuilt, early, restored = make_call("1795395000.1"), make_call("1795395000.2"), make_call("1795395000.3")
    for call in (rebuilt, early, restored):
        await _row_left_by_a_previous_process(db_sessionmaker, tmp_path, clock, call)
    second = make_service(db_sessionmaker, tmp_path, clock=clock)
    synced = False
    second.synced = lambda: synced
    lookups = _count_lookups(second)
    for call in (rebuilt, early, restored):  # the new process's own picture: not recording (no MixMonitorStart seen)
        call.recording = False
        call.events.clear()
    _born(second, early, "created")  # an event of the ongoing call before the first resync
    synced = True
    _born(second, rebuilt, "rebuilt")  # found by the resync
    restored.log(T0, "created")  # a picture from the live-call journal: no call.created in this process
    for call in (rebuilt, early, restored):
        end(second, call, T0 + 30)
    await second.idle()
    assert sorted(lookups) == sorted([rebuilt.id, early.id, restored.id]) and second.unrecorded_lookups == 3
    for call in (rebuilt, early, restored):
        assert (await second.repo.by_call(call.id))["status"] == "pending", call.id  # the open row is closed


async def test_without_the_resync_signal_every_unrecorded_end_is_looked_up(db_sessionmaker, tmp_path):
    svc = make_service(db_sessionmaker, tmp_path, clock=Clock())  # ``synced`` not wired: the safe old behaviour
    lookups = _count_lookups(svc)
    call = make_call()
    _born(svc, call, "created")
    end(svc, call, T0 + 3, outcome="unanswered")
    await svc.idle()
    assert lookups == [call.id] and svc.unrecorded_skipped == 0


class _State:
    def __init__(self, call) -> None:
        self.calls, self.ended = {call.id: call}, {}


class _Change:
    def __init__(self, kind, call_id) -> None:
        self.kind, self.call_id, self.agent_id = kind, call_id, None


def test_the_subscriber_hands_call_created_to_the_service():
    heard = []

    class Service:
        def call_changed(self, kind, call, agent_id, now, ast=None):
            heard.append((kind, call.id))

    call = make_call()
    assert "call.created" in RecordingSubscriber.KINDS
    RecordingSubscriber(_State(call), Service())(_Change("call.created", call.id), T0)
    assert heard == [("call.created", call.id)]
