"""``ConsoleChannel``: the ``Channel`` port on a terminal or a script.

Used by ``callcore dialplan try`` and by the tests: it records a transcript
of what the caller hears and presses (``▶ play ko/welcome``, ``⌨ 1``...).

Scripted input is a list of *answers*, one per time the IVR listens: ``"1"``
for a menu, ``"01012345678#"`` for a collect, ``""`` (or ``"t"``) for "let it
time out". When the script runs out the caller hangs up
(:class:`~ivr.channel.ChannelHungUp`), so a test can stop a call anywhere.
Interactive mode reads one answer per line from a reader (stdin by default):
empty line = timeout, ``q`` = hang up. On a real terminal, :class:`TerminalKeys`
reads single key presses without Enter and lets the IVR's timeouts run in
real time, like a phone.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Awaitable, Callable, Iterable

from ivr.channel import CallInfo, ChannelHungUp

Reader = Callable[[str], Awaitable[str]]


async def _stdin_reader(prompt: str) -> str:
    def read() -> str:
        sys.stdout.write(prompt)
        sys.stdout.flush()
        line = sys.stdin.readline()
        if line == "":
            raise EOFError
        return line.rstrip("\n")

    return await asyncio.to_thread(read)


class TerminalKeys:
    """Single key presses from a TTY (cbreak mode), with real timeouts. ``q`` hangs up."""

    def __init__(self, fd: int | None = None) -> None:
        self.fd = sys.stdin.fileno() if fd is None else fd

    def _read(self, max_keys: int, timeout: float, terminator: str) -> str | None:
        import select
        import termios
        import time
        import tty

        saved = termios.tcgetattr(self.fd)
        keys = ""
        try:
            tty.setcbreak(self.fd, termios.TCSANOW)  # keep keys typed ahead (TCSAFLUSH would drop them)
            deadline = time.monotonic() + timeout
            while len(keys) < max_keys:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                ready, _, _ = select.select([self.fd], [], [], remaining)
                if not ready:
                    break
                ch = os.read(self.fd, 1).decode(errors="replace")
                if ch.lower() == "q":
                    return None
                if terminator and ch == terminator:
                    break
                if ch in "0123456789*#":
                    keys += ch
                    deadline = time.monotonic() + timeout  # inter-digit timeout, like GET DATA
        finally:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, saved)
        return keys

    async def read(self, max_keys: int, timeout: float, terminator: str = "") -> str | None:
        return await asyncio.to_thread(self._read, max_keys, timeout, terminator)


class ConsoleChannel:
    def __init__(
        self,
        info: CallInfo,
        answers: Iterable[str] | None = None,
        *,
        interactive: bool = False,
        out: Callable[[str], None] | None = None,
        reader: Reader | None = None,
        barge_in: bool = False,
        keys: TerminalKeys | None = None,
    ) -> None:
        self.info = info
        self._answers = list(answers or [])
        self._interactive = interactive
        self._reader = reader or _stdin_reader
        self._out = out
        self._keys_src = keys  # interactive on a TTY: real key presses and timeouts
        self._barge_in = barge_in  # scripted: a pending answer interrupts prompts with matching escape digits
        self.transcript: list[str] = []
        self.variables: dict[str, str] = {}
        self.executed: list[tuple[str, tuple[str, ...]]] = []
        self.answered = False
        self.hung_up = False

    # ---- helpers
    def _log(self, line: str) -> None:
        self.transcript.append(line)
        if self._out is not None:
            self._out(line)

    def _alive(self) -> None:
        if self.hung_up:
            raise ChannelHungUp("caller hung up")

    async def _next_answer(self, what: str) -> str:
        self._alive()
        if self._interactive:
            try:
                line = (await self._reader(f"  {what} (keys, empty = timeout, q = hang up)> ")).strip()
            except EOFError:
                line = "q"
            if line.lower() == "q":
                self.hung_up = True
                self._log("✆ caller hangs up")
                raise ChannelHungUp("caller hung up")
            return line
        if not self._answers:
            self.hung_up = True
            self._log("✆ caller hangs up")
            raise ChannelHungUp("caller hung up (end of scripted digits)")
        ans = self._answers.pop(0)
        return "" if ans.lower() in ("t", "timeout") else ans

    def _keys(self, keys: str) -> None:
        self._log(f"⌨ {keys}" if keys else "⌨ (timeout)")

    # ---- Channel port
    async def answer(self) -> None:
        self._alive()
        self.answered = True
        self._log("☎ answer")

    async def play(self, prompt: str, escape_digits: str = "") -> str:
        self._alive()
        self._log(f"▶ play {prompt}")
        if self._barge_in and escape_digits and self._answers and self._answers[0][:1] in escape_digits and self._answers[0]:
            ans = self._answers.pop(0)
            if len(ans) > 1:
                self._answers.insert(0, ans[1:])
            self._keys(ans[0])
            return ans[0]
        return ""

    async def collect(self, prompt: str | None, timeout: float, max_digits: int, terminator: str = "#") -> str:
        self._alive()
        if prompt:
            self._log(f"▶ play {prompt}")
        if self._keys_src is not None:
            got = await self._terminal(max_digits, timeout, terminator)
            self._keys(got + (terminator if got and terminator and len(got) < max_digits else ""))
            return got
        ans = await self._next_answer(f"enter up to {max_digits} digits then {terminator or 'wait'}")
        digits = ""
        for ch in ans:
            if terminator and ch == terminator:
                break
            digits += ch
            if len(digits) >= max_digits:
                break
        self._keys(ans)
        return digits

    async def _terminal(self, max_keys: int, timeout: float, terminator: str) -> str:
        self._alive()
        assert self._keys_src is not None
        if self._out is not None:
            self._out(f"  (press keys; {timeout:g} s timeout; q = hang up)")
        got = await self._keys_src.read(max_keys, timeout, terminator)
        if got is None:
            self.hung_up = True
            self._log("✆ caller hangs up")
            raise ChannelHungUp("caller hung up")
        return got

    async def wait_digit(self, timeout: float) -> str:
        if self._keys_src is not None:
            got = await self._terminal(1, timeout, "")
            self._keys(got)
            return got
        ans = await self._next_answer("press a key")
        if len(ans) > 1:
            self._answers.insert(0, ans[1:])
        self._keys(ans[:1])
        return ans[:1]

    async def say_digits(self, digits: str, escape_digits: str = "") -> str:
        self._alive()
        self._log(f"🔢 say digits {digits}")
        return ""

    async def say_number(self, number: int, escape_digits: str = "") -> str:
        self._alive()
        self._log(f"🔢 say number {number}")
        return ""

    async def say_date(self, epoch_seconds: int, escape_digits: str = "") -> str:
        self._alive()
        self._log(f"📅 say date {epoch_seconds}")
        return ""

    async def set_variable(self, name: str, value: str) -> None:
        self._alive()
        self.variables[name] = value
        self._log(f"⚙ set {name}={value}")

    async def get_variable(self, name: str) -> str | None:
        self._alive()
        return self.variables.get(name)

    async def exec(self, application: str, *args: str) -> str:
        self._alive()
        self.executed.append((application, args))
        self._log(f"⏎ exec {application}({','.join(args)})")
        return "0"

    async def hangup(self) -> None:
        if not self.hung_up:
            self._log("✖ hangup")
        self.hung_up = True
