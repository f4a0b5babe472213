"""One AMI consumer per Asterisk across instances, and call control forwarded to it (issue 19).

:class:`AmiDuty` ties an AMI endpoint's :class:`~callcore.lease.Lease` to its
:class:`~cti.ami.client.AmiClient`: the instance that holds the lease runs the client (its
``on_connect`` is CTI's resync, so a take-over starts with a full resync from
``CoreShowChannels`` / ``QueueStatus``); an instance that loses the lease logs off at once.
Only the holder ever sends AMI actions.

Call control arriving on another instance is **forwarded to the holder over the broker**
(:class:`HolderForwarding`, request/reply on ``<prefix>.ami.<endpoint>.http``): the whole HTTP
request (method, path, query, headers, body) is replayed into the holder's own app, so the
holder's live state answers the preconditions (is the agent on that call?) and its AMI client
sends the action, once. The reply is the holder's HTTP response. No retry: a request the holder
did not answer in time gets a 504 that says the action may have been sent, never a second send.
Only the holder subscribes to the subject (from acquiring the lease until giving it up), and
the holder's handler re-checks that it still holds it (503 otherwise).

Forwarded paths (:data:`FORWARDED`) are those that read CTI's live state or send AMI actions;
everything else (auth, reports, recordings, QA, KB, the web pages) is served by any instance
from the shared database.
"""

from __future__ import annotations

import base64
import logging
from typing import Any, Awaitable, Callable

log = logging.getLogger("callcore.cluster")

#: HTTP paths served by the AMI holder (live CTI state, AMI actions)
FORWARDED: tuple[str, ...] = (
    "/api/agents", "/api/calls", "/api/callbacks", "/api/queues", "/api/supervisor",
    "/api/web/wallboard", "/api/web/directory",
)
#: request headers that are hop-by-hop, not forwarded
_HOP = {"host", "connection", "keep-alive", "transfer-encoding", "upgrade", "content-length"}


def forwarded(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") or path.startswith(p + "?") for p in FORWARDED)


class AmiDuty:
    """The AMI consumer of one endpoint, started and stopped by its lease."""

    def __init__(self, name: str, client: Any, lease: Any, relay: Any = None,
                 serve_http: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]] | None = None,
                 prepare: Callable[[], None] | None = None) -> None:
        self.name = name
        #: run at every acquisition, before the login (installs the take-over's hand-off hook)
        self.prepare = prepare
        self.client = client
        self.lease = lease
        self.relay = relay
        self.serve_http = serve_http
        lease.on_acquired = self._acquired
        lease.on_lost = self._lost
        self.takeovers = 0

    @property
    def subject(self) -> str:
        return f"ami.{self.name}.http"

    @property
    def state(self) -> str:
        """``standby`` while another instance holds the lease, else the client's state."""
        return self.client.state if self.lease.held else "standby"

    async def start(self) -> None:
        await self.lease.start()

    async def stop(self) -> None:
        await self.lease.stop()  # gives the duty up (on_lost closes the client) and releases the row
        await self.client.close()

    async def _acquired(self) -> None:
        self.takeovers += 1
        if self.prepare is not None:
            self.prepare()
        log.info("AMI %s: this instance holds the lease (epoch %s); connecting", self.name, self.lease.epoch)
        await self.client.start()  # login → CTI resync (on_connect) → events
        if self.relay is not None and self.serve_http is not None:
            await self.relay.serve(self.subject, self._serve)

    async def _lost(self) -> None:
        if self.relay is not None:
            await self.relay.unserve(self.subject)
        log.warning("AMI %s: lease lost; logging off so that only the new holder sends actions", self.name)
        await self.client.close()

    async def _serve(self, request: dict[str, Any]) -> dict[str, Any]:
        if not self.lease.held:
            return _reply(503, {"detail": f"this instance no longer holds AMI {self.name}; retry"})
        assert self.serve_http is not None
        return await self.serve_http(request)


def _reply(status: int, body: dict[str, Any]) -> dict[str, Any]:
    import json

    return {"status": status, "headers": [["content-type", "application/json"]],
            "body": base64.b64encode(json.dumps(body).encode()).decode()}


def asgi_replayer(app: Any) -> Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]:
    """The holder's side: run a forwarded request through ``app`` (in process) and return the response."""
    import httpx

    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("127.0.0.1", 0)), base_url="http://cluster")

    async def replay(req: dict[str, Any]) -> dict[str, Any]:
        body = base64.b64decode(req.get("body") or "")
        headers = [(k, v) for k, v in req.get("headers") or [] if k.lower() not in _HOP]
        url = req.get("path") or "/"
        if req.get("query"):
            url += "?" + req["query"]
        resp = await client.request(req.get("method") or "GET", url, headers=headers, content=body)
        return {"status": resp.status_code,
                "headers": [[k, v] for k, v in resp.headers.multi_items() if k.lower() not in _HOP],
                "body": base64.b64encode(resp.content).decode()}

    replay.aclose = client.aclose  # type: ignore[attr-defined]
    return replay


class HolderForwarding:
    """ASGI middleware of a clustered instance: :data:`FORWARDED` requests go to the holder of
    AMI ``name`` when this instance does not hold it (``held()`` false; always, for an
    instance started without the AMI part)."""

    def __init__(self, app: Any, name: str, held: Callable[[], bool], relay: Any, *, timeout: float = 15.0,
                 max_body: int = 1 << 20) -> None:
        self.app = app
        self.name = name
        self.subject = f"ami.{name}.http"
        self.held = held
        self.relay = relay
        self.timeout = timeout
        self.max_body = max_body
        self.forwarded = 0
        self.failed = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or self.held() or not forwarded(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_body:
                await _send(send, 413, {"detail": "request body too large"})
                return
        request = {
            "method": scope["method"], "path": scope["path"], "query": scope.get("query_string", b"").decode("latin-1"),
            "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope.get("headers", [])],
            "body": base64.b64encode(body).decode(),
        }
        try:
            reply = await self.relay.request(self.subject, request, timeout=self.timeout)
        except TimeoutError as exc:
            self.failed += 1
            nobody = "nobody serves" in str(exc)
            if nobody:
                await _send(send, 503, {"detail": f"no instance holds AMI {self.name} right now (take-over in progress?)"})
            else:
                await _send(send, 504, {"detail": f"the AMI holder did not answer within {self.timeout:.0f} s: "
                                                  "the request may have been carried out; it was not retried"})
            return
        except ConnectionError:
            self.failed += 1
            await _send(send, 503, {"detail": "broker not connected: call control is served by the AMI holder"})
            return
        if "status" not in reply:
            self.failed += 1
            await _send(send, 502, {"detail": f"the AMI holder failed: {reply.get('error', 'malformed reply')}"})
            return
        self.forwarded += 1
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in reply.get("headers") or []]
        await send({"type": "http.response.start", "status": int(reply["status"]), "headers": headers})
        await send({"type": "http.response.body", "body": base64.b64decode(reply.get("body") or "")})


async def _send(send: Any, status: int, body: dict[str, Any]) -> None:
    import json

    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})
