"""Login throttling (pure; the clock is injected).

Per account: ``account_failures`` failed logins within ``window`` seconds lock the
account for ``lockout`` seconds. Per client address: ``address_failures`` failures
(over any accounts) within ``window`` lock the address. A successful login clears
the account's counter (not the address's). Memory is bounded (``max_keys``).
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Callable


@dataclass
class _Entry:
    failures: deque[float] = field(default_factory=deque)
    locked_until: float = 0.0


class LoginThrottle:
    def __init__(
        self,
        clock: Callable[[], float],
        *,
        account_failures: int = 5,
        address_failures: int = 20,
        window: float = 300.0,
        lockout: float = 900.0,
        max_keys: int = 10_000,
    ) -> None:
        self._clock = clock
        self.limits = {"account": account_failures, "address": address_failures}
        self.window = window
        self.lockout = lockout
        self.max_keys = max_keys
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()

    def _entry(self, kind: str, key: str) -> _Entry:
        k = (kind, key)
        e = self._entries.get(k)
        if e is None:
            e = self._entries[k] = _Entry()
            while len(self._entries) > self.max_keys:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(k)
        return e

    def retry_after(self, account: str, address: str | None) -> int | None:
        """Seconds until a login may be tried again (None: allowed now)."""
        now = self._clock()
        waits = []
        for kind, key in (("account", account), ("address", address)):
            e = self._entries.get((kind, key)) if key else None
            if e is not None and e.locked_until > now:
                waits.append(e.locked_until - now)
        return math.ceil(max(waits)) if waits else None

    def failure(self, account: str, address: str | None) -> list[str]:
        """Record a failed login; returns what became locked by it (``["account"]``...)."""
        now = self._clock()
        locked: list[str] = []
        for kind, key in (("account", account), ("address", address)):
            if not key:
                continue
            e = self._entry(kind, key)
            e.failures.append(now)
            while e.failures and e.failures[0] < now - self.window:
                e.failures.popleft()
            if len(e.failures) >= self.limits[kind] and e.locked_until <= now:
                e.locked_until = now + self.lockout
                e.failures.clear()
                locked.append(kind)
        return locked

    def success(self, account: str) -> None:
        self._entries.pop(("account", account), None)
