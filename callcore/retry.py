"""The ONE retry policy of callcore: capped exponential backoff, optionally with
jitter, on tenacity; every retry logged with what failed and when the next try is.

* :func:`retrying` — retry one operation (call persistence in
  ``cti/subscribers/persistence.py``, webhook delivery in ``cti/webhooks.py``).
* :func:`backoff_delay` — the same backoff for a loop that supervises a session
  rather than retrying one call: the AMI reconnect loop (``cti/ami/client.py``)
  keeps its own state machine (a refused login waits the maximum, a lost
  connection starts the ramp again) and takes each delay from here.

``first_wait * 2**n`` capped at ``max_wait``; with jitter the delay is scaled by
``0.8 + 0.2 * random()`` (up to 20 % earlier, so many clients do not retry in
step) and never leaves ``[first_wait, max_wait]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import Any, Awaitable, Callable

import tenacity

log = logging.getLogger("callcore.retry")


def backoff_delay(attempt: int, first_wait: float, max_wait: float, jitter: float = 1.0) -> float:
    """The delay before retry ``attempt`` (0-based); ``jitter`` in [0, 1], 1.0 = none."""
    base = min(max_wait, first_wait * (2 ** min(attempt, 30)))
    return max(first_wait, min(max_wait, base * (0.8 + 0.2 * jitter)))


async def nap(wake: asyncio.Event, seconds: float) -> None:
    """Sleep between retries of a loop until woken or ``seconds`` pass (the outbox and
    journal workers). Not ``asyncio.wait_for``: on Python 3.11 it can swallow a
    cancellation that races with its timeout, and the owner's stop() then waits forever."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await wake.wait()


class Backoff(tenacity.wait.wait_base):
    """:func:`backoff_delay` as a tenacity wait strategy."""

    def __init__(self, first_wait: float, max_wait: float, *, jitter: bool = False, rng: Callable[[], float] = random.random) -> None:
        self.first_wait = first_wait
        self.max_wait = max_wait
        self.jitter = jitter
        self._rng = rng

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        return backoff_delay(retry_state.attempt_number - 1, self.first_wait, self.max_wait, self._rng() if self.jitter else 1.0)


def retrying(
    what: str | Callable[[], str],
    *,
    attempts: int = 3,
    first_wait: float = 0.2,
    max_wait: float = 5.0,
    jitter: bool = False,
    retry_on: type[BaseException] | tuple[type[BaseException], ...] = Exception,
    sleep: Callable[[float], Awaitable[Any]] | None = None,
) -> tenacity.AsyncRetrying:
    """``async for attempt in retrying("persisting call 1.1"): with attempt: ...`` —
    re-raises the last error after ``attempts`` tries (each failure logged)."""

    def name() -> str:
        return what() if callable(what) else what

    def before_sleep(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        log.warning("%s failed (attempt %d of %d): %s; retrying in %.1f s", name(), state.attempt_number, attempts, exc, delay)

    def after(state: tenacity.RetryCallState) -> None:
        if state.attempt_number >= attempts and state.outcome is not None and state.outcome.failed:
            log.error("%s: giving up after %d attempts: %s", name(), attempts, state.outcome.exception())

    kwargs: dict[str, Any] = {"sleep": sleep} if sleep is not None else {}
    return tenacity.AsyncRetrying(
        stop=tenacity.stop_after_attempt(attempts),
        wait=Backoff(first_wait, max_wait, jitter=jitter),
        retry=tenacity.retry_if_exception_type(retry_on),
        before_sleep=before_sleep,
        after=after,
        reraise=True,
        **kwargs,
    )
