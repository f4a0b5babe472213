"""Login throttling (the rules are pure; the clock is injected).

Per account: ``account_failures`` failed logins within ``window`` seconds lock the
account for ``lockout`` seconds. Per client address: ``address_failures`` failures
(over any accounts) within ``window`` lock the address. A successful login clears
the account's counter (not the address's).

Two stores of the same rules (:func:`record_failure`, :func:`wait_of`):
:class:`LoginThrottle` keeps the state in memory (bounded by ``max_keys``; one process, used
by tests and tools); :class:`SharedLoginThrottle` keeps it in the database table
``auth_login_throttle``, so several callcore instances behind one load balancer count the same
failures and lock the same accounts (issue 11) — what the composition root uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass
class _Entry:
    failures: deque[float] = field(default_factory=deque)
    locked_until: float = 0.0


def record_failure(e: _Entry, now: float, limit: int, window: float, lockout: float) -> bool:
    """Add a failure at ``now`` to ``e``; True if it locks the key (pure)."""
    e.failures.append(now)
    while e.failures and e.failures[0] < now - window:
        e.failures.popleft()
    if len(e.failures) >= limit and e.locked_until <= now:
        e.locked_until = now + lockout
        e.failures.clear()
        return True
    return False


def wait_of(entries: list[_Entry | None], now: float) -> int | None:
    """Seconds until the longest of these lockouts ends (None: none is locked)."""
    waits = [e.locked_until - now for e in entries if e is not None and e.locked_until > now]
    return math.ceil(max(waits)) if waits else None


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
        return wait_of([self._entries.get((kind, key)) if key else None
                        for kind, key in (("account", account), ("address", address))], self._clock())

    def failure(self, account: str, address: str | None) -> list[str]:
        """Record a failed login; returns what became locked by it (``["account"]``...)."""
        now = self._clock()
        locked: list[str] = []
        for kind, key in (("account", account), ("address", address)):
            if not key:
                continue
            if record_failure(self._entry(kind, key), now, self.limits[kind], self.window, self.lockout):
                locked.append(kind)
        return locked

    def success(self, account: str) -> None:
        self._entries.pop(("account", account), None)


_SQLITE_WRITERS: dict[str, asyncio.Lock] = {}


class SharedLoginThrottle:
    """The same rules with the state in ``auth_login_throttle`` (every instance sees every failure).

    Each failure is one short transaction that reads the two rows with ``FOR UPDATE``
    (PostgreSQL; SQLite serialises writers anyway) and writes them back, so two instances
    failing the same account at once both count. Failure times older than ``window`` are
    dropped as they are written; rows untouched for a day are purged on the way.
    """

    def __init__(
        self,
        sessionmaker: Any,
        clock: Callable[[], float],
        *,
        account_failures: int = 5,
        address_failures: int = 20,
        window: float = 300.0,
        lockout: float = 900.0,
    ) -> None:
        self._sm = sessionmaker
        self._clock = clock
        self.limits = {"account": account_failures, "address": address_failures}
        self.window = window
        self.lockout = lockout

    @staticmethod
    def _keys(account: str, address: str | None) -> list[tuple[str, str]]:
        return [(k, v[:200]) for k, v in (("account", account), ("address", address)) if v]

    async def retry_after(self, account: str, address: str | None) -> int | None:
        from sqlalchemy import select, tuple_

        from auth.models import LoginThrottleRow as Row

        keys = self._keys(account, address)
        async with self._sm() as s:
            rows = (await s.execute(select(Row).where(tuple_(Row.kind, Row.key).in_(keys)))).scalars().all()
        return wait_of([_Entry(deque(), r.locked_until) for r in rows], self._clock())

    def _writer_lock(self) -> Any:
        """SQLite (the embedded, single-process store) starts a transaction's write lock only at its
        first write, so two concurrent read-modify-writes would lose a failure: serialise them in
        the process. PostgreSQL locks the rows (``FOR UPDATE``) and needs nothing more."""
        bind = getattr(self._sm, "kw", {}).get("bind")
        if bind is not None and bind.dialect.name == "sqlite":
            return _SQLITE_WRITERS.setdefault(str(bind.url), asyncio.Lock())
        return contextlib.nullcontext()

    async def failure(self, account: str, address: str | None) -> list[str]:
        from sqlalchemy.exc import IntegrityError

        async with self._writer_lock():
            for attempt in range(3):  # two instances inserting the same new row: the loser retries
                try:
                    return await self._failure(account, address)
                except IntegrityError:
                    if attempt == 2:
                        raise
        return []

    async def _failure(self, account: str, address: str | None) -> list[str]:
        from sqlalchemy import delete, select, tuple_

        from auth.models import LoginThrottleRow as Row

        now = self._clock()
        locked: list[str] = []
        keys = self._keys(account, address)
        async with self._sm() as s, s.begin():
            found = {(r.kind, r.key): r for r in (await s.execute(
                select(Row).where(tuple_(Row.kind, Row.key).in_(keys)).with_for_update())).scalars()}
            for kind, key in keys:
                row = found.get((kind, key))
                if row is None:
                    row = Row(kind=kind, key=key, failures=[], locked_until=0.0)
                    s.add(row)
                e = _Entry(deque(float(t) for t in row.failures or ()), float(row.locked_until or 0.0))
                if record_failure(e, now, self.limits[kind], self.window, self.lockout):
                    locked.append(kind)
                row.failures, row.locked_until, row.updated_at = list(e.failures), e.locked_until, now
            await s.execute(delete(Row).where(Row.updated_at < now - 86400, Row.locked_until < now))
        return locked

    async def success(self, account: str) -> None:
        from sqlalchemy import delete

        from auth.models import LoginThrottleRow as Row

        async with self._sm() as s, s.begin():
            await s.execute(delete(Row).where(Row.kind == "account", Row.key == account[:200]))
