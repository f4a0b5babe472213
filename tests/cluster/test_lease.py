"""The AMI lease (issue 19 item 2): one holder at a time, take-over after the holder dies or
loses its database, on both stores (db fixtures: re-run on PostgreSQL by scripts/test-pg)."""

from __future__ import annotations

import asyncio

import pytest

from callcore.lease import AlwaysHeld, Lease, decide


# ------------------------------------------------------------------ pure decision
def test_a_renewal_holds_until_ttl_minus_the_interval() -> None:
    v = decide(was_held=False, renewed_at=100.0, act_until=0.0, now=100.1, ttl=3.0, interval=0.5)
    assert v.held and v.act_until == 102.5


def test_a_missed_beat_keeps_the_lease_only_until_the_margin() -> None:
    assert decide(was_held=True, renewed_at=None, act_until=102.5, now=102.0, ttl=3, interval=0.5).held
    assert not decide(was_held=True, renewed_at=None, act_until=102.5, now=102.5, ttl=3, interval=0.5).held
    assert not decide(was_held=False, renewed_at=None, act_until=0.0, now=1.0, ttl=3, interval=0.5).held


def test_the_interval_must_leave_a_margin() -> None:
    with pytest.raises(ValueError):
        Lease(None, "ami:x", "a", ttl=1.0, interval=0.6)


async def test_single_instance_is_always_the_holder() -> None:
    lease = AlwaysHeld("ami:default")
    await lease.start()
    assert lease.held and lease.state == "single"


# ------------------------------------------------------------------ on the database
class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


async def test_one_holder_then_take_over_when_it_stops_beating(db_sessionmaker) -> None:
    clock = Clock()
    events: list[str] = []

    async def note(what: str) -> None:
        events.append(what)

    a = Lease(db_sessionmaker, "ami:pbx1", "a", ttl=3, interval=0.5, clock=clock,
              on_acquired=lambda: note("a+"), on_lost=lambda: note("a-"))
    b = Lease(db_sessionmaker, "ami:pbx1", "b", ttl=3, interval=0.5, clock=clock,
              on_acquired=lambda: note("b+"), on_lost=lambda: note("b-"))
    assert await a.beat() is True
    assert await b.beat() is False and b.holder == "a" and b.epoch == 1
    clock.t += 1
    assert await a.beat() and not await b.beat()  # renewed: still a's
    # a dies (no more beats): b may take it only once a's expiry has passed
    clock.t += 2.9
    assert not await b.beat()
    clock.t += 0.2
    assert await b.beat() and b.epoch == 2
    # a comes back (a paused process): it finds b holding and gives up by itself
    assert not await a.beat()
    assert events == ["a+", "b+", "a-"]
    # another lease name is independent
    other = Lease(db_sessionmaker, "ami:pbx2", "a", ttl=3, interval=0.5, clock=clock)
    assert await other.beat()


async def test_racing_standbys_never_both_win(db_sessionmaker) -> None:
    leases = [Lease(db_sessionmaker, "ami:race", f"i{n}", ttl=3, interval=0.5) for n in range(4)]
    for _ in range(3):
        results = await asyncio.gather(*(lease.beat() for lease in leases))
        assert sum(results) == 1


async def test_a_holder_that_loses_its_database_gives_up_before_anyone_may_take_over(db_sessionmaker) -> None:
    clock = Clock()
    a = Lease(db_sessionmaker, "ami:pbx1", "a", ttl=3, interval=0.5, clock=clock)
    assert await a.beat()

    class Broken:
        def __call__(self):
            raise ConnectionRefusedError("database away")

    a._sm = Broken()
    clock.t += 2.0
    assert await a.beat()  # a missed beat inside the margin: still the holder
    clock.t += 0.6
    assert not await a.beat() and a.state == "standby"  # at 2.5 s it gives up ...
    b = Lease(db_sessionmaker, "ami:pbx1", "b", ttl=3, interval=0.5, clock=clock)
    assert not await b.beat()  # ... while b may take over only after 3 s: never two holders
    clock.t += 0.5
    assert await b.beat()


async def test_a_graceful_stop_releases_at_once(db_sessionmaker) -> None:
    a = Lease(db_sessionmaker, "ami:pbx1", "a", ttl=20, interval=0.1)
    b = Lease(db_sessionmaker, "ami:pbx1", "b", ttl=20, interval=0.1)
    await a.start()
    assert await a.wait_held(5)
    await b.start()
    await asyncio.sleep(0.3)
    assert not b.held
    await a.stop()
    assert await b.wait_held(8.0)  # well before the 20 s expiry: the release, not the expiry
    await b.stop()


async def test_the_lease_beats_on_a_connection_of_its_own_while_the_shared_pool_is_exhausted(migrated_database_url) -> None:
    """A burst of per-call writes holding every connection of the server's pool must not stall the
    heartbeat (it did: a healthy holder gave the lease up under load, benchmarks/README.md §10)."""
    if not migrated_database_url.startswith("postgresql"):
        pytest.skip("the cluster lease lives on PostgreSQL (a SQLite server is one instance, AlwaysHeld)")
    from sqlalchemy import text

    from callcore.db import create_engine
    from callcore.settings import Settings
    from callcore.wiring import ami_lease

    shared = create_engine(migrated_database_url)  # the server's pool: 10 + 10 connections
    held = [await shared.connect() for _ in range(20)]
    try:
        for conn in held:
            await conn.execute(text("SELECT 1"))
        lease, engine = ami_lease(Settings(database_url=migrated_database_url, ami_lease_ttl=3, ami_lease_interval=0.5), "a")
        try:
            assert await lease.beat() and lease.holder == "a"
            assert await lease.beat()  # renewed, with no connection of the shared pool free
        finally:
            await lease._release()
            await engine.dispose()
    finally:
        for conn in held:
            await conn.close()
        await shared.dispose()


async def test_a_holder_that_gave_the_lease_up_does_not_report_itself_as_the_holder(db_sessionmaker) -> None:
    clock = Clock()
    a = Lease(db_sessionmaker, "ami:pbx1", "a", ttl=3, interval=0.5, clock=clock)
    assert await a.beat() and a.holder == "a"

    class Broken:
        def __call__(self):
            raise ConnectionRefusedError("database away")

    a._sm = Broken()
    clock.t += 2.6
    assert not await a.beat() and a.holder is None  # readiness: holder unknown, not "a" at its old epoch
