"""The real local broker the scale-out tests use (issue 19).

``CALLCORE_TEST_BROKER_URL`` (default ``nats://127.0.0.1:4222``). Not reachable: the tests
skip on a developer's machine and FAIL in CI (``CI=true``), like ``scripts/test-pg``."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from urllib.parse import urlparse

import pytest

URL = os.environ.get("CALLCORE_TEST_BROKER_URL", "nats://127.0.0.1:4222")


def _reachable(url: str) -> bool:
    u = urlparse(url)
    try:
        with socket.create_connection((u.hostname or "127.0.0.1", u.port or 4222), timeout=1):
            return True
    except OSError:
        return False


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def broker_url() -> str:
    """The broker's URL, or skip (fail in CI) when none is running."""
    if not _reachable(URL):
        if in_ci():
            pytest.fail(f"CI={os.environ.get('CI')}: the broker tests must run in CI; no NATS at {URL} "
                        "(start one or set CALLCORE_TEST_BROKER_URL)")
        pytest.skip(f"no NATS broker at {URL} (start one or set CALLCORE_TEST_BROKER_URL)")
    return URL


def fresh_prefix() -> str:
    """A subject prefix of its own, so parallel test runs on one broker never see each other."""
    return f"cctest{uuid.uuid4().hex[:12]}"


async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    """One direction of the tests' TCP proxies (a broker or a database link cut on purpose)."""
    try:
        while data := await src.read(65536):
            dst.write(data)
            await dst.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        dst.close()
