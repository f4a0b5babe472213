"""The ONE retry policy of callcore (tenacity): capped exponential backoff with
jitter, every retry logged with what failed and when the next try is.

Used for call persistence (``cti/subscribers/persistence.py``), webhook delivery
(``cti/webhooks.py``) and the AMI reconnect delay (``cti/ami/client.py``
``backoff_delay``), so the three agree on the shape of a backoff.
"""

from __future__ import annotations

import logging
import random
from typing import Any, Awaitable, Callable

import tenacity

log = logging.getLogger("callcore.retry")


def wait_policy(first_wait: float, max_wait: float, jitter: float = 0.0) -> tenacity.wait.wait_base:
    """``first_wait * 2**n`` capped at ``max_wait``, plus up to ``jitter`` (a fraction) of it."""
    exp = tenacity.wait_exponential(multiplier=first_wait, exp_base=2, min=first_wait, max=max_wait)
    if jitter <= 0:
        return exp
    return exp + tenacity.wait_random(0, first_wait * jitter)


def backoff_delay(attempt: int, first_wait: float, max_wait: float, jitter: float = 0.0, rand: float | None = None) -> float:
    """The delay before retry ``attempt`` (0-based) under :func:`wait_policy`, for loops
    that own their sleep (the AMI reconnect loop): ``first_wait * 2**attempt`` capped at
    ``max_wait``, scaled by up to ``jitter`` with ``rand`` in [0, 1)."""
    state = tenacity.RetryCallState(None, None, (), {})
    state.attempt_number = attempt + 1
    base = tenacity.wait_exponential(multiplier=first_wait, exp_base=2, min=first_wait, max=max_wait)(state)
    r = random.random() if rand is None else rand
    return min(max_wait, base * (1 + jitter * r)) if jitter else base


def retrying(
    what: str,
    *,
    attempts: int = 3,
    first_wait: float = 0.2,
    max_wait: float = 5.0,
    retry_if: Callable[[BaseException], bool] | None = None,
    sleep: Callable[[float], Awaitable[Any]] | None = None,
) -> tenacity.AsyncRetrying:
    """``async for attempt in retrying("persisting call 1.1"): with attempt: ...`` —
    re-raises the last error after ``attempts`` tries."""

    def before_sleep(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        log.warning("%s failed (attempt %d of %d): %s; retrying in %.1f s", what, state.attempt_number, attempts, exc, delay)

    def after(state: tenacity.RetryCallState) -> None:
        if state.attempt_number >= attempts and state.outcome is not None and state.outcome.failed:
            log.error("%s: giving up after %d attempts: %s", what, attempts, state.outcome.exception())

    kwargs: dict[str, Any] = {"sleep": sleep} if sleep is not None else {}
    return tenacity.AsyncRetrying(
        stop=tenacity.stop_after_attempt(attempts),
        wait=wait_policy(first_wait, max_wait),
        retry=tenacity.retry_if_exception(retry_if) if retry_if else tenacity.retry_if_exception_type(Exception),
        before_sleep=before_sleep,
        after=after,
        reraise=True,
        **kwargs,
    )
