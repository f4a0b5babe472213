"""Who is calling: the CRM behind a short cache shared by the router, the pop
preload, click-to-call and call persistence; and the lookup behind
``GET /api/customers/lookup``.

A found record is cached ``cache_seconds`` (120 s), "no such customer" only
``miss_cache_seconds`` (5 s). Cached lookups of a number are dropped when the
customer behind it changes in callcore's own table — created, updated (old and
new numbers), deleted or given a note, whichever code path wrote it
(``POST/PUT /api/customers`` …): :meth:`CustomerService.watch` listens to the ORM's
flush events of ``cti_customers`` / ``cti_customer_notes`` — or when a call of
theirs is stored; so a customer created a moment before their call is in that
call's pop."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from cti import repository as repo_mod
from sqlalchemy import event
from sqlalchemy import inspect as sa_inspect

from cti.crm import Crm
from cti.errors import NotFound
from cti.models import CustomerNoteRow, CustomerRow
from cti.repository import CtiRepository

log = logging.getLogger("callcore.cti")


class CustomerService:
    def __init__(
        self,
        repository: CtiRepository,
        crm: Crm,
        *,
        clock: Callable[[], float],
        timeout: float = 1.5,
        cache_seconds: float = 120.0,
        miss_cache_seconds: float = 5.0,
    ) -> None:
        self.repository = repository
        self.crm = crm
        self._clock = clock
        self.timeout = timeout
        self.cache_seconds = cache_seconds
        self.miss_cache_seconds = miss_cache_seconds
        self._cache: dict[str, tuple[float, dict[str, Any] | None]] = {}
        self._numbers: dict[int, set[str]] = {}  # built-in customer id -> numbers cached for it
        self._watching = False

    async def lookup_customer(self, phone: str) -> dict[str, Any] | None:
        """CRM lookup with a short cache (the router and the preload share it)."""
        now = self._clock()
        hit = self._cache.get(phone)
        if hit is not None and hit[0] > now:
            return hit[1]
        try:
            record = await asyncio.wait_for(self.crm.lookup(phone), self.timeout)
        except asyncio.TimeoutError:
            log.warning("CRM lookup for %s timed out", phone)
            return None
        except Exception:
            log.exception("CRM lookup for %s failed", phone)
            return None
        self._cache[phone] = (now + (self.cache_seconds if record is not None else self.miss_cache_seconds), record)
        if record is not None and isinstance(record.get("id"), int):
            self._numbers.setdefault(record["id"], set()).add(phone)
        if len(self._cache) > 10_000:
            for k in [k for k, (exp, _) in self._cache.items() if exp <= now]:
                self._cache.pop(k, None)
        return record

    def forget(self, *phones: str | None) -> None:
        """Drop cached lookups (hits and misses) for these numbers."""
        for phone in phones:
            if phone:
                self._cache.pop(phone, None)

    # ------------------------------------------- invalidation on customer writes
    def watch(self) -> None:
        """Drop cached lookups whenever a customer row or note is written (ORM flush events)."""
        if not self._watching:
            for what in ("after_insert", "after_update", "after_delete"):
                event.listen(CustomerRow, what, self._customer_written)
            event.listen(CustomerNoteRow, "after_insert", self._note_written)
            self._watching = True

    def unwatch(self) -> None:
        if self._watching:
            for what in ("after_insert", "after_update", "after_delete"):
                event.remove(CustomerRow, what, self._customer_written)
            event.remove(CustomerNoteRow, "after_insert", self._note_written)
            self._watching = False

    def _customer_written(self, mapper: Any, connection: Any, row: CustomerRow) -> None:
        numbers = {row.phone, *(row.phones or [])}
        state = sa_inspect(row)
        for attr in ("phone", "phones"):  # an update: the numbers it had before, too
            for old in state.attrs[attr].history.deleted or ():
                numbers.update(old if isinstance(old, list) else [old])
        self.forget(*numbers)
        if row.id is not None:
            self.forget(*self._numbers.pop(row.id, ()))

    def _note_written(self, mapper: Any, connection: Any, note: CustomerNoteRow) -> None:
        self.forget(*self._numbers.pop(note.customer_id, ()))

    async def count_recent_calls(self, phone: str, hours: int) -> int:
        return await self.repository.count_calls_since(phone, repo_mod.since_hours(hours, self._clock()))

    async def customer_lookup(self, phone: str) -> dict[str, Any]:
        customer = await self.repository.find_customer_by_phone(phone)
        if customer is None:
            raise NotFound(f"no customer with phone {phone}")
        customer["previous_calls"] = await self.repository.previous_calls(phone, limit=10)
        return customer
