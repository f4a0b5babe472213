"""The login throttle shared through the database (issue 11): two callcore instances behind one
load balancer count the same failures and lock the same account — an attacker cannot double
the guesses by alternating between them."""

from __future__ import annotations

import asyncio

import pytest

from auth.ratelimit import LoginThrottle, SharedLoginThrottle

pytestmark = pytest.mark.db


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _pair(db_sessionmaker, clock):
    limits = dict(account_failures=5, address_failures=8, window=300, lockout=900)
    return SharedLoginThrottle(db_sessionmaker, clock, **limits), SharedLoginThrottle(db_sessionmaker, clock, **limits)


async def test_two_instances_count_the_same_failures_and_lock_together(db_sessionmaker):
    clock = Clock()
    a, b = _pair(db_sessionmaker, clock)
    for i in range(4):  # alternating instances, 4 failures: not yet locked
        assert await (a if i % 2 else b).failure("kim", "10.0.0.9") == []
        clock.now += 1
    assert await a.retry_after("kim", "10.0.0.9") is None
    assert await b.failure("kim", "10.0.0.9") == ["account"]  # the 5th, on either instance
    assert await a.retry_after("kim", "10.0.0.7") == 900 and await b.retry_after("kim", None) == 900
    clock.now += 901
    assert await a.retry_after("kim", None) is None


async def test_address_lock_spans_accounts_and_success_clears_only_the_account(db_sessionmaker):
    clock = Clock()
    a, b = _pair(db_sessionmaker, clock)
    for i in range(7):
        await (a, b)[i % 2].failure(f"user{i}", "10.0.0.9")
    assert await a.failure("user7", "10.0.0.9") == ["address"]
    assert await b.retry_after("someone", "10.0.0.9") == 900 and await b.retry_after("someone", "10.0.0.8") is None
    clock.now += 1000
    for _ in range(3):
        await a.failure("lee", "10.0.0.1")
    await b.success("lee")
    for _ in range(4):  # the counter started again after the success
        assert await a.failure("lee", "10.0.0.1") == []


async def test_concurrent_failures_are_all_counted(db_sessionmaker):
    clock = Clock()
    a, b = _pair(db_sessionmaker, clock)
    results = await asyncio.gather(*[(a, b)[i % 2].failure("park", None) for i in range(5)])
    assert sorted(x for r in results for x in r) == ["account"]  # exactly one of them locked it
    assert await a.retry_after("park", None) == 900


def test_the_in_memory_throttle_follows_the_same_rules() -> None:
    clock = Clock()
    t = LoginThrottle(clock, account_failures=2, address_failures=10, window=60, lockout=30)
    assert t.failure("x", None) == [] and t.failure("x", None) == ["account"]
    assert t.retry_after("x", None) == 30
    clock.now += 31
    assert t.retry_after("x", None) is None
