"""The one retry policy (callcore/retry.py) used by persistence, webhooks and the AMI reconnect."""

from __future__ import annotations

import pytest

from callcore.retry import backoff_delay, retrying


async def test_retrying_backs_off_then_reraises_the_last_error(caplog):
    delays: list[float] = []
    calls = 0

    async def fake_sleep(d: float) -> None:
        delays.append(d)

    with pytest.raises(ConnectionError, match="third"):
        async for attempt in retrying("saving x", attempts=3, first_wait=0.5, max_wait=0.8, sleep=fake_sleep):
            with attempt:
                calls += 1
                raise ConnectionError(["first", "second", "third"][calls - 1])
    assert calls == 3 and delays == [0.5, 0.8]  # exponential, capped
    assert "saving x failed (attempt 1 of 3): first; retrying in 0.5 s" in caplog.text
    assert "saving x: giving up after 3 attempts: third" in caplog.text


async def test_retrying_stops_at_the_first_success_and_only_retries_what_it_is_told():
    calls = 0

    async def no_sleep(d: float) -> None:
        return None

    async for attempt in retrying("x", attempts=5, sleep=no_sleep):
        with attempt:
            calls += 1
            if calls < 2:
                raise OSError("once")
    assert calls == 2
    with pytest.raises(KeyError):
        async for attempt in retrying("x", attempts=5, retry_on=OSError, sleep=no_sleep):
            with attempt:
                raise KeyError("not retried")


def test_backoff_delay_jitter_stays_within_bounds():
    assert [backoff_delay(i, 0.5, 30.0) for i in range(8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert backoff_delay(2, 0.5, 30.0, 0.0) == pytest.approx(1.6)
    assert backoff_delay(0, 0.5, 30.0, 0.0) == 0.5
