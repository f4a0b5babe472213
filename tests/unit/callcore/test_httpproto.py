"""callcore/httpproto.py (issue 18, round five): a websocket upgrade leaves no cyclic garbage behind."""

from __future__ import annotations

import asyncio
import gc

import uvicorn
import websockets

from callcore.httpproto import http_protocol


async def _app(scope, receive, send) -> None:  # a bare ASGI websocket echo
    if scope["type"] != "websocket":
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    msg = await receive()
    await send({"type": "websocket.send", "text": msg.get("text") or ""})
    await receive()


async def _upgraded_protocols_alive(http: object) -> int:
    """Serve one websocket, then count the HTTP protocol objects still alive, without the
    cyclic collector (reference counting only)."""
    config = uvicorn.Config(_app, host="127.0.0.1", port=0, log_config=None, lifespan="off",
                            ws="websockets-sansio", http=http)
    server = uvicorn.Server(config)
    server.capture_signals = _no_signals  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(500):
            if server.started:
                break
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        cls = config.http_protocol_class
        gc.collect()
        gc.disable()
        try:
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as ws:
                await ws.send("hi")
                assert await ws.recv() == "hi"
                return sum(1 for o in gc.get_objects() if type(o) is cls)
        finally:
            gc.enable()
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


def _no_signals():
    import contextlib

    return contextlib.nullcontext()


async def test_the_upgraded_http_protocol_is_freed_by_reference_counting() -> None:
    assert await _upgraded_protocols_alive(http_protocol()) == 0
    # uvicorn's own protocol stays alive in its cycle until a collection (what the fix removes)
    assert await _upgraded_protocols_alive("httptools") == 1
