"""Call persistence is a write-behind (issue 18, round three): ended calls are queued and
stored by at most ``writers`` owned tasks, oldest first; nothing is lost on shutdown or on
a database error (retried), and a call ended again is stored again, never by two writers
at once."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from cti.state import Call, Change, CtiState
from cti.subscribers.persistence import CallPersistence
from cti.tasks import TaskOwner


class Customers:
    async def lookup_customer(self, phone: str) -> dict[str, Any] | None:
        return None

    def forget(self, *phones: str | None) -> None:
        pass


class Preload:
    def __init__(self) -> None:
        self.forgotten: list[str | None] = []

    async def ivr_context(self, uniqueid: str) -> dict[str, Any] | None:
        return None

    def forget_previous(self, *phones: str | None) -> None:
        self.forgotten.extend(phones)


class Store:
    """save_call waits ``delay`` seconds; fails the first ``fail_first[id]`` attempts of a call."""

    def __init__(self, delay: float = 0.0, fail_first: dict[str, int] | None = None) -> None:
        self.delay = delay
        self.fail_first = dict(fail_first or {})
        self.saved: list[str] = []
        self.attempts: dict[str, int] = {}
        self.running = 0
        self.most = 0
        self.writing: set[str] = set()
        self.overlap = 0  # two saves of the same call at once

    async def save_call(self, call: Call) -> None:
        self.attempts[call.id] = self.attempts.get(call.id, 0) + 1
        if call.id in self.writing:
            self.overlap += 1
        self.writing.add(call.id)
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await asyncio.sleep(self.delay)
            if self.fail_first.get(call.id, 0) > 0:
                self.fail_first[call.id] -= 1
                raise ConnectionError("database down")
            self.saved.append(call.id)
        finally:
            self.running -= 1
            self.writing.discard(call.id)


def _end(state: CtiState, persistence: CallPersistence, call_id: str) -> Call:
    call = Call(id=call_id, started_at=0.0, caller_num="0105550000", direction="outbound")
    state.ended[call_id] = call
    persistence(Change("call.ended", call_id=call_id), 0.0)
    return call


def _setup(store: Store, **kw: Any) -> tuple[CallPersistence, CtiState, TaskOwner, Preload]:
    state, tasks, preload = CtiState(), TaskOwner("test"), Preload()
    persistence = CallPersistence(state, store, Customers(), preload, tasks, backoff=0.001, **kw)  # type: ignore[arg-type]
    return persistence, state, tasks, preload


async def test_ended_calls_are_stored_in_order_by_at_most_writers_tasks() -> None:
    store = Store(delay=0.001)
    persistence, state, tasks, preload = _setup(store, writers=3)
    ids = [f"c{i:03d}" for i in range(100)]
    for cid in ids:
        _end(state, persistence, cid)
    assert len(tasks) == 3  # not one task per ended call
    assert persistence.queued == 100 and len(persistence.pending) == 100  # the writers have not run yet
    await tasks.stop(10.0)  # the shutdown flush
    assert sorted(store.saved) == ids and store.most == 3
    assert store.saved[:3] == ids[:3]  # oldest first
    assert persistence.failures == 0 and not persistence.pending and len(tasks) == 0
    assert preload.forgotten.count("0105550000") == 100


async def test_shutdown_flush_stores_everything_queued() -> None:
    store = Store(delay=0.002)
    persistence, state, tasks, _ = _setup(store, writers=1)
    for i in range(50):
        _end(state, persistence, f"s{i}")
    await asyncio.sleep(0)
    await tasks.stop(10.0)
    assert len(store.saved) == 50 and persistence.failures == 0


async def test_a_database_error_is_retried_and_nothing_is_lost() -> None:
    store = Store(fail_first={"b": 2})
    persistence, state, tasks, _ = _setup(store, writers=2)
    for cid in ("a", "b", "c"):
        _end(state, persistence, cid)
    await persistence.landed("b", timeout=5.0)
    assert "b" in store.saved and store.attempts["b"] == 3
    await tasks.stop(5.0)
    assert sorted(store.saved) == ["a", "b", "c"] and persistence.failures == 0


async def test_a_call_whose_writes_all_fail_is_counted() -> None:
    store = Store(fail_first={"x": 99})
    persistence, state, tasks, _ = _setup(store, writers=1)
    _end(state, persistence, "x")
    _end(state, persistence, "y")
    await tasks.stop(5.0)
    assert store.saved == ["y"] and store.attempts["x"] == 3 and persistence.failures == 1


async def test_landed_waits_for_the_record() -> None:
    store = Store(delay=0.01)
    persistence, state, tasks, _ = _setup(store, writers=1)
    for cid in ("p", "q", "r"):
        _end(state, persistence, cid)
    await persistence.landed("r", timeout=5.0)
    assert store.saved == ["p", "q", "r"]
    await tasks.stop(1.0)


async def test_a_call_ended_again_is_stored_again_never_twice_at_once() -> None:
    store = Store(delay=0.01)
    persistence, state, tasks, _ = _setup(store, writers=4)
    first = _end(state, persistence, "twice")
    await asyncio.sleep(0.002)  # being written now
    second = _end(state, persistence, "twice")
    assert second is not first
    _end(state, persistence, "other")
    await tasks.stop(5.0)
    assert store.saved.count("twice") == 2 and store.overlap == 0


async def test_a_call_ended_again_while_queued_is_stored_once_with_the_newest_picture() -> None:
    store = Store(delay=0.01)
    persistence, state, tasks, _ = _setup(store, writers=1)
    _end(state, persistence, "busy")
    _end(state, persistence, "late")
    newer = _end(state, persistence, "late")  # still queued behind "busy"
    newer.outcome = "answered"
    await tasks.stop(5.0)
    assert store.saved == ["busy", "late"]


async def test_calls_left_when_the_flush_times_out_are_counted_and_logged(caplog) -> None:
    store = Store(delay=0.05)
    persistence, state, tasks, _ = _setup(store, writers=1)
    for i in range(10):
        _end(state, persistence, f"t{i}")
    with caplog.at_level(logging.ERROR, logger="callcore.cti"):
        await tasks.stop(0.08)
    assert 1 <= len(store.saved) < 10
    assert persistence.failures == 10 - len(store.saved)  # the one being written when cancelled included
    assert not persistence.pending
    assert "not stored" in caplog.text


async def test_a_full_queue_gives_the_call_its_own_task() -> None:
    store = Store(delay=0.001)
    persistence, state, tasks, _ = _setup(store, writers=1, max_queue=2)
    for i in range(5):
        _end(state, persistence, f"f{i}")
    assert persistence.overflowed == 3  # the writer has not run yet: two queued, three on their own
    await tasks.stop(5.0)
    assert sorted(store.saved) == [f"f{i}" for i in range(5)]
