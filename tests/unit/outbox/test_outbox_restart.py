"""Durable webhook outbox (issue 12): a real receiver on loopback fails, callcore
restarts, the receiver recovers — every delivery arrives, with the same delivery id;
a hook that never recovers ends dead-lettered and visible to admins."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from typing import Any

import httpx

from callcore import migrate
from callcore.app import Container
from callcore.bus import Message
from callcore.settings import Settings
from cti.webhooks import sign
from tests.e2e.conftest import eventually

ADMIN = "outbox-admin"
SECRET = "s3cret"


class Receiver:
    """HTTP/1.1 on 127.0.0.1: ``/flaky`` answers 503 until ``healthy``, ``/broken`` always 500."""

    def __init__(self) -> None:
        self.healthy = False
        self.requests: list[dict[str, Any]] = []
        self.ok: dict[str, dict[str, Any]] = {}
        self.server: asyncio.base_events.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def close(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                path = lines[0].split()[1]
                headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:] if ": " in line)}
                body = await reader.readexactly(int(headers.get("content-length", 0)))
                req = {"path": path, "headers": headers, "body": body}
                self.requests.append(req)
                status = 200 if (path == "/flaky" and self.healthy) else (503 if path == "/flaky" else 500)
                if status == 200:
                    self.ok.setdefault(headers["x-callcore-delivery"], req)
                writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n".encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def _settings(tmp_path, url: str, base: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=url,
        http_port=0,
        only=["http"],
        dialplan_watch=False,
        api_tokens={ADMIN: "admin"},
        webhook_retry_first_wait=0.05,
        webhook_retry_max_wait=0.2,
        webhooks=[
            {"url": f"{base}/flaky", "secret": SECRET, "events": ["call.ended"], "max_attempts": 50},
            {"url": f"{base}/broken", "secret": SECRET, "events": ["call.ended"], "max_attempts": 3},
        ],
    )


async def _rows(c: Container) -> list[Any]:
    return await c.outbox.list(None, 100)


async def test_deliveries_survive_a_restart_and_dead_letters_are_listed(tmp_path, empty_database_url):
    if empty_database_url.startswith("postgresql"):
        await asyncio.to_thread(migrate.upgrade, empty_database_url)
    receiver = Receiver()
    base = await receiver.start()
    settings = _settings(tmp_path, empty_database_url, base)
    first = Container(settings)
    await first.start()
    try:
        for n in range(3):
            first.bus.publish(Message("call.ended", {"call_id": f"c{n}", "caller": "홍길동"}, frozenset()))
        first.bus.publish(Message("call.ringing", {"call_id": "not-hooked"}, frozenset()))

        async def stored_and_failing() -> bool:
            rows = await _rows(first)
            flaky = [r for r in rows if r.hook_url.endswith("/flaky")]
            return len(flaky) == 3 and all(r.attempts >= 1 and r.status == "pending" for r in flaky)

        await _eventually_async(stored_and_failing, 10, "3 flaky deliveries stored and failed once")
    finally:
        await first.stop()  # callcore restarts while the receiver is still failing
    failed_ids = {r["headers"]["x-callcore-delivery"] for r in receiver.requests if r["path"] == "/flaky"}
    assert len(failed_ids) == 3 and receiver.ok == {}

    receiver.healthy = True
    second = Container(settings)
    await second.start()
    try:
        await eventually(lambda: len(receiver.ok) == 3, 10, "the 3 deliveries after the restart")
        assert set(receiver.ok) == failed_ids  # same delivery ids: the receiver can drop duplicates
        for req in receiver.ok.values():
            assert req["headers"]["x-callcore-signature"] == sign(SECRET, req["body"])
            assert int(req["headers"]["x-callcore-attempt"]) >= 2
        payloads = sorted(json.loads(r["body"])["payload"]["call_id"] for r in receiver.ok.values())
        assert payloads == ["c0", "c1", "c2"]
        assert json.loads(next(iter(receiver.ok.values()))["body"])["payload"]["caller"] == "홍길동"

        async def broken_dead() -> bool:
            return sum(r.status == "dead" for r in await _rows(second)) == 3

        await _eventually_async(broken_dead, 10, "the broken hook's deliveries dead-lettered")
        per_id: dict[str, int] = defaultdict(int)
        for r in receiver.requests:
            if r["path"] == "/broken":
                per_id[r["headers"]["x-callcore-delivery"]] += 1
        # max_attempts counted across the restart; an attempt the restart cut short (request
        # sent, answer not recorded) is sent again: at least once, never fewer than 3
        assert [r.attempts for r in await _rows(second) if r.status == "dead"] == [3, 3, 3]
        assert len(per_id) == 3 and all(3 <= n <= 4 for n in per_id.values()), per_id

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{second.http_port}") as http:
            r = await http.get("/api/webhooks/deliveries?status=dead", headers={"Authorization": f"Bearer {ADMIN}"})
            assert r.status_code == 200, r.text
            body = r.json()
            assert len(body["deliveries"]) == 3 and all(d["hook_url"].endswith("/broken") for d in body["deliveries"])
            assert body["deliveries"][0]["last_error"] == "answered HTTP 500"
            assert body["counts"] == {"delivered": 3, "dead": 3}
            agent = second.cti.authenticator.issue("1001", "agent")
            r = await http.get("/api/webhooks/deliveries?status=dead", headers={"Authorization": f"Bearer {agent}"})
            assert r.status_code == 403
            r = await http.get("/api/webhooks/deliveries?status=nope", headers={"Authorization": f"Bearer {ADMIN}"})
            assert r.status_code == 422
            # an operator puts one back: it is tried again (and dies again: the receiver is still broken)
            dead_id = body["deliveries"][0]["id"]
            before = per_id[dead_id]
            r = await http.post(f"/api/webhooks/deliveries/{dead_id}/retry", headers={"Authorization": f"Bearer {ADMIN}"})
            assert r.status_code == 202
            r = await http.post("/api/webhooks/deliveries/nope/retry", headers={"Authorization": f"Bearer {ADMIN}"})
            assert r.status_code == 404
            await eventually(
                lambda: sum(1 for q in receiver.requests if q["headers"]["x-callcore-delivery"] == dead_id) > before,
                10, "the requeued delivery tried again",
            )
            metrics = (await http.get("/metrics")).text
            assert "callcore_webhook_delivered_total 3.0" in metrics
    finally:
        await second.stop()
        await receiver.close()


async def _eventually_async(check, timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)
