"""Who is calling: the CRM behind a short cache shared by the router, the pop
preload, click-to-call and call persistence; and the customer REST service.

A cached record is dropped when the customer behind it changes (created, updated,
deleted, a note added through ``/api/customers``, or a call of theirs stored), so a
customer created a moment before their call is in that call's pop."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from cti import repository as repo_mod
from cti.crm import Crm
from cti.errors import NotFound
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
    ) -> None:
        self.repository = repository
        self.crm = crm
        self._clock = clock
        self.timeout = timeout
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, dict[str, Any] | None]] = {}

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
        self._cache[phone] = (now + self.cache_seconds, record)
        if len(self._cache) > 10_000:
            for k in [k for k, (exp, _) in self._cache.items() if exp <= now]:
                self._cache.pop(k, None)
        return record

    def forget(self, *phones: str | None) -> None:
        """Drop cached lookups (hits and misses) for these numbers."""
        for phone in phones:
            if phone:
                self._cache.pop(phone, None)

    async def count_recent_calls(self, phone: str, hours: int) -> int:
        return await self.repository.count_calls_since(phone, repo_mod.since_hours(hours, self._clock()))

    async def customer_lookup(self, phone: str) -> dict[str, Any]:
        customer = await self.repository.find_customer_by_phone(phone)
        if customer is None:
            raise NotFound(f"no customer with phone {phone}")
        customer["previous_calls"] = await self.repository.previous_calls(phone, limit=10)
        return customer
