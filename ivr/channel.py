"""The ``Channel`` port: everything the IVR engine may do to a call.

The engine (``ivr.engine``) only ever talks to this protocol. Three adapters
implement it: FastAGI (``ivr.agi.channel``), classic stdin AGI via pyst2
(``ivr.agi.classic``) and the console/simulator (``ivr.console``), so a flow
behaves the same on a phone, in a test and in ``callcore dialplan try``.

Every method may raise :class:`ChannelHungUp` once the caller is gone; the
engine then stops walking the flow and records where the caller dropped out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence, runtime_checkable


class ChannelError(Exception):
    """The telephony side refused or failed a command."""


class ChannelHungUp(ChannelError):
    """The caller hung up; nothing more can be played or collected."""


@dataclass(frozen=True, slots=True)
class CallInfo:
    """What is known about a call when the IVR starts (from agi_* headers or the console)."""

    uniqueid: str
    channel: str
    caller_num: str | None
    caller_name: str | None
    dialed: str | None  # agi_dnid / agi_extension
    language: str = "en"
    linkedid: str | None = None
    #: request parameters, e.g. {"flow": "main", "lang": "ko"} from ``ivr?flow=main&lang=ko``
    params: dict[str, str] = field(default_factory=dict)
    #: positional AGI arguments (agi_arg_1..N)
    args: tuple[str, ...] = ()


@runtime_checkable
class Channel(Protocol):
    """Port used by the IVR engine. Digits are returned as strings ("" when nothing was pressed)."""

    info: CallInfo

    async def answer(self) -> None: ...

    async def play(self, prompt: str, escape_digits: str = "") -> str:
        """Play one sound (name without extension). Returns the escape digit pressed, or ""."""

    async def collect(self, prompt: str | None, timeout: float, max_digits: int, terminator: str = "#") -> str:
        """Play ``prompt`` (may be None for silence) then read up to ``max_digits`` digits.

        Returns the digits without the terminator; "" on timeout (GET DATA semantics)."""

    async def wait_digit(self, timeout: float) -> str:
        """Wait for one DTMF digit; "" on timeout."""

    async def say_digits(self, digits: str, escape_digits: str = "") -> str: ...

    async def say_number(self, number: int, escape_digits: str = "") -> str: ...

    async def say_date(self, epoch_seconds: int, escape_digits: str = "") -> str: ...

    async def set_variable(self, name: str, value: str) -> None: ...

    async def get_variable(self, name: str) -> str | None: ...

    async def exec(self, application: str, *args: str) -> str:
        """Run a dialplan application (e.g. VoiceMail, Queue). Returns its raw result."""

    async def hangup(self) -> None: ...


#: Sequence alias kept for adapters that play several prompts in a row.
Prompts = Sequence[str]
