"""The CRM port: who is calling? Two implementations.

* :class:`BuiltinCrm` (default): the ``cti_customers`` table, with notes and
  the caller's previous calls and their dispositions;
* :class:`HttpCrm`: ``GET {crm_url}/customers/lookup?phone=...`` on an external
  CRM (callcore's own REST answers that path too), with a hard timeout: a slow
  CRM yields ``None`` (and is counted), never a stuck screen pop.

Records are plain dicts: ``{"id", "name", "phone", "vip", "notes": [...],
"previous_calls": [...], ...}``; a missing customer is ``None``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

import httpx

from cti.repository import CtiRepository

log = logging.getLogger("callcore.cti.crm")


class Crm(Protocol):
    async def lookup(self, phone: str) -> dict[str, Any] | None: ...


class BuiltinCrm:
    def __init__(self, repository: CtiRepository, *, previous_calls: int = 10) -> None:
        self._repo = repository
        self._previous = previous_calls

    async def lookup(self, phone: str) -> dict[str, Any] | None:
        customer = await self._repo.find_customer_by_phone(phone)
        if customer is None:
            return None
        customer["previous_calls"] = await self._repo.previous_calls(phone, limit=self._previous)
        customer["source"] = "builtin"
        # Custom fields (tier, status, balance…) live in ``attributes``; an IVR lookup maps
        # top-level paths (``tier: customer.tier``) as an external CRM would return them,
        # so expose them there too — never over the table's own columns.
        for key, value in (customer.get("attributes") or {}).items():
            customer.setdefault(key, value)
        return customer


class HttpCrm:
    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 1.5,
        client: httpx.AsyncClient | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._timeout = timeout
        self._client = client
        self._own_client = client is None
        self._headers = dict(headers or {})
        self.failures = 0

    async def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout)
        return self._client

    async def lookup(self, phone: str) -> dict[str, Any] | None:
        client = await self._http()
        try:
            # httpx timeouts are per operation; the pop needs a bound on the whole lookup
            resp = await asyncio.wait_for(
                client.get(f"{self._base}/customers/lookup", params={"phone": phone}, headers=self._headers, timeout=self._timeout),
                self._timeout,
            )
        except asyncio.TimeoutError:
            self.failures += 1
            log.warning("CRM lookup %s timed out after %.1fs", self._base, self._timeout)
            return None
        except httpx.HTTPError as exc:
            self.failures += 1
            log.warning("CRM lookup %s failed: %s", self._base, exc)
            return None
        if resp.status_code == 404:
            return None
        if resp.status_code >= 400:
            self.failures += 1
            log.warning("CRM lookup %s answered HTTP %s", self._base, resp.status_code)
            return None
        try:
            data = resp.json()
        except ValueError:
            self.failures += 1
            return None
        if not isinstance(data, dict):
            return None
        data.setdefault("source", "http")
        return data

    async def aclose(self) -> None:
        if self._client is not None and self._own_client:
            await self._client.aclose()
            self._client = None
