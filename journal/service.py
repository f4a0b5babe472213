"""The call journal: ended-call records are made durable on local disk *before* the
database write, and drained to the database in order (issue 12).

Where it sits: the CTI persistence subscriber (``cti/subscribers/persistence.py``)
stores every ended call through a *call store*; the composition root hands it a
:class:`JournaledCalls` instead of the repository. ``save_call``:

1. appends the record to the journal: a SQLite file ``<data_dir>/journal.sqlite3``
   in WAL mode with ``synchronous=FULL`` (every commit is fsync'ed), one row per
   call keyed by the call id (``INSERT OR REPLACE``: a second save of the same call
   replaces the first — no duplicates);
2. when nothing older is waiting, writes the call to the database at once and
   removes it from the journal (the normal case: one extra local write);
3. otherwise (database down, or a backlog) leaves it to the drainer, which writes
   the oldest first, retrying with the backoff of ``callcore/retry.py`` for as
   long as it takes, and removes each row only after the database accepted it.

A crash (``kill -9``) after step 1 loses nothing: the next start drains what the
journal holds. The database write itself is idempotent (``save_call`` replaces a
stored call), so a crash between the database commit and the journal delete only
writes the call again.

One write of a call at a time (issue 18): the direct write and the drainer never write the
same call concurrently (two overlapping saves collided on the primary key — the 1–3
``sqlite IntegrityError UNIQUE`` per pop benchmark run: a direct write in flight, another
call's failed write woke the drainer, which read the in-flight call's row and wrote it too).
The drainer waits for a call being written directly; a call saved again while the drainer
writes its previous picture is left to the drainer. Each journaled version has its own
``at``, and a row is removed only if it still holds the version that was written, so a
newer picture saved meanwhile is never dropped.

Bounded and monitored: at most ``max_entries`` rows (setting
``journal_max_entries``); past that, new records are refused (counted in
``refused``, logged) rather than filling the disk. ``depth`` feeds ``/readyz``
(``journal`` backlog) and ``callcore_journal_depth``; ``drained`` and
``oldest_age()`` (persistence lag) are metrics too.

Records are pickled ``cti.state.Call`` objects: the journal is a private file of
one installation, read back by the same code; drain it (let callcore run with the
database up) before upgrading callcore across a change of ``Call``.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

from callcore.retry import backoff_delay, nap

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS call_records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id TEXT NOT NULL UNIQUE,
    at REAL NOT NULL,
    record BLOB NOT NULL
)
"""
#: calls in progress (journal/live.py): the newest picture of each, removed in the same
#: transaction that journals the call's ended record
_LIVE_SCHEMA = """
CREATE TABLE IF NOT EXISTS live_calls (
    call_id TEXT PRIMARY KEY,
    at REAL NOT NULL,
    record BLOB NOT NULL
)
"""


class JournalFull(Exception):
    pass


class CallJournal:
    """The SQLite file. Every operation runs on one dedicated thread (one connection)."""

    def __init__(self, path: Path, *, max_entries: int = 100_000) -> None:
        self.path = Path(path)
        self.max_entries = max_entries
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="call-journal")
        self._db: sqlite3.Connection | None = None
        self.depth = 0
        self._oldest_at: float | None = None

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def open(self) -> None:
        await self._run(self._open)

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")  # fsync on every commit: durable before we go on
        db.execute(_SCHEMA)
        db.execute(_LIVE_SCHEMA)
        self._db = db
        self._refresh()

    def _refresh(self) -> None:
        assert self._db is not None
        n, oldest = self._db.execute("SELECT count(*), min(at) FROM call_records").fetchone()
        self.depth, self._oldest_at = int(n), oldest

    async def close(self) -> None:
        def _close() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        await self._run(_close)
        self._pool.shutdown(wait=True)

    async def append(self, call_id: str, record: Any, at: float, ignore: set[str] = frozenset()) -> int:  # type: ignore[assignment]
        """Store (or replace) one record durably; returns how many rows older than it wait
        (not counting the call ids in ``ignore``, being written right now)."""
        blob = pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)
        return await self._run(self._append, call_id, blob, at, frozenset(ignore))

    def _append(self, call_id: str, blob: bytes, at: float, ignore: frozenset[str]) -> int:
        assert self._db is not None
        db = self._db
        existing = db.execute("SELECT seq FROM call_records WHERE call_id = ?", (call_id,)).fetchone()
        if existing is None and self.depth >= self.max_entries:
            raise JournalFull(f"call journal full ({self.depth} records, journal_max_entries={self.max_entries})")
        db.execute("BEGIN")
        try:
            if existing is None:
                db.execute("INSERT INTO call_records (call_id, at, record) VALUES (?, ?, ?)", (call_id, at, blob))
            else:  # the same call again: replace in place, keep its position in the order
                db.execute("UPDATE call_records SET record = ?, at = ? WHERE seq = ?", (blob, at, existing[0]))
            db.execute("DELETE FROM live_calls WHERE call_id = ?", (call_id,))  # ended: no longer live
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._refresh()
        seq = db.execute("SELECT seq FROM call_records WHERE call_id = ?", (call_id,)).fetchone()[0]
        older = db.execute(
            "SELECT call_id FROM call_records WHERE seq < ? ORDER BY seq LIMIT ?", (seq, len(ignore) + 1)
        ).fetchall()
        return sum(1 for (cid,) in older if cid not in ignore)

    async def append_many(self, records: list[tuple[str, Any, float]], ignore: set[str] = frozenset()) -> int:  # type: ignore[assignment]
        """Store (or replace) several records durably in one transaction (one fsync); returns how
        many rows older than the newest of them wait, not counting ``ignore`` nor the batch itself."""
        rows = [(call_id, pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL), at) for call_id, record, at in records]
        return await self._run(self._append_many, rows, frozenset(ignore))

    def _append_many(self, rows: list[tuple[str, bytes, float]], ignore: frozenset[str]) -> int:
        assert self._db is not None
        db = self._db
        ids = [call_id for call_id, _, _ in rows]
        known = {cid for (cid,) in db.execute(
            f"SELECT call_id FROM call_records WHERE call_id IN ({','.join('?' * len(ids))})", ids).fetchall()}
        new = len(set(ids) - known)
        if new and self.depth + new > self.max_entries:
            raise JournalFull(f"call journal full ({self.depth} records, journal_max_entries={self.max_entries})")
        db.execute("BEGIN")
        try:
            for call_id, blob, at in rows:
                if call_id in known:  # the same call again: replace in place, keep its position in the order
                    db.execute("UPDATE call_records SET record = ?, at = ? WHERE call_id = ?", (blob, at, call_id))
                else:
                    db.execute("INSERT INTO call_records (call_id, at, record) VALUES (?, ?, ?)", (call_id, at, blob))
                    known.add(call_id)
            db.executemany("DELETE FROM live_calls WHERE call_id = ?", [(c,) for c in ids])  # ended: no longer live
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._refresh()
        skip = ignore | set(ids)
        newest = db.execute(
            f"SELECT max(seq) FROM call_records WHERE call_id IN ({','.join('?' * len(ids))})", ids).fetchone()[0]
        older = db.execute(
            "SELECT call_id FROM call_records WHERE seq < ? ORDER BY seq LIMIT ?", (newest, len(skip) + 1)
        ).fetchall()
        return sum(1 for (cid,) in older if cid not in skip)

    async def remove_versions(self, versions: list[tuple[str, float]]) -> None:
        """Remove these calls' rows in one transaction, each only if it still holds that version (``at``)."""
        await self._run(self._remove_versions, versions)

    def _remove_versions(self, versions: list[tuple[str, float]]) -> None:
        self._executemany_at_once("DELETE FROM call_records WHERE call_id = ? AND at = ?", versions)
        self._refresh()

    def _executemany_at_once(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        """``sql`` for every row, in one transaction (one fsync): all of them or none."""
        assert self._db is not None
        db = self._db
        db.execute("BEGIN")
        try:
            db.executemany(sql, rows)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    async def oldest(self, limit: int) -> list[tuple[int, str, Any]]:
        rows = await self._run(self._oldest, limit)
        return [(seq, call_id, pickle.loads(blob)) for seq, call_id, blob in rows]

    def _oldest(self, limit: int) -> list[tuple[int, str, bytes]]:
        assert self._db is not None
        return self._db.execute("SELECT seq, call_id, record FROM call_records ORDER BY seq LIMIT ?", (limit,)).fetchall()

    async def oldest_records(self, limit: int) -> list[tuple[int, str, float, Any]]:
        """Like :meth:`oldest`, with each record's ``at`` (to remove exactly that version)."""
        rows = await self._run(self._oldest_at_rows, limit)
        return [(seq, call_id, at, pickle.loads(blob)) for seq, call_id, at, blob in rows]

    def _oldest_at_rows(self, limit: int) -> list[tuple[int, str, float, bytes]]:
        assert self._db is not None
        return self._db.execute(
            "SELECT seq, call_id, at, record FROM call_records ORDER BY seq LIMIT ?", (limit,)
        ).fetchall()

    async def remove(self, seq: int, at: float | None = None) -> None:
        """Remove a row; with ``at``, only if it still holds that version (not replaced since)."""
        await self._run(self._remove, seq, at)

    def _remove(self, seq: int, at: float | None = None) -> None:
        assert self._db is not None
        if at is None:
            self._db.execute("DELETE FROM call_records WHERE seq = ?", (seq,))
        else:
            self._db.execute("DELETE FROM call_records WHERE seq = ? AND at = ?", (seq, at))
        self._refresh()

    async def remove_call(self, call_id: str, at: float | None = None) -> None:
        """Remove a call's row; with ``at``, only if it still holds that version."""
        await self._run(self._remove_call, call_id, at)

    def _remove_call(self, call_id: str, at: float | None = None) -> None:
        assert self._db is not None
        if at is None:
            self._db.execute("DELETE FROM call_records WHERE call_id = ?", (call_id,))
        else:
            self._db.execute("DELETE FROM call_records WHERE call_id = ? AND at = ?", (call_id, at))
        self._refresh()

    # ------------------------------------------------------------ calls in progress
    async def put_live(self, rows: list[tuple[str, float, bytes]]) -> None:
        """Store the newest picture of these live calls: one transaction, one fsync."""
        await self._run(self._put_live, rows)

    def _put_live(self, rows: list[tuple[str, float, bytes]]) -> None:
        self._executemany_at_once("INSERT OR REPLACE INTO live_calls (call_id, at, record) VALUES (?, ?, ?)", rows)

    async def live(self) -> list[tuple[str, float, Any]]:
        rows = await self._run(self._live)
        out = []
        for call_id, at, blob in rows:
            try:
                out.append((call_id, at, pickle.loads(blob)))
            except Exception as exc:  # a picture written by another version of callcore
                log.error("call journal: live call %s cannot be read back (%s); dropped", call_id, exc)
        return out

    def _live(self) -> list[tuple[str, float, bytes]]:
        assert self._db is not None
        return self._db.execute("SELECT call_id, at, record FROM live_calls ORDER BY at").fetchall()

    async def drop_live(self, call_ids: list[str]) -> None:
        await self._run(self._drop_live, call_ids)

    def _drop_live(self, call_ids: list[str]) -> None:
        assert self._db is not None
        self._db.executemany("DELETE FROM live_calls WHERE call_id = ?", [(c,) for c in call_ids])

    def oldest_age(self, now: float | None = None) -> float:
        """Seconds the oldest undrained record has waited (persistence lag); 0 when empty."""
        if self._oldest_at is None:
            return 0.0
        return max(0.0, (now if now is not None else time.time()) - self._oldest_at)


class JournaledCalls:
    """The call store the persistence subscriber writes through (see the module doc)."""

    def __init__(
        self,
        journal: CallJournal,
        repository: Any,
        *,
        first_wait: float = 0.2,
        max_wait: float = 10.0,
        batch: int = 100,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.journal = journal
        self._repo = repository
        self.first_wait = first_wait
        self.max_wait = max_wait
        self.batch = batch
        self._clock = clock
        self._wake = asyncio.Event()
        self._drainer: asyncio.Task[None] | None = None
        self.drained = 0  # records written by the drainer (after an outage or a restart)
        self.direct = 0  # records written at once
        self.refused = 0  # journal full: not made durable (the write is still tried once)
        self.db_failures = 0
        self._inflight: set[str] = set()  # written directly right now: not a backlog
        #: call id -> done when the database write of that call now under way (direct or drainer) ends:
        #: one write of a call at a time (two racing saves of one call hit the primary key: issue 18)
        self._busy: dict[str, asyncio.Future[None]] = {}
        self._last_at = 0.0  # every journaled version gets its own ``at``: rows are removed by version

    async def start(self) -> None:
        await self.journal.open()
        if self.journal.depth:
            log.warning("call journal: %d call record(s) from before the restart to write", self.journal.depth)
        self._drainer = asyncio.get_running_loop().create_task(self._drain(), name="call-journal-drainer")

    async def stop(self) -> None:
        if self._drainer is not None:
            self._drainer.cancel()
            await asyncio.gather(self._drainer, return_exceptions=True)
            self._drainer = None
        if self.journal.depth:
            log.warning("call journal: %d call record(s) kept for the next start", self.journal.depth)
        await self.journal.close()

    async def save_call(self, call: Any) -> None:
        try:
            at = self._version()
            older = await self.journal.append(call.id, call, at, self._inflight)
        except JournalFull as exc:
            self.refused += 1
            log.error("%s: call %s is not journaled; writing it directly", exc, call.id)
            await self._repo.save_call(call)  # raises to the subscriber's own retries
            self.direct += 1
            return
        if call.id in self._busy:  # its previous picture is being written: the drainer writes this one after
            self._wake.set()
            return
        if older:  # a backlog: keep the order, the drainer writes it
            self._wake.set()
            return
        self._inflight.add(call.id)  # until its row is gone: a call appended meanwhile is no backlog
        done = self._begin(call.id)
        try:
            try:
                await self._repo.save_call(call)
            except Exception as exc:
                self.db_failures += 1
                log.warning("call %s: database write failed (%s); kept in the journal, retried in order", call.id, exc)
                self._wake.set()
                return
            finally:
                self._end(call.id, done)
            self.direct += 1
            await self.journal.remove_call(call.id, at)  # unless saved again meanwhile: that newer row stays
        finally:
            self._inflight.discard(call.id)
        if self.journal.depth:
            self._wake.set()

    def _version(self) -> float:
        self._last_at = max(self._clock(), self._last_at + 1e-6)
        return self._last_at

    async def save_calls(self, calls: list[Any]) -> None:
        """A batch of ended calls (the write-behind's burst): one journal transaction, then one
        database transaction (``repository.save_calls``) for all of them. A failed batch falls
        back to one database write per call, so one bad row never holds back the others; what
        still fails stays in the journal for the drainer, as with :meth:`save_call`."""
        latest = list({c.id: c for c in calls}.values())  # a call given twice: its last picture
        if len(latest) <= 1 or not hasattr(self._repo, "save_calls"):
            for call in latest:
                await self.save_call(call)
            return
        versions = [(call.id, call, self._version()) for call in latest]
        try:
            older = await self.journal.append_many(versions, self._inflight)
        except JournalFull:
            for call in latest:  # each refused (or fitted) on its own, as before
                await self.save_call(call)
            return
        if older or any(call.id in self._busy for call in latest):  # a backlog, or a picture being written
            self._wake.set()
            return
        ids = [call.id for call in latest]
        self._inflight.update(ids)
        done = {call_id: self._begin(call_id) for call_id in ids}
        try:
            try:
                await self._repo.save_calls(latest)
                written = versions
            except Exception as exc:
                self.db_failures += 1
                log.warning("%d calls: batched database write failed (%s); writing them one by one", len(latest), exc)
                written = []
                for call_id, call, at in versions:
                    try:
                        await self._repo.save_call(call)
                        written.append((call_id, call, at))
                    except Exception as exc1:
                        self.db_failures += 1
                        log.warning("call %s: database write failed (%s); kept in the journal, retried in order",
                                    call_id, exc1)
        finally:
            for call_id, fut in done.items():
                self._end(call_id, fut)
        try:
            self.direct += len(written)
            if written:  # unless saved again meanwhile: those newer rows stay
                await self.journal.remove_versions([(call_id, at) for call_id, _, at in written])
        finally:
            self._inflight.difference_update(ids)  # until their rows are gone (see save_call)
        if self.journal.depth:
            self._wake.set()

    def _begin(self, call_id: str) -> "asyncio.Future[None]":
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._busy[call_id] = done
        return done

    def _end(self, call_id: str, done: "asyncio.Future[None]") -> None:
        if self._busy.get(call_id) is done:
            del self._busy[call_id]
        if not done.done():
            done.set_result(None)

    async def _drain_run(self, run: list[tuple[int, str, float, Any]]) -> None:
        """Write journaled records, oldest first: one database transaction for the run when the
        repository has ``save_calls`` (else, or when that fails, one write per record, stopping at
        the first failure so the order holds); each written row removed by version, together."""
        done = {call_id: self._begin(call_id) for _, call_id, _, _ in run}
        written: list[tuple[str, float]] = []
        try:
            batched = False
            if len(run) > 1 and hasattr(self._repo, "save_calls"):
                try:
                    await self._repo.save_calls([call for _, _, _, call in run])
                    batched = True
                except Exception as exc:
                    log.warning("call journal: batched write of %d record(s) failed (%s); writing them one by one",
                                len(run), exc)
            if batched:
                written = [(call_id, at) for _, call_id, at, _ in run]
            else:
                for _, call_id, at, call in run:
                    await self._repo.save_call(call)  # a failure goes to the drainer's backoff
                    written.append((call_id, at))
        finally:
            for call_id, fut in done.items():
                self._end(call_id, fut)
            if written:
                self.drained += len(written)
                await self.journal.remove_versions(written)  # a newer version saved meanwhile stays, written next

    async def _drain(self) -> None:
        failures = 0
        while True:
            if self.journal.depth == 0:
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                run: list[tuple[int, str, float, Any]] = []
                wait_for: asyncio.Future[None] | None = None
                for row in await self.journal.oldest_records(self.batch):
                    wait_for = self._busy.get(row[1])
                    if wait_for is not None:  # written directly right now: wait for it, then read the journal again
                        break
                    run.append(row)
                if run:
                    await self._drain_run(run)
                if wait_for is not None:
                    await asyncio.shield(wait_for)
                failures = 0
                if self.journal.depth == 0:
                    log.info("call journal drained (%d record(s) written after an outage or restart so far)", self.drained)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.db_failures += 1
                delay = backoff_delay(failures, self.first_wait, self.max_wait)
                failures += 1
                log.warning("call journal: database unavailable (%s); %d record(s) waiting, retrying in %.1f s",
                            exc, self.journal.depth, delay)
                self._wake.clear()
                await nap(self._wake, delay)
