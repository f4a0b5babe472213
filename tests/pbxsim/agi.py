"""The FastAGI *client* side of Asterisk's ``AGI(agi://host:port/script?query,args)``.

Header lines, result lines, the unsolicited ``HANGUP`` notice and the dead-channel
rules are taken from ``agi-reference.jsonl`` and ``agi-caller-hangup.jsonl`` (read with
the off-by-one of those recordings corrected: the answer to the command in flight is
the line *after* ``HANGUP``).
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Awaitable, Callable
from urllib.parse import urlsplit

from .model import Channel

if TYPE_CHECKING:  # pragma: no cover
    from .pbx import Pbx

DEAD = "511 Command Not Permitted on a dead channel or intercept routine\n"
UNKNOWN = "510 Invalid or unknown command\n"
GET_DATA_USAGE = (
    "520-Invalid command syntax.  Proper usage follows:\n"
    "Stream the given <replaceable>file</replaceable>, and receive DTMF data.\n"
    "Returns the digits received from the channel at the other end.\n"
    "520 End of proper usage.\n"
)
DIGITS = "0123456789*#ABCD"


def usage(text: str) -> str:
    return f"520-Invalid command syntax.  Proper usage follows:\n{text}\n520 End of proper usage.\n"


def parse_args(line: str) -> list[str]:
    """Split an AGI command line like res_agi's ``parse_args``: quotes group, backslash escapes."""
    out: list[str] = []
    cur: list[str] = []
    quoted = escaped = have = False
    for c in line:
        if escaped:
            cur.append(c)
            escaped = False
            have = True
        elif c == "\\":
            escaped = True
        elif c == '"':
            quoted = not quoted
            have = True
        elif c in " \t" and not quoted:
            if have or cur:
                out.append("".join(cur))
            cur, have = [], False
        else:
            cur.append(c)
            have = True
    if have or cur:
        out.append("".join(cur))
    return out


class AgiSession:
    def __init__(self, pbx: "Pbx", ch: Channel, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.pbx = pbx
        self.ch = ch
        self.reader = reader
        self.writer = writer
        self.dead = False
        self.notified = False
        self.busy = False
        self.failure = False
        self.command_id = 0

    # ------------------------------------------------------------- io
    def send(self, text: str) -> None:
        try:
            self.writer.write(text.encode("utf-8"))
        except (ConnectionError, RuntimeError):
            pass

    def notice_hangup(self) -> None:
        if not self.notified:
            self.notified = True
            self.send("HANGUP\n")

    async def watch_hangup(self) -> None:
        """Asterisk writes ``HANGUP`` as soon as it notices the hangup while no command runs."""
        await self.ch.hangup_ev.wait()
        self.dead = True
        if not self.busy:
            self.notice_hangup()

    async def watch_redirect(self) -> None:
        await self.ch.redirect_ev.wait()
        self.dead = True
        if not self.busy:
            self.notice_hangup()

    # ------------------------------------------------------------- media helpers
    def prompt_len(self, name: str) -> float:
        return self.pbx.cfg.prompt_seconds.get(name, self.pbx.cfg.default_prompt_seconds)

    async def _collect(self, seconds: float | None, stop_on: str) -> tuple[str | None, float]:
        """Listen for a digit in ``stop_on`` for ``seconds`` (None = forever).

        Returns (digit or None on timeout, elapsed); raises HungUp if the channel hangs up.
        """
        ch, pbx = self.ch, self.pbx
        start = pbx.now()
        ch.collecting = True
        try:
            while True:
                left = None if seconds is None else seconds - (pbx.now() - start)
                if left is not None and left <= 0:
                    return None, pbx.now() - start
                kind, d = await pbx.wait_on(ch, left, queue=ch.dtmf)
                if kind == "timeout":
                    return None, pbx.now() - start
                if d in stop_on:
                    return d, pbx.now() - start
        finally:
            ch.collecting = False

    async def play(self, name: str, escape: str) -> tuple[int, int]:
        """Stream a prompt; returns (result, endpos). result: 0 done, ascii of escape digit, -1 error/hangup."""
        from .pbx import HungUp

        if name in self.pbx.cfg.missing_prompts:
            self.failure = True
            return -1, 0
        self.ch.prompts.append(name)
        self.pbx.notify()
        length = self.prompt_len(name)
        start = self.pbx.now()
        try:
            digit, elapsed = await self._collect(length, escape)
        except HungUp:
            self.dead = True
            self.pbx.setvar(self.ch, "PLAYBACKSTATUS", "FAILED")
            return -1, int(min(self.pbx.now() - start, length) * 8000)
        endpos = int(min(elapsed, length) * 8000)
        self.pbx.setvar(self.ch, "PLAYBACKSTATUS", "SUCCESS" if digit is None else "FAILED")
        return (ord(digit) if digit else 0), endpos

    # ------------------------------------------------------------- commands
    async def cmd_answer(self, a: list[str]) -> str:
        if not self.ch.up:
            self.pbx._newstate(self.ch, 6)
        return "200 result=0\n"

    async def cmd_hangup(self, a: list[str]) -> str:
        target = self.ch
        if len(a) > 1:
            target = self.pbx.channels.get(a[1])  # type: ignore[assignment]
            if target is None:
                return "200 result=-1\n"
        await self.pbx.hangup_channel(target, 16)
        return "200 result=1\n"

    async def cmd_stream_file(self, a: list[str]) -> str:
        if len(a) < 3:
            return usage("Send the given file, allowing playback to be interrupted by the given digits, if any.")
        escape = a[3] if len(a) > 3 else ""
        res, endpos = await self.play(a[2], escape)
        return f"200 result={res} endpos={endpos}\n"

    async def cmd_control_stream_file(self, a: list[str]) -> str:
        if len(a) < 4:
            return usage("Send the given file, allowing playback to be controlled by the given digits, if any.")
        res, endpos = await self.play(a[3], a[4] if len(a) > 4 else "")
        return f"200 result={res}\n"

    async def cmd_get_data(self, a: list[str]) -> str:
        if len(a) < 3:
            return GET_DATA_USAGE
        timeout_ms = int(a[3]) if len(a) > 3 and a[3].lstrip("-").isdigit() else 0
        maxdigits = int(a[4]) if len(a) > 4 and a[4].isdigit() else 1024
        timeout = (timeout_ms if timeout_ms > 0 else 6000) / 1000.0
        if a[2] in self.pbx.cfg.missing_prompts:
            first, _ = None, 0
        else:
            self.ch.prompts.append(a[2])
            self.pbx.notify()
            first, _ = await self._collect(self.prompt_len(a[2]), DIGITS)
        digits = ""
        if first is not None:
            if first == "#":
                return "200 result=\n"
            digits = first
        while len(digits) < maxdigits:
            d, _ = await self._collect(timeout, DIGITS)
            if d is None:
                return f"200 result={digits} (timeout)\n"
            if d == "#":
                break
            digits += d
        return f"200 result={digits}\n"

    async def cmd_wait_for_digit(self, a: list[str]) -> str:
        if len(a) < 4:
            return usage("Waits up to <replaceable>timeout</replaceable> milliseconds for channel to receive a DTMF digit.")
        ms = int(a[3])
        d, _ = await self._collect(None if ms < 0 else ms / 1000.0, DIGITS)
        return f"200 result={ord(d) if d else 0}\n"

    async def _say(self, items: list[str], escape: str) -> str:
        for it in items:
            self.ch.prompts.append(it)
            self.pbx.notify()
            d, _ = await self._collect(0.5, escape)
            if d:
                return f"200 result={ord(d)}\n"
        return "200 result=0\n"

    async def cmd_say_digits(self, a: list[str]) -> str:
        if len(a) < 3 or not a[2].isdigit():
            return usage("Say a given digit string, returning early if any of the given DTMF digits are received on the channel.")
        return await self._say([f"digits/{c}" for c in a[2]], a[3] if len(a) > 3 else "")

    async def cmd_say_number(self, a: list[str]) -> str:
        if len(a) < 3 or not a[2].lstrip("-").isdigit():
            return usage("Say a given number, returning early if any of the given DTMF digits are received on the channel.")
        return await self._say([f"number/{a[2]}"], a[3] if len(a) > 3 else "")

    async def cmd_say_alpha(self, a: list[str]) -> str:
        if len(a) < 3:
            return usage("Say a given character string, returning early if any of the given DTMF digits are received on the channel.")
        return await self._say([f"letters/{c}" for c in a[2]], a[3] if len(a) > 3 else "")

    async def cmd_say_phonetic(self, a: list[str]) -> str:
        return await self.cmd_say_alpha(a)

    async def cmd_say_datetime(self, a: list[str]) -> str:
        if len(a) < 3:
            return usage("Say a given time, returning early if any of the given DTMF digits are received on the channel.")
        return await self._say([f"datetime/{a[2]}"], a[3] if len(a) > 3 else "")

    async def cmd_set_variable(self, a: list[str]) -> str:
        if len(a) < 4:
            return usage("Sets a variable to the current channel.")
        self.pbx.setvar(self.ch, a[2], a[3])
        return "200 result=1\n"

    def lookup(self, name: str) -> str | None:
        ch = self.ch
        fn = {
            "CALLERID(num)": ch.cid_num,
            "CALLERID(name)": ch.cid_name,
            "CALLERID(all)": f'"{ch.cid_name or ""}" <{ch.cid_num or ""}>',
            "CHANNEL(language)": ch.language,
            "CHANNEL(name)": ch.name,
            "CHANNEL": ch.name,
            "UNIQUEID": ch.uniqueid,
            "LINKEDID": ch.linkedid,
            "CHANNEL(linkedid)": ch.linkedid,
            "EXTEN": ch.exten,
            "CONTEXT": ch.context,
            "CONNECTEDLINE(num)": ch.conn_num,
            "CONNECTEDLINE(name)": ch.conn_name,
        }
        if name in fn:
            return fn[name]
        if name in ch.vars:
            return ch.vars[name]
        if "__" + name in ch.vars:
            return ch.vars["__" + name]
        return self.pbx.globals.get(name)

    async def cmd_get_variable(self, a: list[str]) -> str:
        if len(a) < 3:
            return usage("Returns 0 if <replaceable>variablename</replaceable> is not set.")
        v = self.lookup(a[2])
        return "200 result=0\n" if v is None else f"200 result=1 ({v})\n"

    async def cmd_get_full_variable(self, a: list[str]) -> str:
        if len(a) < 4:
            return usage("Evaluates the given expression against the channel specified by channelname, or the current channel if channelname is not provided.")
        expr = a[3]
        out = re.sub(r"\$\{([^}]+)\}", lambda mt: self.lookup(mt.group(1)) or "", expr)
        return f"200 result=1 ({out})\n"

    async def cmd_channel_status(self, a: list[str]) -> str:
        return f"200 result={self.ch.state}\n"

    async def cmd_verbose(self, a: list[str]) -> str:
        return "200 result=1\n"

    async def cmd_noop(self, a: list[str]) -> str:
        return "200 result=0\n"

    async def cmd_set_callerid(self, a: list[str]) -> str:
        from .model import parse_callerid

        if len(a) < 3:
            return usage("Changes the callerid of the current channel.")
        num, name = parse_callerid(a[2])
        self.pbx._set_callerid(self.ch, num, name)
        return "200 result=1\n"

    async def cmd_set_music(self, a: list[str]) -> str:
        return "200 result=0\n"

    async def cmd_set_context(self, a: list[str]) -> str:
        if len(a) < 3:
            return usage("Sets the context for continuation upon exiting the application.")
        self.ch.context = a[2]
        return "200 result=0\n"

    async def cmd_set_extension(self, a: list[str]) -> str:
        if len(a) < 3:
            return usage("Changes the extension for continuation upon exiting the application.")
        self.ch.exten = a[2]
        return "200 result=0\n"

    async def cmd_set_priority(self, a: list[str]) -> str:
        if len(a) < 3:
            return usage("Changes the priority for continuation upon exiting the application.")
        return "200 result=0\n"

    async def cmd_exec(self, a: list[str]) -> str:
        if len(a) < 2:
            return usage("Executes <replaceable>application</replaceable> with given <replaceable>options</replaceable>.")
        app = a[1].lower()
        data = " ".join(a[2:])
        self.pbx.newexten(self.ch, a[1], data)
        if self.ch.hangup_ev.is_set():
            return "200 result=0\n"
        if app in ("playback", "background"):
            for f in data.split("&"):
                name = f.split(",")[0]
                if name:
                    await self.play(name, DIGITS if app == "background" else "")
            return "200 result=0\n"
        if app == "set" and "=" in data:
            k, _, v = data.partition("=")
            self.pbx.setvar(self.ch, k, v)
            return "200 result=0\n"
        if app in ("wait",):
            try:
                await self.pbx.wait_on(self.ch, float(data or 0))
            except Exception:
                return "200 result=-1\n"
            return "200 result=0\n"
        if app in ("noop", "answer", "progress", "ringing", "musiconhold", "startmusiconhold", "stopmusiconhold"):
            return "200 result=0\n"
        if app == "mixmonitor":
            from .dialplan import mixmonitor

            parts = data.split(",")
            mixmonitor(self.pbx, self.ch, parts[0], parts[1] if len(parts) > 1 else "")
            return "200 result=0\n"
        return "200 result=-2\n"

    COMMANDS: dict[tuple[str, ...], tuple[str, bool]] = {
        # words: (method, allowed on a dead channel)
        ("answer",): ("cmd_answer", False),
        ("hangup",): ("cmd_hangup", False),
        ("stream", "file"): ("cmd_stream_file", False),
        ("control", "stream", "file"): ("cmd_control_stream_file", False),
        ("get", "data"): ("cmd_get_data", False),
        ("wait", "for", "digit"): ("cmd_wait_for_digit", False),
        ("say", "digits"): ("cmd_say_digits", False),
        ("say", "number"): ("cmd_say_number", False),
        ("say", "alpha"): ("cmd_say_alpha", False),
        ("say", "phonetic"): ("cmd_say_phonetic", False),
        ("say", "datetime"): ("cmd_say_datetime", False),
        ("set", "variable"): ("cmd_set_variable", True),
        ("get", "variable"): ("cmd_get_variable", True),
        ("get", "full", "variable"): ("cmd_get_full_variable", True),
        ("channel", "status"): ("cmd_channel_status", False),
        ("verbose",): ("cmd_verbose", True),
        ("noop",): ("cmd_noop", True),
        ("exec",): ("cmd_exec", True),
        ("set", "callerid"): ("cmd_set_callerid", False),
        ("set", "music"): ("cmd_set_music", False),
        ("set", "context"): ("cmd_set_context", False),
        ("set", "extension"): ("cmd_set_extension", False),
        ("set", "priority"): ("cmd_set_priority", False),
    }

    def find(self, args: list[str]) -> tuple[str, bool] | None:
        words = [w.lower() for w in args]
        for n in (3, 2, 1):
            key = tuple(words[:n])
            if len(key) == n and key in self.COMMANDS:
                return self.COMMANDS[key]
        return None

    async def handle(self, line: str) -> str:
        args = parse_args(line)
        found = self.find(args)
        if found is None:
            return UNKNOWN
        method, dead_ok = found
        if (self.dead or self.ch.hangup_ev.is_set()) and not dead_ok:
            return DEAD
        fn: Callable[[list[str]], Awaitable[str]] = getattr(self, method)
        try:
            return await fn(args)
        except Exception as exc:  # a command interrupted by hangup/redirect
            from .pbx import HungUp, Redirected

            if isinstance(exc, (HungUp, Redirected)):
                self.dead = True
                return "200 result=-1\n"
            raise

    async def loop(self) -> None:
        while True:
            raw = await self.reader.readline()
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if not line.strip():
                continue
            self.ch.agi_commands.append(line)
            self.pbx.notify()
            self.command_id += 1
            cid = str(self.pbx.rng_agi.randrange(10**8, 2 * 10**9))
            self.busy = True
            self.pbx.emit(
                "AGIExecStart", [*self.pbx.snap(self.ch), ("CommandId", cid), ("Command", line)], noise=True
            )
            if self.ch.hangup_ev.is_set():
                self.dead = True
                self.notice_hangup()
            resp = await self.handle(line)
            code = resp.split(" ", 1)[0].split("-", 1)[0]
            result = "Success" if code == "200" else resp.split(" ", 1)[1].strip() if code in ("510", "511") else "Usage"
            rc = code
            if resp.startswith("200 result=-1"):
                rc, result = "-1", "Failure"
                self.failure = True
            self.pbx.emit(
                "AGIExecEnd",
                [
                    *self.pbx.snap(self.ch),
                    ("CommandId", cid),
                    ("Command", line),
                    ("ResultCode", rc),
                    ("Result", result),
                ],
                noise=True,
            )
            self.send(resp)
            self.busy = False
            if (self.dead or self.ch.hangup_ev.is_set()) and not self.notified:
                self.notice_hangup()
            try:
                await self.writer.drain()
            except ConnectionError:
                return


def _headers(pbx: "Pbx", ch: Channel, url: str, args: tuple[str, ...]) -> str:
    parts = urlsplit(url)
    script = parts.path.lstrip("/") + (("?" + parts.query) if parts.query else "")
    tech = ch.name.split("/", 1)[0]
    lines = [
        ("agi_network", "yes"),
        ("agi_network_script", script),
        ("agi_request", url),
        ("agi_channel", ch.name),
        ("agi_language", ch.language),
        ("agi_type", tech),
        ("agi_uniqueid", ch.uniqueid),
        ("agi_version", "20.20.1"),
        ("agi_callerid", ch.cid_num or "unknown"),
        ("agi_calleridname", ch.cid_name or "unknown"),
        ("agi_callingpres", "0"),
        ("agi_callingani2", "0"),
        ("agi_callington", "0"),
        ("agi_callingtns", "0"),
        ("agi_dnid", ch.vars.get("CALLCORE_DID", "unknown")),
        ("agi_rdnis", "unknown"),
        ("agi_context", ch.context),
        ("agi_extension", ch.exten),
        ("agi_priority", str(ch.priority)),
        ("agi_enhanced", "0.0"),
        ("agi_accountcode", ch.accountcode),
        ("agi_threadid", str(140404588803776 + pbx._seq)),
    ]
    lines += [(f"agi_arg_{i}", a) for i, a in enumerate(args, 1)]
    return "".join(f"{k}: {v}\n" for k, v in lines) + "\n"


async def run_agi(pbx: "Pbx", ch: Channel, url: str, args: tuple[str, ...]) -> str:
    """Connect to the FastAGI server, send the headers, serve commands until it closes. Returns AGISTATUS."""
    host, port = pbx.cfg.agi_host, pbx.cfg.agi_port
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        return "FAILURE"
    session = AgiSession(pbx, ch, reader, writer)
    pbx.agi_sessions.append(session)
    writer.write(_headers(pbx, ch, url, args).encode("utf-8"))
    watchers = [pbx.spawn(session.watch_hangup()), pbx.spawn(session.watch_redirect())]
    loop_task = pbx.spawn(session.loop(), f"agi {ch.name}")
    try:
        # A redirect ends the AGI app at once (the script may keep talking to a dead session).
        waits = [loop_task, asyncio.ensure_future(ch.redirect_ev.wait())]
        done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for w in waits:
            if w is not loop_task and not w.done():
                w.cancel()
        if ch.redirect_ev.is_set() and loop_task not in done:
            # keep answering the script (as dead) in the background until it closes
            pbx.spawn(_close_after(loop_task, writer), f"agi-tail {ch.name}")
            from .pbx import Redirected

            raise Redirected(ch.redirect_to)  # type: ignore[arg-type]
    finally:
        for w in watchers:
            w.cancel()
    writer.close()
    try:
        await writer.wait_closed()
    except ConnectionError:
        pass
    if ch.hangup_ev.is_set():
        return "HANGUP"
    return "FAILURE" if session.failure else "SUCCESS"


async def _close_after(task: asyncio.Task, writer: asyncio.StreamWriter) -> None:
    try:
        await task
    finally:
        writer.close()
