"""The desk websocket, ``/ws``: one session per connected desk or wallboard (issue 18 round five).

A session authenticates the handshake (:func:`api.auth.websocket_login`), sends ``hello``
(the agent's state and its current call's pop), then relays its bus keys' messages and
answers the client's ``subscribe`` / ``unsubscribe`` / ``ping`` (cti/events.yml). The
contract is unchanged from the FastAPI route it replaces; what changed is its cost, since a
centre keeps thousands of these open all day:

* **one task per connection** — the ASGI handler's own, which reads the client. Writing
  needs no task: the bus subscription's sink is a :class:`callcore.wsguard.PushWriter`,
  which writes each message inside ``Bus.publish`` (the pop reaches the socket while the
  AMI frame that made it is still being handled) and only starts a task for a send that
  has to wait; the slow-client limits are the guard's, as before.
* **outside the HTTP middleware** — :func:`install` puts :class:`DeskSocketEndpoint` in
  front of the app's middleware stack, so an open socket does not keep a coroutine frame
  of every middleware, of FastAPI's routing and dependency machinery and an
  ``AsyncExitStack`` or two alive for hours. For a websocket those middleware do nothing
  but count (body limit, security headers and CORS are HTTP-only; the error middleware
  re-raises), so the endpoint counts the same websocket metrics itself
  (:class:`callcore.metrics.WsMeter`).
* every message is encoded once, whatever the number of sockets (``Message.encoded``),
  and written as it is.

Apps built from :func:`cti.routes.routers` alone (tests, tools) still serve ``/ws`` through
the FastAPI route, which runs the same :func:`serve_session`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any, Awaitable, Callable

from starlette.websockets import WebSocket

from api.auth import Principal, websocket_login
from auth import scope
from auth.masking import mask_numbers
from callcore.wsguard import WsGuard

log = logging.getLogger("callcore.cti.routes")

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
PATH = "/ws"


# ------------------------------------------------------------------ permissions and encoding
def allowed_keys(p: Principal, requested: list[str]) -> tuple[set[str], list[str]]:
    """Which bus keys a session may subscribe to (permission table: auth/permissions.py):
    one's own ``agent:<id>`` always; ``queue:<name>`` (in one's queue scope) and ``queue.stats``
    with ``queues.monitor``; another ``agent:<id>`` and ``supervisor`` with ``agents.monitor``."""
    ok: set[str] = set()
    denied: list[str] = []
    for key in requested:
        if not isinstance(key, str) or not key:
            continue
        if key == f"agent:{p.agent_id}" and p.agent_id:
            ok.add(key)
        elif key.startswith("queue:") and p.can("queues.monitor") and p.in_scope(key[6:]):
            ok.add(key)
        elif key == "queue.stats" and p.can("queues.monitor"):
            # a queue-scoped user gets the statistics of its queues (their per-queue keys)
            ok.update({f"queue:{q}" for q in p.queues} if p.queues else {key})
        elif (key.startswith("agent:") or key == "supervisor") and p.can("agents.monitor"):
            ok.add(key)
        else:
            denied.append(key)
    return ok, denied


def masks_numbers(conn: Any, p: Principal) -> bool:
    settings = getattr(conn.app.state, "settings", None)
    return p.role in (getattr(settings, "mask_numbers_for_roles", None) or ()) and not p.can("numbers.unmasked")


def encode_message(msg: Any) -> str:
    text = msg.encoded.get("plain")
    if text is None:  # once per message, whatever the number of sockets (issue 18)
        text = msg.encoded["plain"] = json.dumps({"event": msg.name, "payload": msg.payload}, ensure_ascii=False, default=str)
    return text


def masked_encoder(msg: Any) -> str:
    text = msg.encoded.get("masked")
    if text is None:
        text = msg.encoded["masked"] = json.dumps(
            {"event": msg.name, "payload": mask_numbers(msg.payload)}, ensure_ascii=False, default=str
        )
    return text


def scoped_encoder(p: Principal, mask: bool, plain: Any, service: Any) -> Any:
    """A queue/team-scoped supervisor's ``wallboard.update`` is cut to its scope before it is
    written (auth/scope.py ``wallboard_in_scope``): encoded once per scope, however many sockets."""
    name = f"scope:{','.join(sorted(p.queues))}|{','.join(sorted(p.teams))}|{int(mask)}"

    def encode(msg: Any) -> str:
        if msg.name != "wallboard.update":
            return plain(msg)
        text = msg.encoded.get(name)
        if text is None:
            payload = scope.wallboard_in_scope(p, msg.payload, service.agents.list_agents())
            text = msg.encoded[name] = json.dumps(
                {"event": msg.name, "payload": mask_numbers(payload) if mask else payload}, ensure_ascii=False, default=str)
        return text

    return encode


def _encoder(p: Principal, mask: bool, service: Any) -> Callable[[Any], str]:
    encode = masked_encoder if mask else encode_message
    if p.queues or p.teams:
        encode = scoped_encoder(p, mask, encode, service)
    return encode


# ------------------------------------------------------------------ the session
async def serve_session(ws: WebSocket, receive: Receive, send: Send, meter: Any = None) -> None:
    """One desk session, start to end. ``ws`` is used for the handshake only; afterwards the
    session reads ``receive`` and writes ``send`` (the raw ASGI callables). ``meter``
    (:class:`callcore.metrics.WsMeter`) counts what the metrics middleware would have."""
    p = await websocket_login(ws)  # handshake credential, session cookie, or a first {"auth": ...} message
    if p is None:
        return
    app = ws.app
    service = app.state.cti
    bus = service.bus
    mask = masks_numbers(ws, p)
    initial = {f"agent:{p.agent_id}"} if p.agent_id else set()
    if p.can("agents.monitor"):
        initial.add("supervisor")
    # a queue-scoped user's feed carries only its queues' calls, agents and statistics (auth/scope.py)
    predicate = (lambda m: scope.message_in_scope(p, m.name, m.payload, m.audience)) if p.queues else None
    guard: WsGuard = getattr(app.state, "ws_guard", None) or WsGuard()
    this = asyncio.current_task()
    assert this is not None
    reading = [True]
    writer_ended = [False]

    def on_end() -> None:  # the writer stopped for good (cut off, or the client is gone): stop reading
        writer_ended[0] = True
        if reading[0]:
            this.cancel()

    # with a meter every frame and the close of a cut-off are counted on their way out
    writer = guard.writer(meter.send(send) if meter is not None else send, _encoder(p, mask, service), who=p.subject,
                          max_backlog=bus.max_queue, on_end=on_end, raw_send=send)
    hello: dict[str, Any] = {"event": "hello", "payload": {"subject": p.subject, "role": p.role}}
    if p.agent_id and p.agent_id in service.state.agents:
        hello["payload"]["agent"] = service.state.agents[p.agent_id].to_dict()
        call = service.state.call_for_agent(p.agent_id)
        hello["payload"]["call"] = service.pops.pop(call, p.agent_id) if call else None
        recording = getattr(app.state, "recording", None)
        if call and recording is not None and isinstance(hello["payload"]["call"], dict):
            # a reconnecting desk gets the PCI pause back with the call (issue 14)
            hello["payload"]["call"]["rec_paused"] = recording.is_paused(call.id)
    # subscribed and hello queued in one step: whatever is published from now on follows the hello
    sub = bus.subscribe(initial, predicate=predicate, sink=writer.offer)
    writer.sub = sub
    hello["payload"]["keys"] = sorted(sub.keys)
    service.websocket_clients += 1
    del ws  # the handshake's Starlette objects (headers, cookies, query) are not kept for the session
    try:
        writer.offer(json.dumps(mask_numbers(hello) if mask else hello, ensure_ascii=False, default=str))
        del hello, initial  # not kept in this frame for the session's life
        try:
            await _read(receive, writer, service, sub, p, meter)
        except asyncio.CancelledError:
            if not writer_ended[0]:
                raise  # the server is stopping: not the writer
            this.uncancel()
        except Exception as exc:
            log.warning("websocket session ended: %r", exc)
        finally:
            reading[0] = False
    finally:
        writer.stop()
        service.websocket_clients -= 1
        bus.unsubscribe(sub)
        with contextlib.suppress(Exception):
            if meter is not None:
                meter.saw_send({"type": "websocket.close", "code": 1000})
            await send({"type": "websocket.close", "code": 1000})


async def _read(receive: Receive, writer: Any, service: Any, sub: Any, p: Principal, meter: Any) -> None:
    """The client's side of the session, until it disconnects."""
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "websocket.disconnect":
            if meter is not None:
                meter.saw_receive(message)
            return
        if kind != "websocket.receive":
            continue
        if meter is not None:
            meter.received()
        text = message.get("text")
        if text is None:  # a binary frame: not part of the protocol
            continue
        reply = _answer(text, service, sub, p)
        if reply is not None:
            writer.offer(reply)


def _answer(text: str, service: Any, sub: Any, p: Principal) -> str | None:
    """The reply to one client message (cti/events.yml: subscribe, unsubscribe, ping)."""
    try:
        data = json.loads(text)
    except ValueError:
        return json.dumps({"event": "error", "payload": {"detail": "invalid JSON"}})
    if not isinstance(data, dict):
        return None
    if "subscribe" in data:
        ok, denied = allowed_keys(p, list(data.get("subscribe") or []))
        service.bus.add_keys(sub, ok)
        return json.dumps({"event": "subscribed", "payload": {"keys": sorted(sub.keys), "denied": denied}})
    if "unsubscribe" in data:
        keys = {k for k in (data.get("unsubscribe") or []) if isinstance(k, str)}
        keys.discard(f"agent:{p.agent_id}")
        service.bus.remove_keys(sub, keys)
        return json.dumps({"event": "unsubscribed", "payload": {"keys": sorted(sub.keys)}})
    if data.get("ping") is not None:
        return json.dumps({"event": "pong", "payload": {"ping": data.get("ping")}})
    return None


# ------------------------------------------------------------------ the bare ASGI endpoint
class DeskSocketEndpoint:
    """ASGI app in front of the application's middleware stack: ``/ws`` websockets are
    served here, everything else goes to ``app``."""

    __slots__ = ("app", "metrics")

    def __init__(self, app: Any, metrics: Any = None) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket" or _route_path(scope) != PATH:
            await self.app(scope, receive, send)
            return
        from callcore.metrics import WsMeter

        meter = WsMeter(self.metrics) if self.metrics is not None else None
        try:
            if meter is None:
                await serve_session(WebSocket(scope, receive, send), receive, send)
            else:  # the handshake's accept / close / first message through the meter
                await serve_session(WebSocket(scope, meter.receive(receive), meter.send(send)), receive, send, meter)
        finally:
            if meter is not None:
                meter.end()


def _route_path(scope: dict[str, Any]) -> str:
    path: str = scope["path"]
    root = scope.get("root_path") or ""
    return path[len(root):] if root and path.startswith(root) else path


def install(app: Any, metrics: Any = None) -> None:
    """Serve ``/ws`` in front of ``app``'s middleware stack (Starlette builds the stack on
    the first request; this wraps what it builds). ``metrics``: the application's
    :class:`callcore.metrics.Metrics`, or None."""
    build = app.build_middleware_stack

    def build_with_desk_socket() -> Any:
        return DeskSocketEndpoint(build(), metrics)

    app.build_middleware_stack = build_with_desk_socket
