"""The ONE retry policy of callcore: capped exponential backoff, optionally with
jitter, on tenacity; every retry logged with what failed and when the next try is.

* :func:`retrying` — retry one operation (webhook delivery in ``cti/webhooks.py``,
  bookkeeping writes in ``cti/bookkeeping.py``).
* :func:`retry_call` — the same policy for one ``await op()`` whose first attempt usually
  succeeds (call persistence, ``cti/subscribers/persistence.py``): the first attempt runs
  outside tenacity, whose set-up (~27 µs per operation) is paid only after a failure.
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
from typing import Any, Awaitable, Callable, TypeVar

import tenacity

T = TypeVar("T")

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

    def __init__(self, first_wait: float, max_wait: float, *, jitter: bool = False, rng: Callable[[], float] = random.random,
                 offset: int = 0) -> None:
        self.first_wait = first_wait
        self.max_wait = max_wait
        self.jitter = jitter
        self._rng = rng
        #: attempts made before tenacity's first (:func:`retry_call` makes attempt 1 itself)
        self.offset = offset

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        n = retry_state.attempt_number - 1 + self.offset
        return backoff_delay(n, self.first_wait, self.max_wait, self._rng() if self.jitter else 1.0)


def retrying(
    what: str | Callable[[], str],
    *,
    attempts: int = 3,
    first_wait: float = 0.2,
    max_wait: float = 5.0,
    jitter: bool = False,
    retry_on: type[BaseException] | tuple[type[BaseException], ...] = Exception,
    sleep: Callable[[float], Awaitable[Any]] | None = None,
    first_attempt: int = 1,
) -> tenacity.AsyncRetrying:
    """``async for attempt in retrying("persisting call 1.1"): with attempt: ...`` —
    re-raises the last error after ``attempts`` tries (each failure logged).

    ``first_attempt``: the number of the first attempt this object makes (``2`` when the
    caller already made attempt 1 itself, :func:`retry_call`): it makes the attempts
    ``first_attempt..attempts`` with the delays and log lines those attempts have."""
    done = first_attempt - 1  # attempts made before this object's first

    def name() -> str:
        return what() if callable(what) else what

    def before_sleep(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        log.warning("%s failed (attempt %d of %d): %s; retrying in %.1f s", name(), state.attempt_number + done, attempts, exc, delay)

    def after(state: tenacity.RetryCallState) -> None:
        if state.attempt_number + done >= attempts and state.outcome is not None and state.outcome.failed:
            log.error("%s: giving up after %d attempts: %s", name(), attempts, state.outcome.exception())

    kwargs: dict[str, Any] = {"sleep": sleep} if sleep is not None else {}
    return tenacity.AsyncRetrying(
        stop=tenacity.stop_after_attempt(max(1, attempts - done)),
        wait=Backoff(first_wait, max_wait, jitter=jitter, offset=done),
        retry=tenacity.retry_if_exception_type(retry_on),
        before_sleep=before_sleep,
        after=after,
        reraise=True,
        **kwargs,
    )


async def retry_call(
    what: str | Callable[[], str],
    op: Callable[[], Awaitable[T]],
    *,
    attempts: int = 3,
    first_wait: float = 0.2,
    max_wait: float = 5.0,
    jitter: bool = False,
    retry_on: type[BaseException] | tuple[type[BaseException], ...] = Exception,
    sleep: Callable[[float], Awaitable[Any]] | None = None,
) -> T:
    """``await op()`` with the policy of :func:`retrying` (same attempts, delays, log lines,
    and the last error re-raised), for an operation that usually succeeds at once: attempt 1
    runs here, and tenacity (:func:`retrying` with ``first_attempt=2``) is entered only after
    it failed. Issue 18: building ``AsyncRetrying`` for every stored call cost ~27 µs each,
    ~6 % of the AMI ingest benchmark's wall time."""
    try:
        return await op()
    except retry_on as exc:
        if attempts <= 1:
            name = what() if callable(what) else what
            log.error("%s: giving up after %d attempts: %s", name, attempts, exc)
            raise
        first = exc
    delay = backoff_delay(0, first_wait, max_wait, random.random() if jitter else 1.0)
    log.warning("%s failed (attempt %d of %d): %s; retrying in %.1f s", what() if callable(what) else what, 1, attempts, first, delay)
    del first  # no reference cycle through the traceback while sleeping
    await (sleep or asyncio.sleep)(delay)
    async for attempt in retrying(what, attempts=attempts, first_wait=first_wait, max_wait=max_wait, jitter=jitter,
                                  retry_on=retry_on, sleep=sleep, first_attempt=2):
        with attempt:
            return await op()
    raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover
