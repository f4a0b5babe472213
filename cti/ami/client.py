"""AMI client: one logged-in connection to Asterisk, kept alive.

Why over 500 lines: login, ActionID matching, list actions, resync-before-trust and the
capped reconnect are one connection's life cycle and share its state; each part replaces a
piece of panoramisk 1.4 that is broken (see ARCHITECTURE.md), so it stays in one place.

::

    client = AmiClient("127.0.0.1", 5038, "callcore", secret,
                       on_event=state.apply, on_connect=resync, on_state=health.set)
    await client.start()                      # background connect loop (owned task)
    resp = await client.send(actions.queue_status())   # list action → resp.events
    await client.close()

* Responses are matched by a unique ``ActionID`` (panoramisk's ``IdGenerator``).
* List actions (``Action.complete_event`` set) collect the events carrying their
  ActionID up to the ``...Complete`` event into one :class:`AmiResponse`; those
  events are *not* delivered to ``on_event``.
* After every login ``on_connect()`` runs (the resync hook: it may send list
  actions); events arriving meanwhile are held and delivered after it returns,
  so state rebuilt from the snapshot is not overwritten by older events.
* Network errors back off exponentially (with jitter; the one policy,
  ``callcore.retry.backoff_delay``) between ``reconnect_min``
  and ``reconnect_max``; a refused login is a configuration error: state
  ``auth_failed``, logged as such, retried every ``reconnect_max`` seconds.
* ``Event: Shutdown`` or EOF: pending actions fail with :class:`AmiNotConnected`
  (never silently re-sent: a re-sent Originate is a second phone call), then
  reconnect.

Why not panoramisk's ``Manager``: 1.4 ``manager.py`` ``Manager.dispatch``
schedules coroutine callbacks with ``asyncio.ensure_future`` and keeps no
reference (tasks can be garbage-collected mid-flight, exceptions are lost);
``Manager.connect``/``connection_lost`` reconnect via ``call_later`` with a fixed
``int(reconnect_timeout)`` and no owned task to cancel; ``send_awaiting_actions``
replays unanswered actions after a reconnect. The protocol layer is
:class:`cti.ami.protocol.AmiProtocol` (a panoramisk ``AMIProtocol`` subclass).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from panoramisk.utils import IdGenerator

from callcore.retry import backoff_delay  # the one retry policy (re-exported by cti.ami)
from cti.ami import actions as act
from cti.ami.actions import (
    Action,
    AmiActionError,
    AmiAuthError,
    AmiError,
    AmiNotConnected,
    AmiResponse,
    AmiTimeout,
)
from cti.ami.events import CONSUMED_EVENTS, AmiEvent, OriginateResponse, Shutdown, translate
from cti.ami.protocol import MAX_FRAME_BYTES, MAX_HEADERS, AmiProtocol, FrameStats

log = logging.getLogger(__name__)

EventCallback = Callable[[AmiEvent], None]
ConnectHook = Callable[[], Awaitable[Any]]
StateCallback = Callable[[str], None]

DISCONNECTED = "disconnected"
CONNECTING = "connecting"
CONNECTED = "connected"
AUTH_FAILED = "auth_failed"

_SUCCESS = frozenset({"Success", "Goodbye", "Follows"})
#: list actions abandoned on timeout whose late events are still swallowed
_MAX_ORPHANS = 64
#: orphan Responses logged at WARNING before the rest go to DEBUG (all are counted)
_ORPHAN_LOG_MAX = 5
#: events handed to on_event per loop turn when flushing the resync backlog
_FLUSH_BATCH = 500


class AmiResyncError(AmiError):
    """The ``on_connect`` hook failed; the connection is dropped and retried."""


@dataclass(eq=False)
class _Pending:
    action: Action
    future: asyncio.Future[AmiResponse]
    response: dict[str, str] | None = None
    events: list[AmiEvent] = field(default_factory=list)
    raw_events: list[dict[str, str]] = field(default_factory=list)


class AmiClient:
    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        *,
        action_timeout: float = 5.0,
        reconnect_min: float = 0.5,
        reconnect_max: float = 30.0,
        on_event: EventCallback | None = None,
        on_connect: ConnectHook | None = None,
        on_state: StateCallback | None = None,
        consumed_events: frozenset[str] = CONSUMED_EVENTS,
        ping_interval: float | None = 20.0,
        connect_timeout: float | None = None,
        rng: random.Random | None = None,
        max_frame_bytes: int = MAX_FRAME_BYTES,
        max_headers: int = MAX_HEADERS,
        server: str = "",
    ) -> None:
        if reconnect_min <= 0 or reconnect_max < reconnect_min:
            raise ValueError("need 0 < reconnect_min <= reconnect_max")
        self.host = host
        self.port = port
        #: this Asterisk server's name (issue 19): every event read is tagged with it (``AmiEvent.server``)
        self.server = server
        self.username = username
        self._secret = secret  # never logged, never in repr
        self.action_timeout = action_timeout
        self.reconnect_min = reconnect_min
        self.reconnect_max = reconnect_max
        #: AMI framing bounds (cti/ami/protocol.py): bigger frames are dropped and counted
        self.max_frame_bytes = max_frame_bytes
        self.max_headers = max_headers
        self.ping_interval = ping_interval
        self.connect_timeout = connect_timeout if connect_timeout is not None else action_timeout
        self._on_event = on_event
        self._on_connect = on_connect
        self._on_state = on_state
        self._consumed = frozenset(consumed_events)
        self._rng = rng or random.Random()
        self._ids = IdGenerator("callcore")

        self._state = DISCONNECTED
        self._conn: AmiProtocol | None = None
        self._logged_in = False
        self._closing = False
        self._runner: asyncio.Task[None] | None = None
        self._pending: dict[str, _Pending] = {}
        #: ActionIDs whose events must pass the parser's noise filter (pending list
        #: actions, orphaned lists, awaited OriginateResponses); shared with the parser
        self._keep_ids: set[bytes] = set()
        self._orphans: deque[str] = deque()
        self._originate_waiters: dict[str, asyncio.Future[OriginateResponse]] = {}
        self._gate_open = False
        self._held: deque[AmiEvent] = deque()
        self._drop_reason: str | None = None
        self._connected_event = asyncio.Event()

        #: reader counters (frames, dropped_noise, unknown_events, decode_errors, ...)
        self.stats = FrameStats()
        self.events_delivered = 0
        #: successful logins after the first one
        self.reconnects = 0
        self.logins = 0
        self.connect_failures = 0
        self.auth_failures = 0
        #: the delay chosen before the next connection attempt (observability, tests)
        self.last_retry_delay: float | None = None

    def __repr__(self) -> str:
        return f"<AmiClient {self.username}@{self.host}:{self.port} {self._state}>"

    # ----------------------------------------------------------- public API
    @property
    def state(self) -> str:
        """``disconnected`` | ``connecting`` (TCP, login or resync under way) |
        ``connected`` (logged in and resynced) | ``auth_failed``."""
        return self._state

    @property
    def logged_in(self) -> bool:
        """True from the login response on (``send`` works, also inside ``on_connect``)."""
        return self._logged_in

    @property
    def frames_in(self) -> int:
        return self.stats.frames

    @property
    def unknown_events(self) -> int:
        return self.stats.unknown_events

    @property
    def dropped_noise(self) -> int:
        return self.stats.dropped_noise

    @property
    def decode_errors(self) -> int:
        return self.stats.decode_errors

    @property
    def asterisk_version(self) -> str | None:
        """The AMI protocol version of the banner of the current connection."""
        return self._conn.parser.version if self._conn is not None else None

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait until the state is ``connected`` (logged in and resynced).

        Raises :class:`AmiTimeout` after ``timeout`` seconds (None: wait forever).
        """
        try:
            async with asyncio.timeout(timeout):
                await self._connected_event.wait()
        except TimeoutError:
            raise AmiTimeout(f"AMI {self.host}:{self.port} still {self._state} after {timeout} s") from None

    async def start(self) -> None:
        """Start the background connect/login/resync/reconnect loop (idempotent)."""
        if self._runner is not None and not self._runner.done():
            return
        self._closing = False
        self._runner = asyncio.get_running_loop().create_task(self._run(), name=f"ami-client {self.host}:{self.port}")

    async def connect_once(self) -> None:
        """Connect, log in and run ``on_connect`` once, without the retry loop.

        Raises :class:`AmiAuthError`, ``OSError``, :class:`AmiTimeout`,
        :class:`AmiNotConnected` or :class:`AmiResyncError`.
        """
        self._closing = False
        await self._open_session()

    async def close(self) -> None:
        """Log off (when logged in), cancel the loop, close the socket, fail pending actions."""
        self._closing = True
        conn = self._conn
        if conn is not None and self._logged_in:
            try:
                await self._send_on(conn, act.logoff(), min(1.0, self.action_timeout))
            except AmiError as exc:
                log.debug("AMI logoff not acknowledged: %s", exc)
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.cancel()
            await asyncio.wait({runner})  # never re-raises the runner's CancelledError
        conn = self._conn
        if conn is not None:
            conn.close()
            self._connection_lost(conn, None)
            if conn.lost is not None:
                try:
                    await asyncio.wait_for(asyncio.shield(conn.lost), 1.0)
                except asyncio.TimeoutError:
                    log.warning("AMI socket did not close within 1 s")
        self._set_state(DISCONNECTED)

    async def send(self, action: Action, timeout: float | None = None) -> AmiResponse:
        """Send one action and wait for its response.

        List actions return the collected events in ``.events`` (typed) and
        ``.raw_events`` (events without a typed class). A synchronous Originate
        (``Async: false``) waits up to its own ``Timeout`` plus 5 s by default.

        Raises :class:`AmiActionError` (``Response: Error``, with Asterisk's
        message), :class:`AmiTimeout`, :class:`AmiNotConnected`.
        """
        conn = self._conn
        if conn is None or not self._logged_in:
            raise AmiNotConnected(f"AMI {self.host}:{self.port} is {self._state}: {action.name} not sent")
        return await self._send_on(conn, action, timeout)

    async def send_originate(self, action: Action, timeout: float | None = None) -> OriginateResponse:
        """Send an ``Async: true`` Originate and wait for its ``OriginateResponse`` event.

        Returns the event (``response`` is ``Success`` or ``Failure``, ``reason``
        is Asterisk's cause code); the event is also delivered to ``on_event``.
        Default wait: the action's ``Timeout`` plus 5 s.
        """
        if action.name != "Originate" or (action.get("Async") or "").lower() != "true":
            raise ValueError("send_originate needs an Originate built with async_=True")
        conn = self._conn
        if conn is None or not self._logged_in:
            raise AmiNotConnected(f"AMI {self.host}:{self.port} is {self._state}: Originate not sent")
        if timeout is None:
            timeout = _originate_wait(action, self.action_timeout)
        action_id = self._ids()
        waiter: asyncio.Future[OriginateResponse] = asyncio.get_running_loop().create_future()
        self._originate_waiters[action_id] = waiter
        key = action_id.encode("utf-8")
        self._keep_ids.add(key)  # even if OriginateResponse is not in consumed_events
        try:
            async with asyncio.timeout(timeout):
                await self._send_on(conn, action, None, action_id=action_id)
                return await waiter
        except TimeoutError:
            raise AmiTimeout(f"Originate: no OriginateResponse within {timeout:.1f} s") from None
        finally:
            self._originate_waiters.pop(action_id, None)
            self._keep_ids.discard(key)
            if waiter.done() and not waiter.cancelled():
                waiter.exception()  # retrieved: no "exception never retrieved" noise
            else:
                waiter.cancel()

    # ------------------------------------------------------------- sessions
    async def _run(self) -> None:
        attempt = 0
        while not self._closing:
            try:
                await self._open_session()
            except AmiAuthError as exc:
                delay = self._retry_delay(None)
                log.error("%s; retrying in %s s", exc, _secs(delay))
            except AmiResyncError as exc:
                self._drop_connection()
                self._set_state(DISCONNECTED)
                delay = self._retry_delay(attempt)
                attempt += 1
                log.error("AMI %s:%d resync failed (%s), reconnecting in %s s", self.host, self.port, exc, _secs(delay))
            except (OSError, AmiError, TimeoutError) as exc:
                self.connect_failures += 1
                self._drop_connection()
                self._set_state(DISCONNECTED)
                delay = self._retry_delay(attempt)
                attempt += 1
                log.warning(
                    "AMI %s:%d not reachable (%s), retrying in %s s", self.host, self.port, _describe(exc), _secs(delay)
                )
            except Exception:  # a bug must not end the reconnect loop silently
                self._drop_connection()
                self._set_state(DISCONNECTED)
                delay = self._retry_delay(attempt)
                attempt += 1
                log.exception("AMI %s:%d session failed, retrying in %s s", self.host, self.port, _secs(delay))
            else:
                attempt = 0
                reason = await self._wait_until_lost()
                if self._closing:
                    return
                delay = self._retry_delay(0)
                log.warning(
                    "AMI %s:%d connection lost (%s), reconnecting in %s s", self.host, self.port, reason, _secs(delay)
                )
            await asyncio.sleep(delay)

    def _retry_delay(self, attempt: int | None) -> float:
        if attempt is None:  # a configuration error: no point hammering
            delay = self.reconnect_max
        else:
            delay = backoff_delay(attempt, self.reconnect_min, self.reconnect_max, self._rng.random())
        self.last_retry_delay = delay
        return delay

    async def _open_session(self) -> None:
        if self._conn is not None:
            raise AmiError("AMI client already has a connection")
        try:
            await self._login_and_resync()
        except AmiAuthError:
            self.auth_failures += 1
            self._drop_connection()
            self._set_state(AUTH_FAILED)
            raise
        except BaseException:
            self._drop_connection()
            self._set_state(DISCONNECTED)
            raise

    async def _login_and_resync(self) -> None:
        loop = asyncio.get_running_loop()
        if self._state != AUTH_FAILED:  # a refused login stays visible while retrying
            self._set_state(CONNECTING)
        self._gate_open = False
        self._held.clear()
        self._drop_reason = None
        log.debug("AMI connecting to %s:%d as %s", self.host, self.port, self.username)

        def factory() -> AmiProtocol:
            return AmiProtocol(
                self._on_frame,
                self._connection_lost,
                consumed_events=self._consumed,
                keep_action_ids=self._keep_ids,
                stats=self.stats,
                max_frame_bytes=self.max_frame_bytes,
                max_headers=self.max_headers,
            )

        async with asyncio.timeout(self.connect_timeout):
            _, conn = await loop.create_connection(factory, self.host, self.port)
        self._conn = conn
        try:
            await self._send_on(conn, act.login(self.username, self._secret), None)
        except AmiActionError as exc:
            raise AmiAuthError(
                f"AMI login refused for user {self.username!r} at {self.host}:{self.port}: {exc.message}; "
                "check CALLCORE_AMI_USERNAME/SECRET"
            ) from None
        self._logged_in = True
        self.logins += 1
        if self.logins > 1:
            self.reconnects += 1
        log.info("AMI logged in to %s:%d (protocol %s)", self.host, self.port, conn.parser.version or "?")
        if self._on_connect is not None:
            try:
                await self._on_connect()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the hook's failure must not kill the loop
                log.exception("AMI on_connect (resync) hook failed")
                raise AmiResyncError(f"{type(exc).__name__}: {exc}") from exc
        # deliver what arrived during the resync, in order, then go live
        while self._held:
            for _ in range(min(_FLUSH_BATCH, len(self._held))):
                self._dispatch(self._held.popleft())
            if self._held:
                await asyncio.sleep(0)
        if self._conn is not conn:
            raise AmiNotConnected("AMI connection lost during resync")
        self._gate_open = True
        self._set_state(CONNECTED)

    async def _wait_until_lost(self) -> str:
        conn = self._conn
        if conn is None or conn.lost is None:
            return "no connection"
        while True:
            done, _ = await asyncio.wait({conn.lost}, timeout=self.ping_interval)
            if done:
                exc = conn.lost.result()
                if self._drop_reason:
                    return self._drop_reason
                return _describe(exc) if exc is not None else "closed by Asterisk"
            try:
                await self.send(act.ping(), timeout=self.action_timeout)
            except AmiTimeout:
                log.warning("AMI %s:%d: Ping unanswered, dropping the connection", self.host, self.port)
                self._drop_reason = f"no answer to Ping within {self.action_timeout:.1f} s"
                conn.close()
            except AmiError:
                pass  # lost meanwhile (the future resolves) or an error answer: link is alive

    def _drop_connection(self) -> None:
        conn = self._conn
        if conn is not None:
            conn.close()
            self._connection_lost(conn, None)

    # --------------------------------------------------------------- actions
    async def _send_on(
        self, conn: AmiProtocol, action: Action, timeout: float | None, *, action_id: str | None = None
    ) -> AmiResponse:
        if timeout is None:
            timeout = self.action_timeout
            if action.name == "Originate" and (action.get("Async") or "").lower() != "true":
                timeout = _originate_wait(action, self.action_timeout)
        action_id = action_id or self._ids()
        future: asyncio.Future[AmiResponse] = asyncio.get_running_loop().create_future()
        pending = _Pending(action, future)
        self._pending[action_id] = pending
        key = action_id.encode("utf-8")
        if action.complete_event:
            self._keep_ids.add(key)
        try:
            try:
                conn.send(action.to_bytes(action_id))
            except ConnectionError as exc:
                raise AmiNotConnected(f"AMI link down: {action.name} not sent") from exc
            log.debug("AMI -> %s (%s)", action.name, action_id)
            try:
                async with asyncio.timeout(timeout):
                    return await future
            except TimeoutError:
                if action.complete_event and pending.response is not None:
                    self._orphan(action_id)  # swallow the rest of its list
                raise AmiTimeout(f"{action.name}: no response within {timeout:.1f} s") from None
        finally:
            self._pending.pop(action_id, None)
            if action.complete_event and action_id not in self._orphans:
                self._keep_ids.discard(key)

    def _orphan(self, action_id: str) -> None:
        self._orphans.append(action_id)
        while len(self._orphans) > _MAX_ORPHANS:
            self._keep_ids.discard(self._orphans.popleft().encode("utf-8"))

    # ---------------------------------------------------------------- frames
    def _on_frame(self, headers: dict[str, str]) -> None:
        """Called by the protocol for every frame that passed the noise filter."""
        name = headers.get("Event")
        action_id = headers.get("ActionID")
        if name is None:
            if "Response" in headers:
                self._on_response(headers, action_id)
            return
        if action_id is not None:
            pending = self._pending.get(action_id)
            if pending is not None and pending.action.complete_event:
                self._on_list_event(pending, name, headers)
                return
            if action_id in self._orphans:
                if name.endswith("Complete") or headers.get("EventList", "").lower() == "complete":
                    self._orphans.remove(action_id)
                    self._keep_ids.discard(action_id.encode("utf-8"))
                return
        try:
            event = translate(headers)
        except Exception:  # a malformed frame must not kill the stream
            log.exception("AMI: cannot translate %s event", name)
            event = None
        if event is None:
            self.stats.unknown_events += 1
            return
        if self.server:  # frozen dataclass: tagged once, here, before anyone sees it
            object.__setattr__(event, "server", self.server)
        if isinstance(event, OriginateResponse):
            waiter = self._originate_waiters.get(event.action_id)
            if waiter is not None and not waiter.done():
                waiter.set_result(event)
        if self._gate_open:
            # _dispatch, inlined: once per event on the read loop (issue 18)
            self.events_delivered += 1
            on_event = self._on_event
            if on_event is not None:
                try:
                    on_event(event)
                except Exception:
                    log.exception("AMI on_event callback failed for %s", event.name)
        else:
            self._held.append(event)
        if isinstance(event, Shutdown):
            log.warning(
                "AMI %s:%d: Asterisk is shutting down (%s, restart=%s)",
                self.host,
                self.port,
                event.shutdown,
                event.restart,
            )
            if self._conn is not None:
                self._drop_reason = f"Asterisk shut down ({event.shutdown}, restart={event.restart})"
                self._conn.close()

    def _on_response(self, headers: dict[str, str], action_id: str | None) -> None:
        pending = self._pending.get(action_id) if action_id is not None else None
        if pending is None or pending.future.done():
            # an answer after its action timed out, or a peer that invents ActionIDs:
            # counted (callcore_ami_orphan_responses_total), the first few logged
            self.stats.orphan_responses += 1
            level = logging.WARNING if self.stats.orphan_responses <= _ORPHAN_LOG_MAX else logging.DEBUG
            log.log(level, "AMI: Response %r for no pending action (ActionID %r), dropped",
                    headers.get("Response"), action_id)
            return
        action = pending.action
        if headers.get("Response") not in _SUCCESS:
            pending.future.set_exception(
                AmiActionError(action.name, headers.get("Message", headers.get("Response", "")), headers)
            )
            return
        if action.complete_event:
            pending.response = headers  # the events follow, up to the Complete event
            return
        pending.future.set_result(AmiResponse(action.name, True, headers.get("Message", ""), headers))

    def _on_list_event(self, pending: _Pending, name: str, headers: dict[str, str]) -> None:
        if name == pending.action.complete_event or headers.get("EventList", "").lower() == "complete":
            if not pending.future.done():
                response = pending.response or {}
                pending.future.set_result(
                    AmiResponse(
                        pending.action.name,
                        True,
                        response.get("Message", ""),
                        dict(response),
                        pending.events,
                        pending.raw_events,
                        headers,
                    )
                )
            return
        try:
            event = translate(headers)
        except Exception:
            log.exception("AMI: cannot translate %s list event", name)
            event = None
        if event is None:
            pending.raw_events.append(headers)
        else:
            if self.server:
                object.__setattr__(event, "server", self.server)
            pending.events.append(event)

    def _dispatch(self, event: AmiEvent) -> None:
        self.events_delivered += 1
        if self._on_event is None:
            return
        try:
            self._on_event(event)
        except Exception:
            log.exception("AMI on_event callback failed for %s", event.name)

    # ------------------------------------------------------------ plumbing
    def _connection_lost(self, conn: AmiProtocol, exc: BaseException | None) -> None:
        if conn is not self._conn:
            return
        self._conn = None
        self._logged_in = False
        self._gate_open = False
        self._held.clear()
        error = AmiNotConnected(f"AMI connection to {self.host}:{self.port} lost")
        for pending in list(self._pending.values()):
            if not pending.future.done():
                pending.future.set_exception(error)
        for waiter in list(self._originate_waiters.values()):
            if not waiter.done():
                waiter.set_exception(error)
        self._keep_ids.clear()
        self._orphans.clear()
        if self._state == CONNECTED:
            self._set_state(DISCONNECTED)

    def _set_state(self, state: str) -> None:
        if state == self._state:
            return
        self._state = state
        if state == CONNECTED:
            self._connected_event.set()
        else:
            self._connected_event.clear()
        if self._on_state is not None:
            try:
                self._on_state(state)
            except Exception:
                log.exception("AMI on_state callback failed")


def _originate_wait(action: Action, floor: float) -> float:
    try:
        ring = int(action.get("Timeout") or 30000) / 1000.0
    except ValueError:
        ring = 30.0
    return max(floor, ring + 5.0)


def _secs(delay: float) -> str:
    """``2.0`` for human-scale delays, two decimals below one second."""
    return f"{delay:.1f}" if delay >= 0.95 else f"{delay:.2f}"


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "closed"
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return "timed out"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
