"""The ``LookupClient`` port (CRM/backend HTTP calls) with two implementations.

* :class:`HttpLookupClient` — httpx against ``settings.crm_url``.
* :class:`FixtureLookupClient` — answers from a mapping / YAML file, for
  ``callcore dialplan try --lookup-fixture`` and tests.

Both raise :class:`LookupFailed` (``reason``: ``timeout``, ``http 503``,
``not json``, ``not configured``...) and never anything else for a failed
call; the engine turns a failure into the node's ``fallback`` branch.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, Mapping, Protocol

import httpx
import yaml


class LookupFailed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class LookupClient(Protocol):
    async def lookup(self, method: str, path: str, query: Mapping[str, str], timeout: float) -> Any:
        """Call ``path`` (already URL-quoted) and return the decoded JSON body."""


class HttpLookupClient:
    """httpx implementation. ``base_url`` is ``settings.crm_url``; ``None`` fails every lookup
    (so flows take their fallback branch when no CRM is configured)."""

    def __init__(self, base_url: str | None, *, client: httpx.AsyncClient | None = None, headers: Mapping[str, str] | None = None) -> None:
        self._base = base_url.rstrip("/") if base_url else None
        self._client = client
        self._own_client = client is None
        self._headers = dict(headers or {})

    async def lookup(self, method: str, path: str, query: Mapping[str, str], timeout: float) -> Any:
        if self._base is None:
            raise LookupFailed("not configured (settings.crm_url is empty)")
        if self._client is None:
            self._client = httpx.AsyncClient(headers=self._headers)
        url = self._base + path
        try:
            if method == "POST":
                resp = await self._client.post(url, json=dict(query), timeout=timeout)
            else:
                resp = await self._client.get(url, params=dict(query), timeout=timeout)
        except httpx.TimeoutException:
            raise LookupFailed("timeout") from None
        except httpx.HTTPError as exc:
            raise LookupFailed(f"http error: {exc.__class__.__name__}") from None
        if resp.status_code == 404:
            raise LookupFailed("not found (404)")
        if resp.status_code >= 400:
            raise LookupFailed(f"http {resp.status_code}")
        try:
            return resp.json()
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
            raise LookupFailed("not json") from None

    async def aclose(self) -> None:
        if self._client is not None and self._own_client:
            await self._client.aclose()
            self._client = None


class FixtureLookupClient:
    """Answers from a mapping ``path -> response``.

    A response is the JSON body (served as 200), or ``{status: 404}`` /
    ``{status: 200, body: ...}``, or the strings ``"timeout"`` / ``"error"`` /
    ``"garbage"`` (a non-JSON body). A ``"path?query"`` key wins over the bare
    path; ``"*"`` is the default; anything else is a 404.
    """

    def __init__(self, responses: Mapping[str, Any]) -> None:
        self._responses = dict(responses)
        self.calls: list[tuple[str, str, dict[str, str]]] = []

    @classmethod
    def from_file(cls, path: Path) -> "FixtureLookupClient":
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a lookup fixture is a mapping of path -> response")
        return cls(data)

    async def lookup(self, method: str, path: str, query: Mapping[str, str], timeout: float) -> Any:
        self.calls.append((method, path, dict(query)))
        from urllib.parse import unquote, urlencode

        keys = []
        if query:
            keys.append(f"{path}?{urlencode(sorted(query.items()))}")
        keys += [path, unquote(path), "*"]
        for key in keys:
            if key in self._responses:
                resp = self._responses[key]
                break
        else:
            raise LookupFailed("not found (404)")
        if resp == "timeout":
            await asyncio.sleep(timeout + 1)  # the engine's own deadline fires first
            raise LookupFailed("timeout")
        if resp == "error":
            raise LookupFailed("http 500")
        if resp == "garbage":
            raise LookupFailed("not json")
        if isinstance(resp, dict) and "status" in resp and set(resp) <= {"status", "body"}:
            status = int(resp["status"])
            if status == 404:
                raise LookupFailed("not found (404)")
            if status >= 400:
                raise LookupFailed(f"http {status}")
            return resp.get("body")
        return resp


class PhoneDirectoryLookup:
    """Answers ``/customers/by-phone/{phone}`` from a phone directory (an object with
    ``async lookup(phone) -> dict | None``, e.g. CTI's customer table) as
    ``{"customer": record}``; every other path goes to ``fallback``."""

    PREFIX = "/customers/by-phone/"

    def __init__(self, directory: Any, *, fallback: LookupClient | None = None) -> None:
        self._directory = directory
        self._fallback = fallback

    async def lookup(self, method: str, path: str, query: Mapping[str, str], timeout: float) -> Any:
        if path.startswith(self.PREFIX):
            from urllib.parse import unquote

            phone = unquote(path[len(self.PREFIX):])
            try:
                record = await asyncio.wait_for(self._directory.lookup(phone), timeout)
            except asyncio.TimeoutError:
                raise LookupFailed("timeout") from None
            except Exception as exc:  # noqa: BLE001 - any directory failure is a fallback, not a crash
                raise LookupFailed(f"directory error: {exc.__class__.__name__}") from None
            if record is None:
                raise LookupFailed("not found (404)")
            return {"customer": record}
        if self._fallback is None:
            raise LookupFailed("not configured")
        return await self._fallback.lookup(method, path, query, timeout)

    async def aclose(self) -> None:
        aclose = getattr(self._fallback, "aclose", None)
        if aclose is not None:
            await aclose()
