"""The CRM preload is bounded (issue 18, round three): at most ``concurrency`` preloads do
database work at once, a call that ends while its preload waits costs no query, and the
previous calls of a number are cached until a call of that number is stored."""

from __future__ import annotations

import asyncio
from typing import Any

from callcore.bus import Bus
from cti.notifier import CtiNotifier
from cti.pops import PopBuilder
from cti.state import Call, Change, CtiState
from cti.subscribers.crm_preload import CrmPreload
from cti.subscribers.persistence import CallPersistence
from cti.tasks import TaskOwner


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class Customers:
    cache_seconds = 120.0

    async def lookup_customer(self, phone: str) -> dict[str, Any] | None:
        return {"name": f"customer {phone}"}

    def forget(self, *phones: str | None) -> None:
        pass


class Repo:
    """previous_calls blocks until released; counts how many run at once."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.running = 0
        self.most = 0
        self.queries: list[str] = []
        self.saved: list[str] = []

    async def previous_calls(self, phone: str, *, limit: int = 10, exclude: str | None = None) -> list[dict[str, Any]]:
        self.queries.append(phone)
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await self.release.wait()
        finally:
            self.running -= 1
        return [{"call_id": "old-1", "caller_num": phone}, {"call_id": "c-again", "caller_num": phone}]

    async def save_call(self, call: Call) -> None:
        self.saved.append(call.id)


def _preload(repo: Repo, clock: Clock, concurrency: int = 3) -> tuple[CrmPreload, CtiState, PopBuilder]:
    state = CtiState()
    pops = PopBuilder(clock)
    preload = CrmPreload(state, pops, Customers(), repo, CtiNotifier(Bus()), None,  # type: ignore[arg-type]
                         timeout=5.0, clock=clock, concurrency=concurrency)
    return preload, state, pops


def _call(state: CtiState, call_id: str, phone: str) -> Call:
    call = Call(id=call_id, started_at=0.0, caller_num=phone)
    state.calls[call_id] = call
    return call


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_at_most_concurrency_preloads_query_at_once_and_all_complete() -> None:
    repo, clock = Repo(), Clock()
    preload, state, pops = _preload(repo, clock, concurrency=3)
    for i in range(10):
        _call(state, f"c{i}", f"0101000000{i}")
        preload.start(f"c{i}")
    await _settle()
    assert repo.running == 3 and len(repo.queries) == 3  # the other 7 wait for a slot, not on the pool
    assert all(f"c{i}" in pops.loading for i in range(10))
    repo.release.set()
    await preload.tasks.stop(5.0)
    assert repo.most == 3
    assert len(repo.queries) == 10
    assert all(pops.has(f"c{i}") for i in range(10))
    assert pops.cache["c7"]["customer"] == {"name": "customer 01010000007"}


async def test_a_call_that_ends_while_its_preload_waits_costs_no_query() -> None:
    repo, clock = Repo(), Clock()
    preload, state, pops = _preload(repo, clock, concurrency=1)
    for i in range(3):
        _call(state, f"c{i}", f"0102000000{i}")
        preload.start(f"c{i}")
    await _settle()
    assert repo.queries == ["01020000000"]
    del state.calls["c2"]  # c2 ended (the state moved it out) while waiting for the slot
    preload(Change("call.ended", call_id="c1"), 0.0)  # c1 ended: its waiting preload is cancelled
    repo.release.set()
    await preload.tasks.stop(5.0)
    assert repo.queries == ["01020000000"]
    assert pops.has("c0") and not pops.has("c1") and not pops.has("c2")


async def test_previous_calls_are_cached_per_number_until_a_call_of_it_is_stored() -> None:
    repo, clock = Repo(), Clock()
    repo.release.set()
    preload, state, pops = _preload(repo, clock)
    phone = "01030000000"
    _call(state, "c-first", phone)
    preload.start("c-first")
    await preload.tasks.stop(5.0)
    assert repo.queries == [phone]

    _call(state, "c-again", phone)
    preload.start("c-again")
    await preload.tasks.stop(5.0)
    assert repo.queries == [phone] and preload.previous_hits == 1  # answered from the cache
    assert [p["call_id"] for p in pops.cache["c-again"]["previous"]] == ["old-1"]  # never the call itself

    # the first call ends and is stored: the number's previous calls changed
    ended = state.calls.pop("c-first")
    state.ended["c-first"] = ended
    persistence = CallPersistence(state, repo, Customers(), preload, TaskOwner("t"))  # type: ignore[arg-type]
    persistence(Change("call.ended", call_id="c-first"), 0.0)
    await persistence._tasks.stop(5.0)
    assert repo.saved == ["c-first"]
    _call(state, "c-third", phone)
    preload.start("c-third")
    await preload.tasks.stop(5.0)
    assert repo.queries == [phone, phone]


async def test_cached_previous_calls_expire_with_the_crm_cache() -> None:
    repo, clock = Repo(), Clock()
    repo.release.set()
    preload, state, _ = _preload(repo, clock)
    _call(state, "a", "01040000000")
    preload.start("a")
    await preload.tasks.stop(5.0)
    clock.now += Customers.cache_seconds + 1
    _call(state, "b", "01040000000")
    preload.start("b")
    await preload.tasks.stop(5.0)
    assert repo.queries == ["01040000000", "01040000000"]
