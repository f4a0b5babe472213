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


async def test_retry_call_has_the_attempts_delays_and_log_lines_of_retrying(caplog):
    from callcore.retry import retry_call

    delays: list[float] = []
    calls = 0

    async def fake_sleep(d: float) -> None:
        delays.append(d)

    async def op() -> None:
        nonlocal calls
        calls += 1
        raise ConnectionError(["first", "second", "third"][calls - 1])

    with pytest.raises(ConnectionError, match="third"):
        await retry_call("saving x", op, attempts=3, first_wait=0.5, max_wait=0.8, sleep=fake_sleep)
    assert calls == 3 and delays == [0.5, 0.8]
    assert "saving x failed (attempt 1 of 3): first; retrying in 0.5 s" in caplog.text
    assert "saving x failed (attempt 2 of 3): second; retrying in 0.8 s" in caplog.text
    assert "saving x: giving up after 3 attempts: third" in caplog.text
    assert "attempt 3 of 3" not in caplog.text  # no "retrying" line after the last attempt


async def test_retry_call_returns_the_result_and_builds_no_tenacity_object_on_success(monkeypatch):
    import callcore.retry as retry

    built = 0
    real = retry.tenacity.AsyncRetrying

    def counting(*a, **k):
        nonlocal built
        built += 1
        return real(*a, **k)

    monkeypatch.setattr(retry.tenacity, "AsyncRetrying", counting)

    async def ok() -> int:
        return 7

    assert await retry.retry_call("x", ok) == 7
    assert built == 0
    calls = 0

    async def once() -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("once")
        return calls

    async def no_sleep(d: float) -> None:
        return None

    assert await retry.retry_call("x", once, attempts=5, sleep=no_sleep) == 2 and built == 1
    with pytest.raises(KeyError):  # not retried: no second attempt, no tenacity
        await retry.retry_call("x", _raise_key_error, retry_on=OSError, sleep=no_sleep)
    assert built == 1


async def _raise_key_error() -> None:
    raise KeyError("not retried")


async def test_retry_call_with_one_attempt_gives_up_at_once(caplog):
    from callcore.retry import retry_call

    async def op() -> None:
        raise OSError("down")

    with pytest.raises(OSError):
        await retry_call("saving y", op, attempts=1)
    assert "saving y: giving up after 1 attempts: down" in caplog.text and "retrying in" not in caplog.text
