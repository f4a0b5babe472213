"""Classic (stdin/stdout) AGI: ``AGI(callcore-agi,...)`` runs one process per call.

``PystChannel(agi)`` is the IVR ``Channel`` port over a pyst2
:class:`asterisk.agi.AGI` object. pyst2 0.5.1 is used for what it does
correctly — reading the ``agi_*`` environment from stdin, its SIGHUP flag,
writing and flushing command lines — but not for reading answers, because
its ``AGI.get_result``/``execute`` and the helpers built on them have bugs
that matter on a real call:

* a ``HANGUP`` line (unsolicited notice) crashes ``get_result`` with
  ``ValueError: invalid literal for int()`` (``int('')`` on the missing code);
* every ``result=-1`` raises ``AGIAppError``, so a missing sound file
  (``200 result=-1 endpos=0``) looks exactly like a hangup;
* the ``520-`` usage loop (``while line[:3] != '520'``) spins forever at EOF,
  because ``readline()`` keeps returning ``''``;
* ``execute`` calls ``test_hangup`` first and refuses *every* command after
  SIGHUP, although Asterisk still answers SET/GET VARIABLE, EXEC and NOOP on
  a dead channel (and answers 511 to the rest);
* ``_quote`` does not escape ``"`` or ``\\`` and nothing refuses a newline in
  an argument, so a value can inject a second command;
* ``AGI()`` installs a SIGHUP handler (main thread only) and writes debug
  lines (``ENV LINE``, ``COMMAND``...) to the ``stderr`` it is given.

So commands are formatted with :func:`ivr.agi.protocol.format_command`,
written through ``agi.send_command`` and answered through
:class:`ivr.agi.protocol.ResponseParser`; :class:`PystChannel` then shares
every result convention with the FastAGI :class:`ivr.agi.channel.AgiChannel`.
Blocking stdin reads run in a daemon thread so the event loop stays free and a
stuck read can never keep the process alive after the call.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import io
import logging
import os
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from ivr.agi.channel import AgiChannel
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
)
from ivr.channel import CallInfo, Channel, ChannelHungUp

if TYPE_CHECKING:  # pragma: no cover
    from asterisk.agi import AGI

    from callcore.settings import Settings

log = logging.getLogger("ivr.agi.classic")

T = TypeVar("T")


async def _in_daemon_thread(fn: Callable[[], T]) -> T:
    """Run a blocking call in a daemon thread (never joined at exit, unlike to_thread's pool)."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[T] = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if fut.done():
            return
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)

    def run() -> None:
        try:
            value = fn()
        except BaseException as exc:  # delivered to the awaiting coroutine
            outcome: tuple[bool, Any] = (False, exc)
        else:
            outcome = (True, value)
        with contextlib.suppress(RuntimeError):  # loop already closed: nobody is waiting
            loop.call_soon_threadsafe(settle, *outcome)

    threading.Thread(target=run, name="callcore-agi-stdin", daemon=True).start()
    return await fut


class PystSession:
    """AGI command runner over pyst2's stdin/stdout; same ``send`` contract as ``AgiSession``."""

    def __init__(self, agi: "AGI", *, command_timeout: float | None = None) -> None:
        self.agi = agi
        self.headers: dict[str, str] = dict(agi.env)
        self.info: CallInfo = call_info_from_headers(self.headers)
        self.command_timeout = command_timeout
        self._parser = ResponseParser()
        self._lock = asyncio.Lock()
        self._hung_up = False
        self._failure: AgiError | None = None

    @property
    def hung_up(self) -> bool:
        # Asterisk signals a classic AGI's hangup with SIGHUP (pyst2 sets _got_sighup),
        # a FastAGI's with a HANGUP line; accept both.
        return self._hung_up or self._parser.hung_up or bool(getattr(self.agi, "_got_sighup", False))

    async def send(self, name: str, *args: Any, timeout: float | None = None) -> AgiResult:
        line = format_command(name, *args)
        command = line.rstrip("\n")
        async with self._lock:
            if self._failure is not None:
                raise AgiConnectionClosed(f"session unusable after: {self._failure}", command=command)
            wait = self.command_timeout if timeout is None else timeout
            try:
                async with asyncio.timeout(None if wait is None or wait == float("inf") else wait):
                    result = await _in_daemon_thread(lambda: self._exchange(command))
            except TimeoutError:
                self._failure = AgiTimeout(f"no answer to {command!r} within {wait:g} s", command=command)
                raise self._failure from None
            except asyncio.CancelledError:
                # the reader thread is still waiting for this answer: nothing can follow
                self._failure = AgiProtocolError(f"{command!r} cancelled", command=command)
                raise
            except AgiError as exc:
                self._failure = exc
                if isinstance(exc, AgiConnectionClosed):
                    self._hung_up = True
                raise
            if result.code == 511 or (name.upper() == "HANGUP" and result.ok and result.result == "1"):
                self._hung_up = True
            return check_result(result, command)

    def _exchange(self, command: str) -> AgiResult:
        """Blocking: write one command, read lines until its answer is complete."""
        try:
            # not agi.execute(): it refuses everything after SIGHUP and parses with get_result
            self.agi.send_command(command)
        except (BrokenPipeError, ConnectionError, ValueError) as exc:  # ValueError: closed file
            raise AgiConnectionClosed(f"Asterisk closed stdout pipe: {exc}", command=command) from None
        while True:
            raw = self.agi.stdin.readline()
            if isinstance(raw, bytes):
                raw = raw.decode("utf-8", errors="replace")
            if raw == "":
                raise AgiConnectionClosed(f"stdin closed while waiting for the answer to {command!r}", command=command)
            result = self._parser.feed(raw)
            if result is not None:
                return result


class PystChannel(AgiChannel):
    """The IVR ``Channel`` over classic AGI (pyst2 ``AGI`` object)."""

    def __init__(self, agi: "AGI", *, command_timeout: float | None = None) -> None:
        super().__init__(PystSession(agi, command_timeout=command_timeout))
        self.agi = agi


# ------------------------------------------------------------------- main
async def _run_ivr(channel: Channel, settings: "Settings") -> None:
    """Run this call's IVR with the server's database, CRM and routing (see
    :func:`callcore.wiring.build_standalone_ivr`)."""
    from callcore.wiring import build_standalone_ivr

    service, aclose = await build_standalone_ivr(settings)
    try:
        await service.run(channel)
    finally:
        with contextlib.suppress(Exception):
            await aclose()


def main(argv: list[str] | None = None) -> int:
    """``callcore-agi``: run the IVR for the call on stdin/stdout. Exit 0 unless callcore itself failed."""
    from asterisk.agi import AGI

    from callcore.logs import configure
    from callcore.settings import Settings

    settings = Settings()
    configure(settings.log_level, settings.log_json)  # logs go to stderr; stdout is the AGI channel
    debug = settings.log_level.upper() == "DEBUG"
    stdin = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace", newline="\n")
    stdout = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="\n", write_through=True)
    noise = sys.stderr if debug else open(os.devnull, "w")  # pyst2 writes every line it sees to stderr
    started = time.monotonic()
    try:
        agi = AGI(stdin=stdin, stdout=stdout, stderr=noise)
        channel = PystChannel(agi, command_timeout=settings.agi_command_timeout)
        log.info("classic AGI call %s on %s", channel.info.uniqueid, channel.info.channel)
        try:
            asyncio.run(_run_ivr(channel, settings))
        except ChannelHungUp as exc:
            log.info("classic AGI call %s: caller hung up (%s)", channel.info.uniqueid, exc)
        except Exception:
            log.exception("classic AGI call %s failed", channel.info.uniqueid)
            return 1
        log.info("classic AGI call %s done in %.1f s", channel.info.uniqueid, time.monotonic() - started)
        return 0
    finally:
        if noise is not sys.stderr:
            noise.close()
