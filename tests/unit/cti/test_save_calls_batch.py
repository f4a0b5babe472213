"""Ended calls stored in batches (issue 18): ``CtiRepository.save_calls`` is one transaction
for N calls on SQLite and PostgreSQL, all or nothing; the journal (``JournaledCalls``) and the
write-behind (``CallPersistence``) use it, and a failed batch is stored call by call, so one bad
row never loses the others."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import event, func, select

from cti.models import CallEventRow, CallLegRow, CallRow
from cti.repository import CtiRepository
from cti.state import Call, CtiState, Leg
from cti.subscribers.persistence import CallPersistence
from cti.tasks import TaskOwner
from journal.service import CallJournal, JournaledCalls
from tests.unit.cti.test_persistence_writebehind import Customers, Preload, Store, _end


def _call(n: int, **kw: Any) -> Call:
    call = Call(id=f"1795395{n:03d}.1", started_at=1_795_395_000.0 + n, caller_num="01055550000", **kw)
    call.legs[call.id] = Leg(call.id, f"PJSIP/trunk-{n:04d}", "caller")
    call.log(call.started_at, "created", channel=f"PJSIP/trunk-{n:04d}")
    call.status, call.ended_at, call.outcome = "ended", call.started_at + 30, "answered"
    return call


def _bad(n: int) -> Call:
    call = _call(n)
    call.events.append({"at": call.started_at, "event": "weird", "blob": object()})  # not JSON: refused at flush
    return call


def _commits(engine) -> list[int]:
    seen: list[int] = []
    event.listen(engine.sync_engine, "commit", lambda conn: seen.append(1))
    return seen


async def _count(sm, model) -> int:
    async with sm() as s:
        return int(await s.scalar(select(func.count()).select_from(model)))


async def test_save_calls_is_one_transaction_and_replaces_like_save_call(db_engine, db_sessionmaker):
    repo = CtiRepository(db_sessionmaker)
    await repo.save_call(_call(1, disposition="old"))
    commits = _commits(db_engine)
    newer = _call(1, disposition="sale")
    await repo.save_calls([_call(0), newer, _call(2), _call(2, notes="last picture")])
    assert len(commits) == 1
    assert await _count(db_sessionmaker, CallRow) == 3
    assert await _count(db_sessionmaker, CallLegRow) == 3 and await _count(db_sessionmaker, CallEventRow) == 3
    assert (await repo.get_call(newer.id))["disposition"] == "sale"  # replaced, not duplicated
    assert (await repo.get_call(_call(2).id))["notes"] == "last picture"  # a call given twice: its last picture
    await repo.save_calls([])  # nothing to do
    assert len(commits) == 1


async def test_save_calls_is_all_or_nothing(db_sessionmaker):
    repo = CtiRepository(db_sessionmaker)
    try:
        await repo.save_calls([_call(0), _bad(1), _call(2)])
    except Exception:  # noqa: BLE001 - the driver's own error, whichever the store
        pass
    else:
        raise AssertionError("a row that cannot be stored must fail the batch")
    assert await _count(db_sessionmaker, CallRow) == 0


async def test_the_journal_stores_a_batch_in_one_database_transaction(db_engine, db_sessionmaker, tmp_path):
    store = JournaledCalls(CallJournal(tmp_path / "j.sqlite3"), CtiRepository(db_sessionmaker), first_wait=0.01)
    await store.start()
    try:
        commits = _commits(db_engine)
        await store.save_calls([_call(n) for n in range(20)])
        assert len(commits) == 1 and store.direct == 20 and store.journal.depth == 0
        assert await _count(db_sessionmaker, CallRow) == 20
    finally:
        await store.stop()


async def test_a_failed_batch_falls_back_to_one_write_per_call(db_sessionmaker, tmp_path, caplog):
    repo = CtiRepository(db_sessionmaker)
    store = JournaledCalls(CallJournal(tmp_path / "j.sqlite3"), repo, first_wait=5, max_wait=5)
    await store.start()
    try:
        bad = _bad(3)
        await store.save_calls([_call(n) for n in range(3)] + [bad] + [_call(n) for n in range(4, 6)])
        assert await _count(db_sessionmaker, CallRow) == 5  # the others are stored
        assert store.direct == 5 and store.journal.depth == 1  # the bad one waits in the journal (never lost)
        assert [cid for _, cid, _ in await store.journal.oldest(10)] == [bad.id]
        assert "writing them one by one" in caplog.text
    finally:
        await store.stop()


class BatchStore(Store):
    """The write-behind's store port with ``save_calls``; ``fail_batches`` batches fail first."""

    def __init__(self, fail_batches: int = 0, **kw: Any) -> None:
        super().__init__(**kw)
        self.batches: list[list[str]] = []
        self.fail_batches = fail_batches

    async def save_calls(self, calls: list[Call]) -> None:
        await asyncio.sleep(0)
        if self.fail_batches:
            self.fail_batches -= 1
            raise ConnectionError("batch refused")
        self.batches.append([c.id for c in calls])
        self.saved.extend(c.id for c in calls)


def _setup(store: Store, **kw: Any) -> tuple[CallPersistence, CtiState, TaskOwner, Preload]:
    state, tasks, preload = CtiState(), TaskOwner("test"), Preload()
    persistence = CallPersistence(state, store, Customers(), preload, tasks, backoff=0.001, **kw)  # type: ignore[arg-type]
    return persistence, state, tasks, preload


async def test_a_burst_of_ended_calls_costs_a_few_transactions_not_one_per_call() -> None:
    store = BatchStore()
    persistence, state, tasks, preload = _setup(store, batch=50)
    ids = [f"b{i:03d}" for i in range(120)]
    for cid in ids:
        _end(state, persistence, cid)
    await tasks.stop(10.0)
    assert sorted(store.saved) == ids and store.attempts == {}  # no per-call save at all
    assert len(store.batches) == 3 and max(map(len, store.batches)) == 50  # 120 calls: 3 transactions
    assert persistence.batches == 3 and not persistence.pending and persistence.failures == 0
    assert preload.forgotten.count("0105550000") == 120


async def test_a_failed_batch_is_stored_call_by_call_by_the_write_behind(caplog) -> None:
    store = BatchStore(fail_batches=1, fail_first={"f003": 1})  # and one call's first single write fails too
    persistence, state, tasks, _ = _setup(store, batch=50)
    ids = [f"f{i:03d}" for i in range(10)]
    for cid in ids:
        _end(state, persistence, cid)
    await tasks.stop(10.0)
    assert sorted(store.saved) == ids and persistence.batch_fallbacks == 1 and persistence.failures == 0
    assert store.attempts["f003"] == 2 and not persistence.pending
    assert "one by one" in caplog.text


async def test_a_call_ended_again_while_its_batch_is_written_is_stored_again() -> None:
    store = BatchStore()
    persistence, state, tasks, _ = _setup(store, batch=50)
    for i in range(5):
        _end(state, persistence, f"a{i}")
    await asyncio.sleep(0)  # the writer has taken the batch
    again = _end(state, persistence, "a2")
    again.disposition = "sale"
    await tasks.stop(10.0)
    assert store.saved.count("a2") == 2 and store.attempts.get("a2") == 1  # the newer picture written after
    assert not persistence.pending


async def test_stored_calls_leave_no_reference_cycles(db_sessionmaker):
    """Issue 18 round four: the rows of a stored call form no reference cycle (no back-reference
    from a leg or an event to its call), so they are freed by reference counting as soon as the
    transaction ends — even when the GC freezer froze them mid-flight, where only the hourly thaw
    would have reclaimed a cycle (44 cyclic objects per stored call before: the ORM rows, their
    instance states and collections). Counts, not timings."""
    import gc

    from cti.models import CallEventRow, CallLegRow, CallRow

    repo = CtiRepository(db_sessionmaker)
    await repo.save_calls([_call(n) for n in range(3)])  # warm-up: statement caches, pool
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for k in range(4):
            await repo.save_calls([_call(100 + 10 * k + n) for n in range(10)])
        await repo.save_calls([_call(100), _call(101)])  # replaces stored calls (delete + insert)
        gc.collect()
        rows = [o for o in gc.garbage if isinstance(o, (CallRow, CallLegRow, CallEventRow))]
        per_call = len(gc.garbage) / 42
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert rows == []
    assert per_call < 5  # statement-level leftovers only (44 per call with the back-references)


async def test_a_batch_is_flushed_a_few_calls_at_a_time_in_one_transaction(db_engine, db_sessionmaker):
    """The ORM's unit of work runs on the event loop: a batch is flushed FLUSH_CALLS calls at a time
    (an await between two, so no single step holds the loop for the whole batch), still one
    transaction and one commit."""
    from cti.repository import FLUSH_CALLS

    repo = CtiRepository(db_sessionmaker)
    commits = _commits(db_engine)
    inserts: list[str] = []
    event.listen(
        db_engine.sync_engine, "before_cursor_execute",
        lambda conn, cursor, statement, *a: inserts.append(statement) if statement.lstrip().upper().startswith("INSERT INTO CTI_CALLS ") else None,
    )
    n = 2 * FLUSH_CALLS + 3
    await repo.save_calls([_call(i) for i in range(n)])
    assert len(commits) == 1
    assert len(inserts) == 3  # ceil(n / FLUSH_CALLS) flushes
    assert await _count(db_sessionmaker, CallRow) == n
