"""The call journal (issue 12): records survive a database outage and a kill -9,
are written in order once the database answers, and never twice."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cti.state import Call
from journal.service import CallJournal, JournaledCalls
from tests.e2e.conftest import eventually

ROOT = Path(__file__).resolve().parents[3]


class FlakyRepo:
    """The repository port with an outage switch; ``rows`` is the database."""

    def __init__(self) -> None:
        self.down = False
        self.rows: dict[str, Call] = {}
        self.order: list[str] = []
        self.writes = 0

    async def save_call(self, call: Call) -> None:
        if self.down:
            raise ConnectionRefusedError("database down")
        self.writes += 1
        if call.id not in self.rows:
            self.order.append(call.id)
        self.rows[call.id] = call


def _call(n: int) -> Call:
    return Call(id=f"17000000{n:02d}.1", started_at=1_700_000_000 + n, caller_num=f"0101234{n:04d}", caller_name="홍길동")


async def test_outage_buffers_in_order_and_drains_without_loss_or_duplicates(tmp_path):
    repo = FlakyRepo()
    store = JournaledCalls(CallJournal(tmp_path / "journal.sqlite3"), repo, first_wait=0.02, max_wait=0.1)
    await store.start()
    try:
        await store.save_call(_call(0))
        assert list(repo.rows) == [_call(0).id] and store.journal.depth == 0  # the normal path: straight through
        repo.down = True
        for n in range(1, 31):
            await store.save_call(_call(n))
        await store.save_call(_call(5))  # the same call saved again: replaced, not duplicated
        assert store.journal.depth == 30 and len(repo.rows) == 1
        assert store.journal.oldest_age() >= 0
        repo.down = False
        await eventually(lambda: store.journal.depth == 0, 10, "journal drained")
        assert repo.order == [_call(n).id for n in range(31)]  # in order
        assert len(repo.rows) == 31  # 0 lost, 0 duplicates
        assert repo.rows[_call(7).id].caller_name == "홍길동"
        assert store.drained == 30
    finally:
        await store.stop()


async def test_the_journal_is_bounded(tmp_path):
    repo = FlakyRepo()
    repo.down = True
    store = JournaledCalls(CallJournal(tmp_path / "j.sqlite3", max_entries=3), repo, first_wait=0.05, max_wait=0.1)
    await store.start()
    try:
        for n in range(3):
            await store.save_call(_call(n))
        with pytest.raises(ConnectionRefusedError):  # refused by the journal, then the direct write fails too
            await store.save_call(_call(3))
        assert store.refused == 1 and store.journal.depth == 3
    finally:
        await store.stop()


CRASHER = textwrap.dedent(
    """
    import asyncio, sys
    sys.path.insert(0, sys.argv[2])
    from cti.state import Call
    from journal.service import CallJournal, JournaledCalls

    class Down:
        async def save_call(self, call):
            raise ConnectionRefusedError("database down")

    async def main():
        store = JournaledCalls(CallJournal(sys.argv[1]), Down(), first_wait=5, max_wait=5)
        await store.start()
        for n in range(20):
            await store.save_call(Call(id=f"1700000{n:03d}.1", started_at=1.0 + n, caller_num="01012345678"))
        print("journaled", store.journal.depth, flush=True)
        await asyncio.Event().wait()  # killed here, never stopped

    asyncio.run(main())
    """
)


async def test_kill_9_loses_nothing_journaled(tmp_path):
    path = tmp_path / "journal.sqlite3"
    proc = subprocess.Popen(
        [sys.executable, "-c", CRASHER, str(path), str(ROOT)], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 30)
        assert line.strip() == "journaled 20"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    repo = FlakyRepo()
    store = JournaledCalls(CallJournal(path), repo)
    await store.start()  # the next start drains what the killed process journaled
    try:
        await eventually(lambda: len(repo.rows) == 20, 10, "records from before the kill")
        assert repo.order == [f"1700000{n:03d}.1" for n in range(20)]
        await eventually(lambda: store.journal.depth == 0, 5, "journal empty")
    finally:
        await store.stop()


class RacingRepo(FlakyRepo):
    """Like the database: two overlapping saves of one call collide on the primary key
    (``sqlite IntegrityError UNIQUE`` in the pop benchmark, issue 18). ``gates`` hold a
    call's write open; ``fail_once`` fails a call's next write."""

    def __init__(self) -> None:
        super().__init__()
        self.active: set[str] = set()
        self.collisions = 0
        self.gates: dict[str, asyncio.Event] = {}
        self.fail_once: set[str] = set()

    async def save_call(self, call: Call) -> None:
        if call.id in self.active:
            self.collisions += 1
            raise RuntimeError(f"UNIQUE constraint failed: cti_calls.id ({call.id})")
        self.active.add(call.id)
        try:
            if call.id in self.fail_once:
                self.fail_once.discard(call.id)
                raise ConnectionRefusedError("database busy")
            gate = self.gates.get(call.id)
            if gate is not None:
                await gate.wait()
            await super().save_call(call)
        finally:
            self.active.discard(call.id)


async def test_the_drainer_never_writes_a_call_being_written_directly(tmp_path, caplog):
    repo = RacingRepo()
    store = JournaledCalls(CallJournal(tmp_path / "j.sqlite3"), repo, first_wait=0.01, max_wait=0.05)
    await store.start()
    try:
        d, b = _call(1), _call(2)
        repo.gates[d.id] = asyncio.Event()
        direct = asyncio.create_task(store.save_call(d))  # its direct write is held open
        await eventually(lambda: d.id in repo.active, 5, "direct write under way")
        repo.fail_once.add(b.id)
        await store.save_call(b)  # fails: kept in the journal, the drainer wakes and finds d's row too
        await asyncio.sleep(0.1)  # the drainer's retries run meanwhile
        repo.gates[d.id].set()
        await direct
        await eventually(lambda: store.journal.depth == 0, 5, "journal drained")
        assert repo.collisions == 0
        assert set(repo.rows) == {d.id, b.id}
        assert "UNIQUE" not in caplog.text
    finally:
        await store.stop()


async def test_a_call_saved_again_while_the_drainer_writes_it_keeps_the_newest_picture(tmp_path):
    repo = RacingRepo()
    store = JournaledCalls(CallJournal(tmp_path / "j.sqlite3"), repo, first_wait=0.01, max_wait=0.05)
    await store.start()
    try:
        x = _call(3)
        repo.fail_once.add(x.id)
        repo.gates[x.id] = asyncio.Event()
        await store.save_call(x)  # fails directly: the drainer's retry is then held open
        await eventually(lambda: x.id in repo.active, 5, "drainer writing the call")
        newer = _call(3)
        newer.disposition = "sale"  # the call ended again (a resync, a late event): a newer picture
        await store.save_call(newer)  # must not race the drainer's write, nor be dropped after it
        repo.gates[x.id].set()
        await eventually(lambda: store.journal.depth == 0 and repo.rows.get(x.id) is not None
                         and repo.rows[x.id].disposition == "sale", 5, "newest picture stored")
        assert repo.collisions == 0
    finally:
        await store.stop()


class BatchRepo(FlakyRepo):
    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []

    async def save_calls(self, calls: list[Call]) -> None:
        if self.down:
            raise ConnectionRefusedError("database down")
        self.batches.append(len(calls))
        for call in calls:
            await FlakyRepo.save_call(self, call)


async def test_the_drainer_writes_a_backlog_in_batches_in_order(tmp_path):
    repo = BatchRepo()
    store = JournaledCalls(CallJournal(tmp_path / "j.sqlite3"), repo, first_wait=0.02, max_wait=0.05, batch=10)
    await store.start()
    try:
        repo.down = True
        for n in range(25):
            await store.save_call(_call(n))
        repo.down = False
        await eventually(lambda: store.journal.depth == 0, 10, "journal drained")
        assert repo.batches == [10, 10, 5]  # one transaction per 10 records, not one per record
        assert repo.order == [_call(n).id for n in range(25)] and store.drained == 25
    finally:
        await store.stop()
