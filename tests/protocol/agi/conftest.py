from __future__ import annotations

import _thread
import asyncio
import threading
import time
from typing import Awaitable, Callable

import pytest

from ivr.agi.server import FastAgiServer


@pytest.fixture(autouse=True)
def loop_watchdog():
    """If a bug freezes the event loop (panoramisk 1.4's header loop does), fail instead of hanging forever."""
    timer = threading.Timer(30.0, _thread.interrupt_main)
    timer.daemon = True
    timer.start()
    yield
    timer.cancel()


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.01)


@pytest.fixture
async def make_server():
    servers: list[FastAgiServer] = []

    async def factory(routes: dict[str, Callable[..., Awaitable[None]]], **kwargs) -> FastAgiServer:
        kwargs.setdefault("header_timeout", 2.0)
        kwargs.setdefault("command_timeout", 5.0)
        server = FastAgiServer("127.0.0.1", 0, **kwargs)
        for name, handler in routes.items():
            server.add_route(name, handler)
        await server.start()
        servers.append(server)
        return server

    yield factory
    for server in servers:
        await server.close(grace=0.5)
