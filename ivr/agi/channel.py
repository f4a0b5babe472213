"""``AgiChannel``: the IVR ``Channel`` port over an AGI session.

Works over anything with ``info``, ``hung_up`` and
``async send(name, *args, timeout=None) -> AgiResult`` raising the typed
errors of ``ivr.agi.protocol`` — the FastAGI :class:`~ivr.agi.server.AgiSession`
and the classic-AGI command runner in ``ivr.agi.classic``.

Result conventions (res_agi.c):

* STREAM FILE / SAY * / WAIT FOR DIGIT: ``result`` is the ASCII code of the
  digit pressed, 0 for none, -1 for failure or hangup.
* STREAM FILE ``result=-1 endpos=0``: the file could not be opened (missing
  sound). We log a warning and carry on, so a caller never gets stuck on a
  typo in a flow. ``result=-1`` with ``endpos>0`` means playback started and
  was cut by a hangup: :class:`ChannelHungUp`.
* GET DATA: ``result=<digits>`` (possibly with ``(timeout)`` after a partial
  entry), ``result= (timeout)`` for nothing, ``result=-1`` on hangup.
* 511 on any command: dead channel → :class:`ChannelHungUp` (raised by the session).
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any, Protocol

from ivr.agi.protocol import AgiHangup, AgiProtocolError, AgiResult, DIGITS_RE, validate_digits
from ivr.channel import CallInfo, ChannelError, ChannelHungUp

log = logging.getLogger("ivr.agi.channel")

ALL_DIGITS = "0123456789*#"
_APP_RE = re.compile(r"[A-Za-z0-9_]+")
_VARNAME_RE = re.compile(r"[^\s\"\\]+")


class AgiCommandSender(Protocol):
    info: CallInfo

    @property
    def hung_up(self) -> bool: ...

    async def send(self, name: str, *args: Any, timeout: float | None = None) -> AgiResult: ...


def _ms(seconds: float) -> int:
    if seconds <= 0:
        raise ValueError(f"timeout must be > 0 seconds, got {seconds!r}")
    return max(1, int(round(seconds * 1000)))


class AgiChannel:
    """Implements :class:`ivr.channel.Channel` with AGI commands."""

    def __init__(self, session: AgiCommandSender, *, extra_timeout: float = 5.0) -> None:
        self.session = session
        self.info: CallInfo = session.info
        #: added to the user-facing timeout for commands that wait for the caller
        self.extra_timeout = extra_timeout

    # ------------------------------------------------------------ helpers
    def _hangup_error(self, command: str, result: AgiResult) -> ChannelHungUp:
        return AgiHangup(f"{command}: caller hung up ({result.raw})", command=command, result=result)

    def _digit_or_hangup(self, command: str, result: AgiResult) -> str:
        if result.int_result < 0:
            raise self._hangup_error(command, result)
        return result.digit

    def _wait_budget(self, seconds: float) -> float | None:
        base = getattr(self.session, "command_timeout", None)
        if base is None:
            return None
        return max(base, seconds + self.extra_timeout)

    # ------------------------------------------------------------ Channel
    async def answer(self) -> None:
        result = await self.session.send("ANSWER")
        if result.int_result < 0:
            if self.session.hung_up:
                raise self._hangup_error("ANSWER", result)
            raise ChannelError(f"ANSWER failed ({result.raw})")

    async def play(self, prompt: str, escape_digits: str = "") -> str:
        validate_digits(escape_digits, "escape digits")
        result = await self.session.send("STREAM FILE", prompt, escape_digits)
        if result.int_result == -1:
            if result.endpos == 0 and not self.session.hung_up:
                log.warning("call %s: sound %r missing (STREAM FILE result=-1 endpos=0); continuing", self.info.uniqueid, prompt)
                return ""
            raise self._hangup_error("STREAM FILE", result)
        return self._digit_or_hangup("STREAM FILE", result)

    async def collect(self, prompt: str | None, timeout: float, max_digits: int, terminator: str = "#") -> str:
        if max_digits < 1:
            raise ValueError(f"max_digits must be >= 1, got {max_digits!r}")
        if terminator not in ("", "#", "*"):
            raise ValueError(f"terminator must be '', '#' or '*', got {terminator!r}")
        timeout_ms = _ms(timeout)
        if prompt is not None and terminator == "#":
            # GET DATA natively stops on '#', which it does not return
            result = await self.session.send(
                "GET DATA", prompt, timeout_ms, max_digits, timeout=self._wait_budget(timeout * (max_digits + 1))
            )
            if result.result == "-1":
                raise self._hangup_error("GET DATA", result)
            digits = result.result
            if not DIGITS_RE.fullmatch(digits):
                raise AgiProtocolError(f"GET DATA returned non-digits {result.raw!r}", command="GET DATA", result=result)
            return digits
        # no prompt (play nothing) or a terminator GET DATA cannot honour: digit by digit
        digits = ""
        if prompt is not None:
            first = await self.play(prompt, ALL_DIGITS)
            if first:
                if first == terminator:
                    return digits
                digits += first
        while len(digits) < max_digits:
            digit = await self.wait_digit(timeout)
            if digit == "" or (terminator and digit == terminator):
                break
            digits += digit
        return digits

    async def wait_digit(self, timeout: float) -> str:
        result = await self.session.send("WAIT FOR DIGIT", _ms(timeout), timeout=self._wait_budget(timeout))
        return self._digit_or_hangup("WAIT FOR DIGIT", result)

    async def say_digits(self, digits: str, escape_digits: str = "") -> str:
        validate_digits(digits, "digits")
        validate_digits(escape_digits, "escape digits")
        result = await self.session.send("SAY DIGITS", digits, escape_digits)
        return self._digit_or_hangup("SAY DIGITS", result)

    async def say_number(self, number: int, escape_digits: str = "") -> str:
        if isinstance(number, bool) or not isinstance(number, int):
            raise TypeError(f"say_number needs an int, got {number!r}")
        validate_digits(escape_digits, "escape digits")
        result = await self.session.send("SAY NUMBER", number, escape_digits)
        return self._digit_or_hangup("SAY NUMBER", result)

    async def say_date(self, epoch_seconds: int, escape_digits: str = "") -> str:
        if isinstance(epoch_seconds, bool) or not isinstance(epoch_seconds, int):
            raise TypeError(f"say_date needs int epoch seconds, got {epoch_seconds!r}")
        validate_digits(escape_digits, "escape digits")
        result = await self.session.send("SAY DATE", epoch_seconds, escape_digits)
        return self._digit_or_hangup("SAY DATE", result)

    async def set_variable(self, name: str, value: str) -> None:
        if not _VARNAME_RE.fullmatch(name):
            raise ValueError(f"bad channel variable name {name!r}")
        result = await self.session.send("SET VARIABLE", name, value)
        if result.result != "1":
            raise ChannelError(f"SET VARIABLE {name} failed ({result.raw})")

    async def get_variable(self, name: str) -> str | None:
        if not _VARNAME_RE.fullmatch(name):
            raise ValueError(f"bad channel variable name {name!r}")
        result = await self.session.send("GET VARIABLE", name)
        if result.result == "1":
            return result.data if result.data is not None else ""
        return None

    async def exec(self, application: str, *args: str) -> str:
        if not _APP_RE.fullmatch(application):
            raise ValueError(f"bad application name {application!r}")
        data = ",".join(str(a) for a in args)
        started = time.monotonic()
        # applications like Queue() or Dial() run as long as the call does: no command timeout
        result = await self.session.send("EXEC", application, data, timeout=float("inf"))
        log.debug("call %s: EXEC %s took %.3f s", self.info.uniqueid, application, time.monotonic() - started)
        if result.result == "-2":
            raise ChannelError(f"EXEC: application {application!r} not found")
        return result.result

    async def hangup(self) -> None:
        try:
            await self.session.send("HANGUP")
        except ChannelHungUp:
            return  # already gone: hanging up is idempotent
