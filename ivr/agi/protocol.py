"""The AGI wire protocol: command formatting, response parsing, typed errors.

Shared by the FastAGI server (``ivr.agi.server``) and classic stdin AGI
(``ivr.agi.classic``). Pure: no sockets, no event loop.

Responses look like::

    200 result=1 (0212345678)          GET VARIABLE: value in parentheses
    200 result=49 endpos=2400          STREAM FILE: ASCII code of the escape digit ('1')
    200 result= (timeout)              GET DATA timed out without digits
    200 result=-1 endpos=0             STREAM FILE: missing sound (or hangup)
    100 result=0 Trying...             provisional, the real answer follows
    510 Invalid or unknown command
    511 Command Not Permitted on a dead channel or intercept routine
    520-Invalid command syntax.  Proper usage follows:
    ...usage text...
    520 End of proper usage.

and, unsolicited, ``HANGUP`` on its own line when the channel hangs up. That
line is a *notice*, not the answer to the command in flight: the answer
follows on the next line (see tests/fixtures/asterisk-captures/agi-caller-hangup.jsonl).
panoramisk 1.4's ``utils.parse_agi_result('HANGUP')`` returns the notice as
the command's result, so every later command reads the previous command's
answer (off by one); pyst2 0.5.1 crashes on it (``int('')``). We parse with
:class:`ResponseParser` instead, which consumes notices separately.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, Mapping
from urllib.parse import parse_qsl

from ivr.channel import CallInfo, ChannelError, ChannelHungUp

__all__ = [
    "AgiResult",
    "AgiError",
    "AgiHangup",
    "AgiConnectionClosed",
    "AgiInvalidCommand",
    "AgiUsageError",
    "AgiProtocolError",
    "AgiTimeout",
    "ChannelHungUp",
    "ResponseParser",
    "parse_response_line",
    "check_result",
    "format_command",
    "validate_digits",
    "call_info_from_headers",
    "parse_script",
]

DIGITS_RE = re.compile(r"[0-9*#]*")
_COMMAND_NAME_RE = re.compile(r"[A-Za-z][A-Za-z ]*[A-Za-z]|[A-Za-z]")
_STATUS_RE = re.compile(r"(?P<code>\d{3})(?P<sep>[ -]|$)(?P<rest>.*)")
_RESULT_RE = re.compile(r"result=(?P<result>\S*)(?P<rest>.*)")
_KV_TAIL_RE = re.compile(r"(?:\s+\w+=\S*)*")
_DATA_RE = re.compile(r"\((?P<data>.*)\)(?P<kv>(?:\s+\w+=\S*)*)")
_KV_RE = re.compile(r"(\w+)=(\S*)")


# ------------------------------------------------------------------ results
@dataclass(frozen=True, slots=True)
class AgiResult:
    """One parsed AGI response."""

    code: int
    result: str = ""
    #: text in parentheses: ``(timeout)`` → "timeout", ``(0212345678)`` → "0212345678"
    data: str | None = None
    endpos: int | None = None
    #: other ``key=value`` pairs, and ``message`` for non-200 lines / usage text
    extra: dict[str, str] = field(default_factory=dict)
    #: the status line as received (without the newline)
    raw: str = ""
    #: True when a ``HANGUP`` notice arrived just before this response
    hangup_notice: bool = False

    @property
    def ok(self) -> bool:
        return self.code == 200

    @property
    def int_result(self) -> int:
        """``result`` as an int; AgiProtocolError if it is not one."""
        try:
            return int(self.result)
        except ValueError:
            raise AgiProtocolError(f"non-numeric result {self.result!r} in {self.raw!r}") from None

    @property
    def digit(self) -> str:
        """The DTMF digit encoded as an ASCII code (``result=49`` → "1"); "" for 0 or negative."""
        code = self.int_result
        if code <= 0:
            return ""
        char = chr(code) if code < 0x110000 else ""
        if len(char) != 1 or not DIGITS_RE.fullmatch(char):
            raise AgiProtocolError(f"result {code} is not a DTMF digit in {self.raw!r}")
        return char

    @property
    def timed_out(self) -> bool:
        return self.data == "timeout"

    @property
    def message(self) -> str:
        return self.extra.get("message", "")


# ------------------------------------------------------------------- errors
class AgiError(ChannelError):
    """Asterisk refused or failed an AGI command."""

    def __init__(self, message: str, *, command: str | None = None, result: AgiResult | None = None) -> None:
        super().__init__(message)
        self.command = command
        self.result = result


class AgiHangup(ChannelHungUp, AgiError):
    """511 (not permitted on a dead channel) or another sign that the caller is gone.

    Catch it as :class:`ivr.channel.ChannelHungUp`."""


class AgiConnectionClosed(AgiHangup):
    """Asterisk closed the AGI connection (or stdin): the call is over for us."""


class AgiInvalidCommand(AgiError):
    """510 Invalid or unknown command."""


class AgiUsageError(AgiError):
    """520 usage error; ``usage`` holds the multi-line usage text Asterisk sent."""

    def __init__(self, message: str, *, usage: str, command: str | None = None, result: AgiResult | None = None) -> None:
        super().__init__(message, command=command, result=result)
        self.usage = usage


class AgiProtocolError(AgiError):
    """Something that is not AGI arrived (garbage, overlong line, unexpected response)."""


class AgiTimeout(AgiError):
    """No answer within the command timeout. The session cannot be trusted afterwards."""


# ------------------------------------------------------------------ parsing
def parse_response_line(line: str) -> AgiResult:
    """Parse one complete status line (not ``HANGUP``, not a ``520-`` block)."""
    line = line.rstrip("\r\n")
    cached = _COMMON_RESULTS.get(line)
    if cached is not None:
        return cached
    if line.startswith("200 result="):
        # fast path for the answers of nearly every command: ``200 result=N`` and
        # ``200 result=N endpos=M`` (N an optional minus and digits); anything else takes the regexes
        rest = line[11:]
        result, sep, tail = rest.partition(" endpos=")
        if _is_int(result) and (not sep or tail.isdigit() and tail.isascii()):
            parsed = AgiResult(code=200, result=result, endpos=int(tail) if sep else None, raw=line)
            if not sep and len(_COMMON_RESULTS) < _COMMON_RESULTS_MAX:
                _COMMON_RESULTS[line] = parsed
            return parsed
    return _parse_response_regex(line)


#: ``200 result=N`` (no endpos: those vary with every playback) → its parsed, immutable result.
#: A frozen dataclass costs more to build than the rest of an answer's handling; the handful of
#: results Asterisk gives (0, 1, -1, 48..57 for digits, ...) are built once. ``extra`` of a fast-path
#: result is empty and must not be mutated (nothing does; ``replace`` makes a copy).
_COMMON_RESULTS: dict[str, AgiResult] = {}
_COMMON_RESULTS_MAX = 512


def _parse_response_regex(line: str) -> AgiResult:
    """The general parser (every line :func:`parse_response_line` accepts; the fast path
    must give the same result for the lines it takes)."""
    line = line.rstrip("\r\n")
    m = _STATUS_RE.fullmatch(line)
    if m is None:
        raise AgiProtocolError(f"not an AGI response: {line[:200]!r}")
    code = int(m["code"])
    rest = m["rest"]
    if code not in (100, 200):
        return AgiResult(code=code, extra={"message": rest.strip()}, raw=line)
    rm = _RESULT_RE.fullmatch(rest.strip())
    if rm is None:
        raise AgiProtocolError(f"AGI {code} response without result=: {line[:200]!r}")
    result = rm["result"]
    tail = rm["rest"].strip()
    data: str | None = None
    kv_text = ""
    extra: dict[str, str] = {}
    if tail.startswith("("):
        dm = _DATA_RE.fullmatch(tail)  # greedy: a value may itself contain ")"
        if dm is None:
            raise AgiProtocolError(f"unbalanced parentheses in AGI response: {line[:200]!r}")
        data, kv_text = dm["data"], dm["kv"]
    elif tail:
        if _KV_TAIL_RE.fullmatch(" " + tail):
            kv_text = tail
        else:  # "100 result=0 Trying..." and similar free text
            extra["message"] = tail
    for key, value in _KV_RE.findall(kv_text):
        extra[key] = value
    endpos: int | None = None
    if "endpos" in extra:
        try:
            endpos = int(extra.pop("endpos"))
        except ValueError:
            raise AgiProtocolError(f"bad endpos in {line[:200]!r}") from None
    return AgiResult(code=code, result=result, data=data, endpos=endpos, extra=extra, raw=line)


def _is_int(text: str) -> bool:
    """``0``, ``49``, ``-1``: ASCII digits with an optional leading minus."""
    digits = text[1:] if text.startswith("-") else text
    return digits.isdigit() and digits.isascii()


class ResponseParser:
    """Turns response lines into :class:`AgiResult`, one per command.

    ``feed(line)`` returns a result when a response is complete, else None
    (``HANGUP`` notice, provisional ``100``, inside a ``520-`` block).
    ``hung_up`` becomes True at the first ``HANGUP`` notice and stays True.
    """

    MAX_USAGE_LINES = 200

    def __init__(self) -> None:
        self.hung_up = False
        self._notice_pending = False
        self._usage: list[str] | None = None

    @property
    def in_usage_block(self) -> bool:
        return self._usage is not None

    def feed(self, line: str) -> AgiResult | None:
        line = line.rstrip("\r\n")
        if self._usage is not None:
            if line.startswith("520 "):
                usage_lines, self._usage = self._usage, None
                first = usage_lines[0][4:]
                return self._deliver(
                    AgiResult(
                        code=520,
                        extra={"message": first.strip(), "usage": "\n".join(usage_lines[1:])},
                        raw=usage_lines[0],
                    )
                )
            self._usage.append(line)
            if len(self._usage) > self.MAX_USAGE_LINES:
                self._usage = None
                raise AgiProtocolError("520 usage block without end")
            return None
        if line == "HANGUP":
            self.hung_up = True
            self._notice_pending = True
            return None
        if line.startswith("520-"):
            self._usage = [line]
            return None
        result = parse_response_line(line)
        if result.code == 100:
            return None
        return self._deliver(result)

    def _deliver(self, result: AgiResult) -> AgiResult:
        if self._notice_pending:
            self._notice_pending = False
            result = replace(result, hangup_notice=True)
        return result


def check_result(result: AgiResult, command: str) -> AgiResult:
    """Return a 200 result; raise the typed error for anything else."""
    if result.code == 200:
        return result
    name = command.split(" ", 1)[0] if command else command
    if result.code == 511:
        raise AgiHangup(f"{command!r}: {result.message or 'dead channel'}", command=command, result=result)
    if result.code == 510:
        raise AgiInvalidCommand(f"{command!r}: {result.message}", command=command, result=result)
    if result.code == 520:
        raise AgiUsageError(
            f"{command!r}: usage error", usage=result.extra.get("usage", ""), command=command, result=result
        )
    raise AgiError(f"{name}: unexpected AGI code {result.code}: {result.raw!r}", command=command, result=result)


# --------------------------------------------------------------- formatting
def _check_arg(value: str) -> str:
    if "\r" in value or "\n" in value or "\0" in value:
        # a newline would end this command and start a second one
        raise ValueError(f"AGI argument may not contain CR, LF or NUL: {value[:80]!r}")
    return value


def quote(value: Any) -> str:
    """One AGI argument: double-quoted, ``"`` and ``\\`` backslash-escaped (res_agi parse_args)."""
    if value.__class__ is str:
        text = value
    elif isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TypeError(f"AGI arguments are str or int, not {type(value).__name__}")
    else:
        text = str(value)
    if "\n" in text or "\r" in text or "\0" in text:
        _check_arg(text)  # raises
    if '"' in text or "\\" in text:
        text = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + text + '"'


def format_command(name: str, *args: Any) -> str:
    """``format_command("SET VARIABLE", "X", 'a "b"')`` → ``SET VARIABLE "X" "a \\"b\\""`` + newline.

    Every argument is quoted; CR, LF and NUL are refused with ValueError."""
    upper = _COMMAND_NAMES.get(name)
    if upper is None:
        if not _COMMAND_NAME_RE.fullmatch(name):
            raise ValueError(f"not an AGI command name: {name[:80]!r}")
        upper = name.upper()
        if len(_COMMAND_NAMES) < 256:  # the names are the literals of the callers: a handful
            _COMMAND_NAMES[name] = upper
    if not args:
        return upper + "\n"
    return upper + " " + " ".join([quote(a) for a in args]) + "\n"


#: command name as written by a caller → validated, upper-cased (saves a regex per command)
_COMMAND_NAMES: dict[str, str] = {}


def validate_digits(digits: str, what: str = "digits") -> str:
    """Digits / escape-digit strings: only 0-9, * and #."""
    if not isinstance(digits, str) or not DIGITS_RE.fullmatch(digits):
        raise ValueError(f"{what} must contain only 0-9, * and #: {digits!r}")
    return digits


# ------------------------------------------------------------------ headers
def parse_script(script: str) -> tuple[str, dict[str, str]]:
    """``ivr?flow=main&lang=ko`` → ("ivr", {"flow": "main", "lang": "ko"}) (a new dict each call)."""
    cached = _SCRIPTS.get(script)
    if cached is None:
        path, _, query = script.partition("?")
        params = dict(parse_qsl(query, keep_blank_values=True)) if query else {}
        cached = (path.strip("/"), params)
        if len(_SCRIPTS) < 256:  # a dialplan has a handful of AGI(agi://…) lines
            _SCRIPTS[script] = cached
    return cached[0], dict(cached[1])


_SCRIPTS: dict[str, tuple[str, dict[str, str]]] = {}


def _known(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return None if value in ("", "unknown") else value


def call_info_from_headers(headers: Mapping[str, str]) -> CallInfo:
    """Build :class:`CallInfo` from ``agi_*`` headers (FastAGI or classic)."""
    script = headers.get("agi_network_script")
    if script is None:
        request = headers.get("agi_request", "")
        script = request.split("?", 1)[1] if "?" in request else ""
        script = "?" + script if script else ""
    _, params = parse_script(script)
    args: list[str] = []
    if "agi_arg_1" in headers:
        n = 1
        while f"agi_arg_{n}" in headers:
            args.append(headers[f"agi_arg_{n}"])
            n += 1
    dialed = _known(headers.get("agi_dnid")) or _known(headers.get("agi_extension"))
    return CallInfo(
        uniqueid=headers.get("agi_uniqueid", ""),
        channel=headers.get("agi_channel", ""),
        caller_num=_known(headers.get("agi_callerid")),
        caller_name=_known(headers.get("agi_calleridname")),
        dialed=dialed,
        language=_known(headers.get("agi_language")) or "en",
        linkedid=_known(headers.get("agi_linkedid")),
        params=params,
        args=tuple(args),
    )
