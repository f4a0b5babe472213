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

So :class:`_Routes` keeps the routing table, :class:`_AgiConnection` (an
``asyncio.Protocol``) replaces the handler (bounded header read with a deadline,
parsed in one pass) and :class:`AgiSession` replaces ``Request`` (see
``ivr.agi.protocol``): answers are read in the protocol's ``data_received`` and
resolve the waiting command's future directly — no reader task per session.

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
import re
import time
from collections import OrderedDict, deque
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


#: one well-formed header line: what :func:`_parse_header_lines` takes without a second look
_HEADER_LINE_RE = re.compile(r"^(agi_[A-Za-z0-9_]+): ([^\r\n]*)\r*$", re.MULTILINE)


def _parse_header_lines(text: str) -> tuple[dict[str, str], int]:
    """The general header parser: (headers, lines ignored). ``key: value`` or ``key:value``;
    keys are ``agi_`` + ASCII letters, digits and ``_``; anything else is ignored."""
    headers: dict[str, str] = {}
    ignored = 0
    for line in text.split("\n"):
        line = line.rstrip("\r")
        key, sep, value = line.partition(": ")
        if not sep:
            key, sep, value = line.partition(":")
        if not sep or not key.startswith("agi_") or not key.isascii() or not key.replace("_", "").isalnum():
            ignored += 1
            continue
        headers[key] = value
    return headers, ignored


class _TimedOut:
    """The value a command's waiter gets when its timer fires first."""

    __slots__ = ()


_TIMED_OUT = _TimedOut()


class AgiSession:
    """One FastAGI connection (one call). Commands are sent one at a time.

    Every line Asterisk writes is read by the connection's protocol callback
    (:class:`_AgiConnection`, from ``data_received``) and handed here at once:
    the answer resolves the waiting command's future directly (no reader task,
    no queue), and a ``HANGUP`` notice marks the session hung up even while no
    command is in flight. An answer that arrives while no command waits (the
    late answer of a cancelled or timed-out command, or garbage) is never
    paired with a later command: the session is unusable from then on.
    """

    __slots__ = (
        "headers", "first_answer_timeout", "_on_no_answer", "route", "info", "command_timeout", "on_command",
        "commands_sent", "_conn", "_loop", "_encoding", "_parser", "_buf", "_max_line", "_waiter", "_busy",
        "_turns", "_hung_up", "_hangup_waiters", "_failure", "_deadline", "_timer",
    )

    def __init__(
        self,
        conn: "_AgiConnection",
        headers: dict[str, str],
        *,
        route: str,
        command_timeout: float,
        on_command: CommandHook | None = None,
        encoding: str = "utf-8",
        first_answer_timeout: float | None = None,
        on_no_answer: Callable[[], None] | None = None,
        max_line_bytes: int = 8192,
        info: CallInfo | None = None,
    ) -> None:
        self.headers = headers
        #: until the peer answered once, a command waits at most this long (a silent peer is dropped early)
        self.first_answer_timeout = first_answer_timeout
        self._on_no_answer = on_no_answer
        self.route = route
        self.info: CallInfo = info if info is not None else call_info_from_headers(headers)
        self.command_timeout = command_timeout
        self.on_command = on_command
        self.commands_sent = 0
        self._conn = conn
        self._loop = asyncio.get_running_loop()
        self._encoding = encoding
        self._parser = ResponseParser()
        self._buf = b""  # an incomplete line
        self._max_line = max_line_bytes
        #: the future of the command in flight (None: nothing may answer now)
        self._waiter: asyncio.Future[Any] | None = None
        self._busy = False  # a command is in flight (or handed its turn)
        self._turns: deque[asyncio.Future[None]] | None = None  # sends waiting for their turn
        self._hung_up = False
        self._hangup_waiters: list[asyncio.Future[None]] | None = None
        self._failure: BaseException | None = None
        self._deadline = math.inf  # when the command in flight times out (loop time)
        self._timer: asyncio.TimerHandle | None = None

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
        waiters, self._hangup_waiters = self._hangup_waiters, None
        for fut in waiters or ():
            if not fut.done():
                fut.set_result(None)

    async def wait_hangup(self, timeout: float | None = None) -> bool:
        """Wait until the caller hangs up; True if they did within ``timeout``."""
        if self._hung_up:
            return True
        fut: asyncio.Future[None] = self._loop.create_future()
        if self._hangup_waiters is None:
            self._hangup_waiters = []
        self._hangup_waiters.append(fut)
        try:
            async with asyncio.timeout(timeout):
                await fut
        except TimeoutError:
            return False
        finally:
            if self._hangup_waiters is not None and fut in self._hangup_waiters:
                self._hangup_waiters.remove(fut)
        return True

    # ------------------------------------------------------------ commands
    async def send(self, name: str, *args: Any, timeout: float | None = None) -> AgiResult:
        """Send one command and return its 200 answer.

        Raises :class:`ivr.channel.ChannelHungUp` (511, connection closed),
        ``AgiInvalidCommand`` (510), ``AgiUsageError`` (520), ``AgiTimeout``,
        ``AgiProtocolError``; ``ValueError`` before sending if an argument holds CR/LF/NUL.
        """
        line = format_command(name, *args)  # validates before anything is written
        if self._busy:  # another command in flight: wait for our turn
            await self._wait_turn()
        else:
            self._busy = True
        try:
            return await self._send(name, line, timeout)
        finally:
            self._pass_turn()

    async def _wait_turn(self) -> None:
        if self._turns is None:
            self._turns = deque()
        turn: asyncio.Future[None] = self._loop.create_future()
        self._turns.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self._pass_turn()  # we were handed the turn but will not use it
            raise

    def _pass_turn(self) -> None:
        turns = self._turns
        while turns:
            turn = turns.popleft()
            if not turn.done():
                turn.set_result(None)  # ``_busy`` stays True: the turn is that sender's
                return
        self._busy = False

    async def _send(self, name: str, line: str, timeout: float | None) -> AgiResult:
        command = line[:-1]
        if self._failure is not None:
            raise self._closed_error(command)
        started = time.perf_counter() if self.on_command is not None else 0.0
        try:
            conn = self._conn
            transport = conn.transport
            if transport is None or transport.is_closing():
                self._fail(AgiConnectionClosed(f"connection lost before sending {command!r}", command=command))
                raise self._closed_error(command)
            waiter = self._waiter = self._loop.create_future()
            try:
                transport.write(line.encode(self._encoding))
                if conn.write_paused:
                    await conn.drain()
            except (ConnectionError, RuntimeError) as exc:
                self._waiter = None
                self._fail(AgiConnectionClosed(f"connection lost while sending {command!r}: {exc}", command=command))
                raise self._closed_error(command) from exc
            wait = self.command_timeout if timeout is None else timeout
            first = self.commands_sent == 0 and self.first_answer_timeout is not None
            if first and self.first_answer_timeout < wait:  # type: ignore[operator]
                wait = self.first_answer_timeout  # type: ignore[assignment]
            self._arm(wait)
            try:
                item = await waiter
            except asyncio.CancelledError:
                # the answer will still come and would be read as the next command's
                self._waiter = None
                self._fail(AgiProtocolError(f"{command!r} cancelled while in flight", command=command))
                raise
            if item is _TIMED_OUT:
                # a late answer would be paired with the next command: give up on the session
                self._waiter = None
                err = AgiTimeout(f"no answer to {command!r} within {wait:g} s", command=command)
                self._fail(err)
                if first and self._on_no_answer is not None:
                    self._on_no_answer()
                raise err
            if isinstance(item, BaseException):
                raise self._closed_error(command) from item
            self.commands_sent += 1
            if item.code == 511 or (item.result == "1" and item.code == 200 and name.upper() == "HANGUP"):
                self.mark_hung_up()
            return check_result(item, command)
        finally:
            if self.on_command is not None:
                self._record(name, time.perf_counter() - started)

    def _arm(self, wait: float) -> None:
        """The command in flight times out ``wait`` seconds from now.

        One timer per session, not one per command: it stays armed while each new
        deadline is later than the time it fires (the usual case: every command gets the
        same timeout), and when it fires before the current deadline it re-arms itself."""
        if math.isinf(wait):
            self._deadline = math.inf
            return
        loop = self._loop
        deadline = self._deadline = loop.time() + wait
        timer = self._timer
        if timer is None or timer.when() > deadline:
            if timer is not None:
                timer.cancel()
            self._timer = loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        waiter = self._waiter
        if waiter is None or waiter.done() or math.isinf(self._deadline):
            return
        if self._loop.time() + 0.001 >= self._deadline:  # the loop may run a timer up to its clock resolution early
            waiter.set_result(_TIMED_OUT)
        else:
            self._timer = self._loop.call_at(self._deadline, self._on_timer)

    def _record(self, name: str, seconds: float) -> None:
        try:
            self.on_command(name.upper(), seconds)  # type: ignore[misc]
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

    # ------------------------------------------------------------ reading (called by _AgiConnection)
    def feed(self, data: bytes) -> None:
        """Bytes from Asterisk: split into lines, each parsed and delivered at once."""
        if self._failure is not None:
            return  # nothing read after a failure can be trusted (or is needed)
        buf = self._buf + data if self._buf else data
        start = 0
        find = buf.find
        while True:
            end = find(b"\n", start)
            if end < 0:
                break
            if end - start > self._max_line:
                self._buf = b""
                return self._read_failed(AgiProtocolError("response line too long"))
            self._line(buf[start:end])
            start = end + 1
            if self._failure is not None:
                self._buf = b""
                return None
        rest = buf[start:] if start else buf
        if len(rest) > self._max_line:
            self._buf = b""
            return self._read_failed(AgiProtocolError("response line too long"))
        self._buf = rest
        return None

    def _line(self, raw: bytes) -> None:
        parser = self._parser
        try:
            result = parser.feed(raw.decode(self._encoding, "replace"))
        except Exception as exc:
            return self._read_failed(exc if isinstance(exc, AgiError) else AgiProtocolError(f"AGI reader failed: {exc!r}"))
        if parser.hung_up and not self._hung_up:
            log.info("AGI %s: HANGUP notice (caller hung up)", self.info.uniqueid)
            self.mark_hung_up()
        if result is None:
            return None
        waiter = self._waiter
        if waiter is None or waiter.done():
            return self._read_failed(AgiProtocolError(f"unsolicited AGI response {result.raw!r}"))
        self._waiter = None
        waiter.set_result(result)
        return None

    def connection_lost(self, exc: BaseException | None) -> None:
        if exc is not None:
            err: AgiError = AgiConnectionClosed(f"connection error: {exc}")
        else:
            err = AgiConnectionClosed("Asterisk closed the connection" + (" mid-line" if self._buf else ""))
        self._buf = b""
        self._read_failed(err)

    def _read_failed(self, err: AgiError) -> None:
        if not isinstance(err, AgiConnectionClosed) and self._failure is None:
            log.warning("AGI %s: %s; closing the session", self.info.uniqueid, err)
        self._fail(err)
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(err)

    async def aclose(self) -> None:
        if self._failure is None:
            self._failure = AgiConnectionClosed("session closed")
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        await self._conn.close_and_wait(1.0)


class _AgiConnection(asyncio.Protocol):
    """One FastAGI connection, read by the event loop's protocol callbacks.

    Header phase: the ``agi_*`` block is collected in ``data_received`` and parsed in one
    pass when its blank line arrives (bounded in bytes, per line and in time); no task
    exists until then. Session phase: every read goes straight to :meth:`AgiSession.feed`.
    Writes go to the transport; ``drain`` waits only when the transport paused writing.
    """

    __slots__ = (
        "server", "transport", "peer", "host", "since", "session", "task", "write_paused", "released",
        "_buf", "_received", "_timer", "_drain_waiter", "_lost", "_lost_waiter",
    )

    def __init__(self, server: "FastAgiServer") -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.peer: Any = None
        self.host = ""
        self.since = 0.0
        self.session: AgiSession | None = None
        self.task: asyncio.Task[None] | None = None
        self.write_paused = False
        self.released = False
        self._buf = b""
        self._received = 0  # header bytes so far
        self._timer: asyncio.TimerHandle | None = None
        self._drain_waiter: asyncio.Future[None] | None = None
        self._lost = False
        self._lost_waiter: asyncio.Future[None] | None = None

    # ------------------------------------------------------------ protocol callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        try:
            self.server._accept(self)
        except Exception:  # a bug here must cost one connection, never the listener
            log.exception("FastAGI: internal error accepting %s", self.peer)
            self.drop()

    def data_received(self, data: bytes) -> None:
        session = self.session
        if session is not None:
            session.feed(data)
            return
        if self.released:
            return
        try:
            self.server._header_data(self, data)
        except Exception:
            log.exception("FastAGI: internal error serving %s", self.peer)
            self.drop()

    def eof_received(self) -> bool | None:
        return None  # close the transport: connection_lost follows

    def connection_lost(self, exc: BaseException | None) -> None:
        self._lost = True
        self.write_paused = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for fut in (self._drain_waiter, self._lost_waiter):
            if fut is not None and not fut.done():
                fut.set_result(None)
        self._drain_waiter = self._lost_waiter = None
        session = self.session
        if session is not None:
            session.connection_lost(exc)
        elif not self.released:
            self.server._header_lost(self, exc)

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # ------------------------------------------------------------ helpers
    def no_first_answer(self) -> None:
        self.server._refuse("no_first_answer", self.host, "header sent, then no answer to the first command")

    async def drain(self) -> None:
        """Wait until the transport takes writes again (Asterisk reads slower than we write)."""
        if not self.write_paused:
            return
        if self._drain_waiter is None:
            self._drain_waiter = asyncio.get_running_loop().create_future()
        await self._drain_waiter
        if self._lost:
            raise ConnectionResetError("connection lost")

    def drop(self) -> None:
        """Release the connection's slot and close it."""
        self.server._release(self)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    async def close_and_wait(self, timeout: float) -> None:
        """Close; when unsent data is still buffered, wait up to ``timeout`` for it, then abort."""
        transport = self.transport
        if transport is None or self._lost:
            return
        if not transport.is_closing():
            transport.close()
        if self._lost or transport.get_write_buffer_size() == 0:
            return  # closed at once: connection_lost is already scheduled
        loop = asyncio.get_running_loop()
        if self._lost_waiter is None:
            self._lost_waiter = loop.create_future()
        abort = loop.call_later(timeout, transport.abort)
        try:
            await self._lost_waiter
        finally:
            abort.cancel()


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
        #: every connection holding a slot (header phase included)
        self._connections: set[_AgiConnection] = set()
        #: the task of every routed session (one per call; none during the header)
        self._tasks: set[asyncio.Task[None]] = set()
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
        self._pending: dict[str, OrderedDict[_AgiConnection, None]] = {}
        #: a connection still in its header for less than this is never dropped for a newer one
        self.pending_grace = 0.5
        self.refused: dict[str, int] = {"not_allowed": 0, "peer_limit": 0, "pending_evicted": 0, "no_first_answer": 0}
        self._refusal_logged: dict[tuple[str, str], float] = {}
        #: (the allow-list the answers are for, peer address → allowed): Asterisk is one or two addresses
        self._allowed_cache: tuple[Any, dict[str, bool]] = (self.allowed_peers, {})

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
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(lambda: _AgiConnection(self), self.host, self._port)
        except OSError as exc:  # one clear line for the operator (issue 20), not a traceback
            why = os.strerror(exc.errno) if exc.errno else str(exc)
            raise OSError(exc.errno, f"FastAGI port {self.host}:{self._port} cannot be opened ({why}): stop the "
                          "process using it or choose another with CALLCORE_AGI_PORT / callcore serve --agi-port "
                          "(and the same port in extensions.conf's AGI(agi://…))") from None
        log.info("FastAGI listening on agi://%s:%d (routes: %s)", self.host, self.port, ", ".join(self._routes._route) or "none")

    async def close(self, grace: float = 3.0) -> None:
        """Stop accepting; give open sessions up to ``grace`` seconds, then cancel them.

        Connections still sending their header are closed at once (no call is running on them)."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for conn in list(self._connections):
            if conn.session is None:
                conn.drop()
        pending = set(self._tasks)
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
        stale = next(iter(pending))
        if now - stale.since < self.pending_grace:
            return False
        self._refuse("pending_evicted", host, "connection without a complete header; dropping the oldest")
        stale.drop()  # its slot is free now
        return True

    def _allowed(self, host: str) -> bool:
        if self.allowed_peers is None:
            return True
        cache = self._allowed_cache
        if cache[0] is not self.allowed_peers:  # the list was replaced: forget the answers
            cache = self._allowed_cache = (self.allowed_peers, {})
        known = cache[1].get(host)
        if known is None:
            known = self._check_peer(host)
            if len(cache[1]) >= 1024:
                cache[1].clear()
            cache[1][host] = known
        return known

    def _check_peer(self, host: str) -> bool:
        assert self.allowed_peers is not None
        try:
            addr = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        if addr.version == 6 and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        return any(addr in net for net in self.allowed_peers)

    def _accept(self, conn: _AgiConnection) -> None:
        """A new connection (``connection_made``): allow-list, limits, eviction, header deadline."""
        transport = conn.transport
        assert transport is not None
        peer = conn.peer = transport.get_extra_info("peername")
        host = conn.host = str(peer[0]) if isinstance(peer, tuple) and peer else str(peer)
        if not self._allowed(host):
            self._refuse("not_allowed", host, "address not in agi_allowed_peers")
            conn.released = True
            transport.close()
            return
        # connections that have not finished their header for a while (Asterisk sends it at once):
        # when a peer has too many, or the peer or the server is at its limit, the oldest go, so idle
        # sockets can never keep Asterisk's next call out
        now = conn.since = time.monotonic()
        pending = self._pending.get(host)
        while pending and (len(pending) >= self.max_pending_per_peer or self._per_peer.get(host, 0) >= self.max_sessions_per_peer):
            if not self._evict_stale(host, now):
                break  # a burst of real calls still sending headers: nothing is stale yet
            pending = self._pending.get(host)
        while len(self._connections) >= self.max_sessions and self._pending:
            oldest = min(self._pending, key=lambda h: next(iter(self._pending[h])).since)
            if not self._evict_stale(oldest, now):
                break
        if len(self._connections) >= self.max_sessions:
            self.sessions_rejected += 1
            log.warning("FastAGI: %d connections open (max_sessions); refusing %s", len(self._connections), peer)
            conn.released = True
            transport.close()
            return
        if self._per_peer.get(host, 0) >= self.max_sessions_per_peer:
            self._refuse("peer_limit", host, f"{self.max_sessions_per_peer} connections open (agi_max_sessions_per_peer)")
            conn.released = True
            transport.close()
            return
        self._pending.setdefault(host, OrderedDict())[conn] = None
        self._connections.add(conn)
        self._per_peer[host] = self._per_peer.get(host, 0) + 1
        conn._timer = asyncio.get_running_loop().call_later(self.header_timeout, self._header_expired, conn)

    def _release(self, conn: _AgiConnection) -> None:
        """Free the connection's slots (idempotent)."""
        if conn.released:
            return
        conn.released = True
        if conn._timer is not None:
            conn._timer.cancel()
            conn._timer = None
        self._connections.discard(conn)
        self._unpend(conn)
        host = conn.host
        left = self._per_peer.get(host, 1) - 1
        if left > 0:
            self._per_peer[host] = left
        else:
            self._per_peer.pop(host, None)

    def _unpend(self, conn: _AgiConnection) -> None:
        pending = self._pending.get(conn.host)
        if pending is not None:
            pending.pop(conn, None)
            if not pending:
                del self._pending[conn.host]

    def _header_expired(self, conn: _AgiConnection) -> None:
        conn._timer = None
        if conn.session is None and not conn.released:
            self._bad_client(conn.peer, f"no complete header within {self.header_timeout:g} s")
            conn.drop()

    def _header_lost(self, conn: _AgiConnection, exc: BaseException | None) -> None:
        """The peer went away before its header was complete."""
        if exc is not None:
            reason = f"connection error in header: {exc}"
        elif not conn._buf:
            reason = "connection closed before any header"
        else:
            reason = f"connection closed inside the header ({len(conn._buf)} bytes)"
        self._bad_client(conn.peer, reason)
        self._release(conn)

    def _header_data(self, conn: _AgiConnection, data: bytes) -> None:
        """Header bytes: checked line by line as they come (sizes), parsed in one pass at the blank line."""
        buf = conn._buf + data if conn._buf else data
        find = buf.find
        max_line = self.max_line_bytes
        # ``conn._received``: bytes of the complete (already checked) lines at the front of ``buf``
        start = received = conn._received
        while True:
            end = find(b"\n", start)
            if end < 0:
                break
            if end - start > max_line:
                return self._header_refused(conn, f"header line longer than {max_line} bytes")
            received = end + 1
            if received > self.max_header_bytes:
                return self._header_refused(conn, f"header larger than {self.max_header_bytes} bytes")
            if end == start or (end == start + 1 and buf[start] == 13):  # the blank line: "\n" or "\r\n"
                return self._header_complete(conn, buf[:start], buf[received:])
            start = received
        if len(buf) - start > max_line:
            return self._header_refused(conn, f"header line longer than {max_line} bytes")
        if len(buf) > self.max_header_bytes:
            return self._header_refused(conn, f"header larger than {self.max_header_bytes} bytes")
        conn._buf = buf
        conn._received = received
        return None

    def _header_refused(self, conn: _AgiConnection, reason: str) -> None:
        conn._buf = b""
        self._bad_client(conn.peer, reason)
        conn.drop()

    def _header_complete(self, conn: _AgiConnection, block: bytes, rest: bytes) -> None:
        conn._buf = b""
        if conn._timer is not None:
            conn._timer.cancel()
            conn._timer = None
        self._unpend(conn)
        headers = self._parse_header(block)
        script = headers.get("agi_network_script")
        if script is None:
            self._bad_client(conn.peer, "header without agi_network_script")
            conn.drop()
            return
        info = call_info_from_headers(headers)
        route_name, _ = parse_script(script)
        handler = self._routes.get(route_name)
        session = AgiSession(
            conn,
            headers,
            route=route_name,
            command_timeout=self.command_timeout,
            on_command=self.on_command,
            encoding=self.encoding,
            first_answer_timeout=self.first_answer_timeout,
            on_no_answer=conn.no_first_answer,
            max_line_bytes=self.max_line_bytes,
            info=info,
        )
        conn.session = session
        task = conn.task = asyncio.get_running_loop().create_task(self._session_main(conn, session, handler))
        self._tasks.add(task)
        if rest:
            session.feed(rest)  # e.g. a HANGUP notice right behind the header

    def _parse_header(self, block: bytes) -> dict[str, str]:
        """``agi_key: value`` lines (already checked for size), decoded once and matched in one
        regex pass; a block with any other line takes the line-by-line parser."""
        text = block.decode(self.encoding, errors="replace")
        matches = _HEADER_LINE_RE.findall(text)
        if len(matches) == text.count("\n") + 1:
            headers, ignored = dict(matches), 0
        else:
            headers, ignored = _parse_header_lines(text)
        if "\ufffd" in text:
            log.warning("FastAGI: non-UTF-8 bytes in the header of call %s (replaced)", headers.get("agi_uniqueid", "?"))
        if ignored:
            log.warning("FastAGI: ignored %d malformed header line(s) (call %s)", ignored, headers.get("agi_uniqueid", "?"))
        return headers

    async def _session_main(self, conn: _AgiConnection, session: AgiSession, handler: SessionHandler | None) -> None:
        try:
            if handler is None:
                self.unknown_routes += 1
                log.error("FastAGI: no route for %r (call %s); closing without touching the call",
                          session.headers.get("agi_network_script"), session.uniqueid)
                with contextlib.suppress(AgiError, ValueError):
                    await session.send("VERBOSE", f"callcore: no FastAGI route {session.route!r}", 1, timeout=2.0)
                return
            await self._run_handler(handler, session)
        except Exception:  # a bug here must cost one connection, never the listener
            log.exception("FastAGI: internal error serving %s", conn.peer)
        finally:
            try:
                await session.aclose()
            finally:
                self._release(conn)
                self._tasks.discard(conn.task)  # type: ignore[arg-type]
                conn.task = None

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
