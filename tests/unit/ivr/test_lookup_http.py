"""HttpLookupClient against a local stub server on 127.0.0.1 (port 0)."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from ivr.lookup import HttpLookupClient, LookupFailed

from .helpers import flows, heard, run


class StubServer:
    """A tiny HTTP/1.1 server: ``routes[path] = (delay_s, status, body_bytes)``. Owns its handler tasks."""

    def __init__(self, routes):
        self.routes = routes
        self.requests: list[str] = []
        self._tasks: set[asyncio.Task] = set()
        self.server: asyncio.AbstractServer | None = None

    async def __aenter__(self):
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc):
        self.server.close()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.server.wait_closed()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, reader, writer):
        task = asyncio.current_task()
        self._tasks.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            target = head.split(b" ")[1].decode()
            self.requests.append(target)
            path = target.split("?")[0]
            delay, status, body = self.routes.get(path, (0, 404, b"{}"))
            await asyncio.sleep(delay)
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            self._tasks.discard(task)


FLOW = """
    languages: [ko]
    start: crm
    nodes:
      crm:
        type: lookup
        path: /customers/by-phone/{caller}
        timeout: 0.3
        wait_prompt: one_moment
        map: {tier: customer.tier}
        required: tier
        next: ok
        fallback: fb
      ok: {type: queue, queue: vip}
      fb: {type: queue, queue: general}
"""


async def test_lookup_timeout_takes_fallback_quickly_and_caller_hears_a_prompt():
    # generous figures so a loaded CI machine still reaches the server within the lookup timeout
    routes = {"/customers/by-phone/01012345678": (10.0, 200, b'{"customer": {"tier": "vip"}}')}
    async with StubServer(routes) as srv:
        client = HttpLookupClient(srv.url)
        started = time.monotonic()
        o, ch = await run(flows(main=FLOW.replace("timeout: 0.3", "timeout: 1.0")), [], lookup=client)
        elapsed = time.monotonic() - started
        await client.aclose()
    assert o.kind == "queue" and o.queue == "general"
    assert o.context["lookups"]["main:crm"]["status"] == "timeout"
    assert elapsed < 6.0  # the 10 s server delay was not waited for
    assert heard(ch) == ["ko/one_moment"]
    assert srv.requests == ["/customers/by-phone/01012345678"]


async def test_lookup_success_and_garbage_over_http():
    routes = {
        "/customers/by-phone/01012345678": (0, 200, json.dumps({"customer": {"tier": "vip"}}).encode()),
        "/customers/by-phone/0299998888": (0, 200, b"<html>oops</html>"),
        "/customers/by-phone/0311112222": (0, 503, b"{}"),
    }
    async with StubServer(routes) as srv:
        client = HttpLookupClient(srv.url)
        flow = flows(main=FLOW.replace("timeout: 0.3", "timeout: 5.0"))  # not a timing test: no timeout under load
        o, _ = await run(flow, [], lookup=client)
        assert (o.queue, o.variables["tier"]) == ("vip", "vip")
        o, _ = await run(flow, [], lookup=client, caller="0299998888")
        assert o.queue == "general" and o.context["lookups"]["main:crm"]["reason"] == "not json"
        o, _ = await run(flow, [], lookup=client, caller="0311112222")
        assert o.queue == "general" and o.context["lookups"]["main:crm"]["reason"] == "http 503"
        await client.aclose()


async def test_http_client_without_url_fails_cleanly():
    with pytest.raises(LookupFailed) as err:
        await HttpLookupClient(None).lookup("GET", "/x", {}, 1.0)
    assert "not configured" in err.value.reason


async def test_connection_refused_is_a_lookup_failure():
    async with StubServer({}) as srv:
        url = srv.url
    client = HttpLookupClient(url)
    with pytest.raises(LookupFailed) as err:
        await client.lookup("GET", "/x", {}, 1.0)
    await client.aclose()
    assert err.value.reason.startswith("http error")
