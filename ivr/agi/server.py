"""FastAGI server: accepts Asterisk's ``AGI(agi://host/script?k=v,arg1,...)`` connections.

Built on panoramisk's routing table (:class:`panoramisk.fast_agi.Application`:
``add_route``/``del_route``, script name → coroutine) but not on its
connection handler, which is unsafe in panoramisk 1.4:

* ``Application.handler`` reads the header with
  ``while b'\\n\\n' not in buffer: buffer += await reader.read(100)``. At EOF
  ``read`` returns ``b''`` immediately, so a client that sends half a header
  and closes makes that loop spin forever without yielding: the whole event
  loop freezes. It also has no size or time limit.
* ``Application.add_route`` wraps non-async endpoints with
  ``asyncio.coroutine``, which no longer exists in Python 3.11.
* ``Request.send_command`` parses with ``parse_agi_result``, which returns an
  unsolicited ``HANGUP`` notice as the answer of the command in flight.

So :class:`_Routes` keeps the routing table, :meth:`FastAgiServer._on_connect`
replaces the handler (bounded header read with a deadline) and
:class:`AgiSession` replaces ``Request`` (see ``ivr.agi.protocol``).

Usage::

    server = FastAgiServer("127.0.0.1", 4573, command_timeout=120)
    server.add_route("ivr", handle_ivr)     # async def handle_ivr(session: AgiSession)
    await server.start()
    ...
    await server.close(grace=3.0)
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import ipaddress
import logging
import os
import math
import time
from collections import OrderedDict
from typing import Any, Awaitable, Callable, Iterable

from panoramisk.fast_agi import Application

from ivr.agi.protocol import (
    AgiConnectionClosed,
    AgiError,
    AgiProtocolError,
    AgiResult,
    AgiTimeout,
    ResponseParser,
    call_info_from_headers,
    check_result,
    format_command,
    parse_script,
)
from ivr.channel import CallInfo, ChannelHungUp

log = logging.getLogger("ivr.agi.server")

SessionHandler = Callable[["AgiSession"], Awaitable[None]]
CommandHook = Callable[[str, float], None]


class _BadClient(Exception):
    """The peer is not behaving like Asterisk; the connection is dropped."""


class _Routes(Application):
    """panoramisk's routing table without its event-loop lookup and sync wrapping."""

    def __init__(self) -> None:
        # Application.__init__ calls asyncio.get_event_loop() (deprecated outside a
        # running loop) only to store a loop we never use; set up the same state.
        dict.__init__(self)
        self.default_encoding = "utf-8"
        self.loop = None
        self._route = OrderedDict()

    def add_route(self, path: str, endpoint: Any) -> None:
        # upstream wraps sync endpoints in asyncio.coroutine (removed in 3.11); a sync
        # endpoint would block the loop anyway, so refuse it clearly.
        call = getattr(endpoint, "__call__", None)
        if not (inspect.iscoroutinefunction(endpoint) or inspect.iscoroutinefunction(call)):
            raise TypeError(f"FastAGI route {path!r}: handler must be an async function, got {endpoint!r}")
        path = path.strip("/")
        if "?" in path or not path:
            raise ValueError(f"FastAGI route must be a plain script name: {path!r}")
        super().add_route(path, endpoint)

    def get(self, path: str) -> SessionHandler | None:  # type: ignore[override]
        return self._route.get(path)

    async def handler(self, reader: Any, writer: Any) -> None:  # pragma: no cover - guard
        raise RuntimeError("panoramisk's Application.handler is unsafe; use FastAgiServer")


class AgiSession:
    """One FastAGI connection (one call). Commands are sent one at a time.

    A background reader consumes every line Asterisk writes, so a ``HANGUP``
    notice marks the session hung up even while no command is in flight.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        headers: dict[str, str],
        *,
        route: str,
        command_timeout: float,
        on_command: CommandHook | None = None,
        encoding: str = "utf-8",
        first_answer_timeout: float | None = None,
        on_no_answer: Callable[[], None] | None = None,
    ) -> None:
        self.headers = headers
        #: until the peer answered once, a command waits at most this long (a silent peer is dropped early)
        self.first_answer_timeout = first_answer_timeout
        self._on_no_answer = on_no_answer
        self.route = route
        self.info: CallInfo = call_info_from_headers(headers)
        self.command_timeout = command_timeout
        self.on_command = on_command
        self.commands_sent = 0
        self._reader = reader
        self._writer = writer
        self._encoding = encoding
        self._parser = ResponseParser()
        self._lock = asyncio.Lock()
        self._responses: asyncio.Queue[AgiResult | BaseException] = asyncio.Queue()
        self._waiting = False
        self._hung_up = False
        self._hangup_event = asyncio.Event()
        self._failure: BaseException | None = None
        self._read_task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ state
    @property
    def uniqueid(self) -> str:
        return self.info.uniqueid

    @property
    def hung_up(self) -> bool:
        """True after a HANGUP notice, a 511, our own HANGUP or the connection closing."""
        return self._hung_up

    @property
    def closed(self) -> bool:
        return self._failure is not None

    def mark_hung_up(self) -> None:
        self._hung_up = True
        self._hangup_event.set()

    async def wait_hangup(self, timeout: float | None = None) -> bool:
        """Wait until the caller hangs up; True if they did within ``timeout``."""
        try:
            async with asyncio.timeout(timeout):
                await self._hangup_event.wait()
        except TimeoutError:
            return False
        return True

    # ------------------------------------------------------------ commands
    async def send(self, name: str, *args: Any, timeout: float | None = None) -> AgiResult:
        """Send one command and return its 200 answer.

        Raises :class:`ivr.channel.ChannelHungUp` (511, connection closed),
        ``AgiInvalidCommand`` (510), ``AgiUsageError`` (520), ``AgiTimeout``,
        ``AgiProtocolError``; ``ValueError`` before sending if an argument holds CR/LF/NUL.
        """
        line = format_command(name, *args)  # validates before anything is written
        command = line.rstrip("\n")
        async with self._lock:
            if self._failure is not None:
                raise self._closed_error(command)
            started = time.perf_counter()
            try:
                self._waiting = True
                try:
                    self._writer.write(line.encode(self._encoding))
                    await self._writer.drain()
                except (ConnectionError, RuntimeError) as exc:
                    self._fail(AgiConnectionClosed(f"connection lost while sending {command!r}: {exc}", command=command))
                    raise self._closed_error(command) from exc
                wait = self.command_timeout if timeout is None else timeout
                first = self.commands_sent == 0 and self.first_answer_timeout is not None
                if first and self.first_answer_timeout < wait:  # type: ignore[operator]
                    wait = self.first_answer_timeout  # type: ignore[assignment]
                try:
                    async with asyncio.timeout(None if math.isinf(wait) else wait):
                        item = await self._responses.get()
                except TimeoutError:
                    # a late answer would be paired with the next command: give up on the session
                    err = AgiTimeout(f"no answer to {command!r} within {wait:g} s", command=command)
                    self._fail(err)
                    if first and self._on_no_answer is not None:
                        self._on_no_answer()
                    raise err from None
                except asyncio.CancelledError:
                    # the answer will still come and would be read as the next command's
                    self._fail(AgiProtocolError(f"{command!r} cancelled while in flight", command=command))
                    raise
                finally:
                    self._waiting = False
                if isinstance(item, BaseException):
                    raise self._closed_error(command) from item
                self.commands_sent += 1
                if item.code == 511 or (name.upper() == "HANGUP" and item.ok and item.result == "1"):
                    self.mark_hung_up()
                return check_result(item, command)
            finally:
                self._record(name, time.perf_counter() - started)

    def _record(self, name: str, seconds: float) -> None:
        if self.on_command is None:
            return
        try:
            self.on_command(name.upper(), seconds)
        except Exception:  # a metrics hook must never break a call
            log.exception("on_command hook failed")

    def _closed_error(self, command: str) -> AgiError:
        failure = self._failure
        if isinstance(failure, AgiConnectionClosed):
            return AgiConnectionClosed(str(failure), command=command)
        if isinstance(failure, AgiError):
            return AgiProtocolError(f"session unusable after: {failure}", command=command)
        return AgiConnectionClosed("session closed", command=command)

    def _fail(self, exc: BaseException) -> None:
        if self._failure is None:
            self._failure = exc
        if isinstance(exc, AgiConnectionClosed):
            self.mark_hung_up()

    # ------------------------------------------------------------ reading
    def start_reader(self) -> None:
        self._read_task = asyncio.get_running_loop().create_task(
            self._read_loop(), name=f"agi-read-{self.info.uniqueid}"
        )

    async def _read_loop(self) -> None:
        try:
            while True:
                try:
                    raw = await self._reader.readuntil(b"\n")
                except asyncio.IncompleteReadError as exc:
                    raise AgiConnectionClosed(
                        "Asterisk closed the connection" + (" mid-line" if exc.partial else "")
                    ) from None
                except asyncio.LimitOverrunError:
                    raise AgiProtocolError("response line too long") from None
                except ConnectionError as exc:
                    raise AgiConnectionClosed(f"connection error: {exc}") from None
                text = raw.decode(self._encoding, errors="replace")
                result = self._parser.feed(text)
                if self._parser.hung_up and not self._hung_up:
                    log.info("AGI %s: HANGUP notice (caller hung up)", self.info.uniqueid)
                    self.mark_hung_up()
                if result is None:
                    continue
                if not self._waiting or not self._responses.empty():
                    raise AgiProtocolError(f"unsolicited AGI response {result.raw!r}")
                self._responses.put_nowait(result)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            err = exc if isinstance(exc, AgiError) else AgiProtocolError(f"AGI reader failed: {exc!r}")
            if not isinstance(err, AgiConnectionClosed):
                log.warning("AGI %s: %s; closing the session", self.info.uniqueid, err)
            self._fail(err)
            self._responses.put_nowait(err)

    async def aclose(self) -> None:
        if self._failure is None:
            self._failure = AgiConnectionClosed("session closed")
        task, self._read_task = self._read_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._writer.close()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1.0):  # not wait_for: no extra task per session
                await self._writer.wait_closed()


class FastAgiServer:
    """FastAGI listener with explicit routes and hard limits per connection.

    ``max_sessions`` bounds concurrent connections (header phase included);
    extra connections are closed at once and counted in ``sessions_rejected``.

    Hostile clients (issue 11): only ``allowed_peers`` (addresses/networks; default
    loopback; None: anyone) may connect; one peer holds at most ``max_sessions_per_peer``
    connections; beyond ``max_pending_per_peer`` connections of a peer still sending their
    header (or at the per-peer limit), a new connection pushes out the oldest one that has
    been waiting longer than ``pending_grace`` (0.5 s), so idle sockets cannot keep a real
    call out; a session whose peer sent a header but does not
    answer its first command within ``first_answer_timeout`` is dropped. Refusals are
    counted in ``refused`` (by reason) and logged (at most once per peer and reason per 10 s).
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        header_timeout: float = 5.0,
        command_timeout: float = 120.0,
        max_header_bytes: int = 16384,
        max_line_bytes: int = 8192,
        max_sessions: int = 1000,
        on_command: CommandHook | None = None,
        encoding: str = "utf-8",
        allowed_peers: Iterable[str] | None = ("127.0.0.0/8", "::1"),
        max_sessions_per_peer: int | None = None,
        max_pending_per_peer: int = 32,
        first_answer_timeout: float | None = 10.0,
    ) -> None:
        self.host = host
        self._port = port
        self.header_timeout = header_timeout
        self.command_timeout = command_timeout
        self.max_header_bytes = max_header_bytes
        self.max_line_bytes = max_line_bytes
        self.max_sessions = max_sessions
        self.on_command = on_command
        self.encoding = encoding
        self._routes = _Routes()
        self._server: asyncio.base_events.Server | None = None
        self._connections: set[asyncio.Task[Any]] = set()
        self._active_sessions = 0
        self.sessions_total = 0  # routed sessions started
        self.sessions_failed = 0  # handler raised (hang-ups are not failures)
        self.bad_clients = 0  # dropped before routing: bad/partial/slow header
        self.unknown_routes = 0
        self.sessions_rejected = 0  # over max_sessions
        # --- hostile clients (issue 11): who may connect, and how much one peer may hold
        self.allowed_peers = None if allowed_peers is None else [ipaddress.ip_network(n, strict=False) for n in allowed_peers]
        self.max_sessions_per_peer = max_sessions_per_peer or max_sessions
        self.max_pending_per_peer = max_pending_per_peer
        self.first_answer_timeout = first_answer_timeout
        self._per_peer: dict[str, int] = {}
        #: per peer, the connections still sending their header (oldest first)
        self._pending: dict[str, OrderedDict[asyncio.Task[Any], tuple[asyncio.StreamWriter, float]]] = {}
        self._evicted: set[asyncio.Task[Any]] = set()
        #: a connection still in its header for less than this is never dropped for a newer one
        self.pending_grace = 0.5
        self.refused: dict[str, int] = {"not_allowed": 0, "peer_limit": 0, "pending_evicted": 0, "no_first_answer": 0}
        self._refusal_logged: dict[tuple[str, str], float] = {}

    # ------------------------------------------------------------ routes
    def add_route(self, script_name: str, handler: SessionHandler) -> None:
        """``add_route("ivr", handler)``: ``agi://host/ivr?flow=main`` calls ``await handler(session)``."""
        self._routes.add_route(script_name, handler)

    def del_route(self, script_name: str) -> None:
        self._routes.del_route(script_name.strip("/"))

    # ------------------------------------------------------------ lifecycle
    @property
    def port(self) -> int:
        if self._server is not None and self._server.sockets:
            return self._server.sockets[0].getsockname()[1]
        return self._port

    @property
    def active_sessions(self) -> int:
        """Sessions currently running a route handler."""
        return self._active_sessions

    @property
    def active_connections(self) -> int:
        return len(self._connections)

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("FastAgiServer already started")
        try:
            self._server = await asyncio.start_server(
                self._on_connect, self.host, self._port, limit=self.max_line_bytes
            )
        except OSError as exc:  # one clear line for the operator (issue 20), not a traceback
            why = os.strerror(exc.errno) if exc.errno else str(exc)
            raise OSError(exc.errno, f"FastAGI port {self.host}:{self._port} cannot be opened ({why}): stop the "
                          "process using it or choose another with CALLCORE_AGI_PORT / callcore serve --agi-port "
                          "(and the same port in extensions.conf's AGI(agi://…))") from None
        log.info("FastAGI listening on agi://%s:%d (routes: %s)", self.host, self.port, ", ".join(self._routes._route) or "none")

    async def close(self, grace: float = 3.0) -> None:
        """Stop accepting; give open sessions up to ``grace`` seconds, then cancel them."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        pending = set(self._connections)
        if pending:
            log.info("FastAGI closing: waiting up to %.1f s for %d session(s)", grace, len(pending))
            _, still = await asyncio.wait(pending, timeout=grace) if grace > 0 else (set(), pending)
            for task in still:
                task.cancel()
            if still:
                log.warning("FastAGI closing: cancelled %d session(s) after the grace period", len(still))
                await asyncio.wait(still)
        if server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1.0)

    # ------------------------------------------------------------ connections
    def _refuse(self, reason: str, host: str, message: str) -> None:
        """Count every refusal; log the first per peer and reason every 10 s (a flood must not flood the log)."""
        self.refused[reason] += 1
        if self._log_allowed(reason, host):
            log.warning("FastAGI: refusing %s: %s (%d refused for %s so far)", host, message, self.refused[reason], reason)

    def _evict_stale(self, host: str, now: float) -> bool:
        """Drop ``host``'s oldest connection still in its header, if older than ``pending_grace``."""
        pending = self._pending.get(host)
        if not pending:
            return False
        stale_task, (stale, since) = next(iter(pending.items()))
        if now - since < self.pending_grace:
            return False
        del pending[stale_task]
        self._refuse("pending_evicted", host, "connection without a complete header; dropping the oldest")
        stale.close()
        self._per_peer[host] = self._per_peer.get(host, 1) - 1  # its slot is free now (its task ends soon)
        self._evicted.add(stale_task)
        return True

    def _allowed(self, host: str) -> bool:
        if self.allowed_peers is None:
            return True
        try:
            addr = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        if addr.version == 6 and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        return any(addr in net for net in self.allowed_peers)

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        peer = writer.get_extra_info("peername")
        host = str(peer[0]) if isinstance(peer, tuple) and peer else str(peer)
        if not self._allowed(host):
            self._refuse("not_allowed", host, "address not in agi_allowed_peers")
            writer.close()
            return
        # connections that have not finished their header for a while (Asterisk sends it at once):
        # when a peer has too many, or the peer or the server is at its limit, the oldest go, so idle
        # sockets can never keep Asterisk's next call out
        now = time.monotonic()
        pending = self._pending.setdefault(host, OrderedDict())
        while len(pending) >= self.max_pending_per_peer or self._per_peer.get(host, 0) >= self.max_sessions_per_peer:
            if not self._evict_stale(host, now):
                break  # a burst of real calls still sending headers: nothing is stale yet
        while len(self._connections) - len(self._evicted) >= self.max_sessions:
            oldest = min(self._pending, key=lambda h: next(iter(self._pending[h].values()))[1] if self._pending[h] else now)
            if not self._evict_stale(oldest, now):
                break
        if len(self._connections) - len(self._evicted) >= self.max_sessions:
            self.sessions_rejected += 1
            log.warning("FastAGI: %d connections open (max_sessions); refusing %s", len(self._connections), peer)
            writer.close()
            return
        if self._per_peer.get(host, 0) >= self.max_sessions_per_peer:
            self._refuse("peer_limit", host, f"{self.max_sessions_per_peer} connections open (agi_max_sessions_per_peer)")
            writer.close()
            return
        pending = self._pending.setdefault(host, pending)
        pending[task] = (writer, now)
        self._connections.add(task)
        self._per_peer[host] = self._per_peer.get(host, 0) + 1
        try:
            await self._serve(reader, writer, peer, host)
        except Exception:  # a bug here must cost one connection, never the listener
            log.exception("FastAGI: internal error serving %s", peer)
        finally:
            self._connections.discard(task)
            pending.pop(task, None)
            if not pending:
                self._pending.pop(host, None)
            left = self._per_peer.get(host, 1) - (0 if task in self._evicted else 1)
            self._evicted.discard(task)
            if left > 0:
                self._per_peer[host] = left
            else:
                self._per_peer.pop(host, None)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: Any, host: str = "") -> None:
        try:
            async with asyncio.timeout(self.header_timeout):
                headers = await self._read_header(reader)
        except TimeoutError:
            self._bad_client(peer, f"no complete header within {self.header_timeout:g} s")
            return
        except _BadClient as exc:
            self._bad_client(peer, str(exc))
            return
        finally:
            pending = self._pending.get(host)
            if pending is not None:
                pending.pop(asyncio.current_task(), None)  # type: ignore[arg-type]
        script = headers.get("agi_network_script")
        if script is None:
            self._bad_client(peer, "header without agi_network_script")
            return
        route_name, _ = parse_script(script)
        handler = self._routes.get(route_name)
        session = AgiSession(
            reader,
            writer,
            headers,
            route=route_name,
            command_timeout=self.command_timeout,
            on_command=self.on_command,
            encoding=self.encoding,
            first_answer_timeout=self.first_answer_timeout,
            on_no_answer=lambda: self._refuse("no_first_answer", host, "header sent, then no answer to the first command"),
        )
        session.start_reader()
        try:
            if handler is None:
                self.unknown_routes += 1
                log.error("FastAGI: no route for %r (call %s); closing without touching the call", script, session.uniqueid)
                with contextlib.suppress(AgiError, ValueError):
                    await session.send("VERBOSE", f"callcore: no FastAGI route {route_name!r}", 1, timeout=2.0)
                return
            await self._run_handler(handler, session)
        finally:
            await session.aclose()

    async def _run_handler(self, handler: SessionHandler, session: AgiSession) -> None:
        self.sessions_total += 1
        self._active_sessions += 1
        log.info("FastAGI %s: call %s on %s (%s)", session.route, session.uniqueid, session.info.channel, session.info.params)
        try:
            await handler(session)
        except ChannelHungUp as exc:
            log.info("FastAGI %s: call %s hung up (%s)", session.route, session.uniqueid, exc)
        except asyncio.CancelledError:
            log.warning("FastAGI %s: call %s cancelled", session.route, session.uniqueid)
            raise
        except Exception:
            self.sessions_failed += 1
            log.exception("FastAGI %s: handler failed for call %s", session.route, session.uniqueid)
        finally:
            self._active_sessions -= 1

    async def _read_header(self, reader: asyncio.StreamReader) -> dict[str, str]:
        headers: dict[str, str] = {}
        total = 0
        ignored = 0
        replaced = False
        while True:
            try:
                raw = await reader.readuntil(b"\n")
            except asyncio.IncompleteReadError as exc:
                if not exc.partial and total == 0:
                    raise _BadClient("connection closed before any header") from None
                raise _BadClient(f"connection closed inside the header ({total + len(exc.partial)} bytes)") from None
            except asyncio.LimitOverrunError:
                raise _BadClient(f"header line longer than {self.max_line_bytes} bytes") from None
            except ConnectionError as exc:
                raise _BadClient(f"connection error in header: {exc}") from None
            total += len(raw)
            if total > self.max_header_bytes:
                raise _BadClient(f"header larger than {self.max_header_bytes} bytes")
            if raw in (b"\n", b"\r\n"):
                break
            text = raw.decode(self.encoding, errors="replace").rstrip("\r\n")
            if "\ufffd" in text and not replaced:
                replaced = True
            key, sep, value = text.partition(": ")
            if not sep:
                key, sep, value = text.partition(":")
            if not sep or not key.startswith("agi_") or not key.isascii() or not key.replace("_", "").isalnum():
                ignored += 1
                continue
            headers[key] = value
        if replaced:
            log.warning("FastAGI: non-UTF-8 bytes in the header of call %s (replaced)", headers.get("agi_uniqueid", "?"))
        if ignored:
            log.warning("FastAGI: ignored %d malformed header line(s) (call %s)", ignored, headers.get("agi_uniqueid", "?"))
        return headers

    def _bad_client(self, peer: Any, reason: str) -> None:
        self.bad_clients += 1
        # logged at most once per peer and 10 s while connections are being pushed out (a flood)
        host = str(peer[0]) if isinstance(peer, tuple) and peer else str(peer)
        if self.refused["pending_evicted"] and not self._log_allowed("bad_client", host):
            return
        log.warning("FastAGI: dropping %s: %s", peer, reason)

    def _log_allowed(self, reason: str, host: str) -> bool:
        now = time.monotonic()
        key = (reason, host)
        if now - self._refusal_logged.get(key, -1e9) < 10.0:
            return False
        if len(self._refusal_logged) > 10_000:
            self._refusal_logged.clear()
        self._refusal_logged[key] = now
        return True
