"""Test double for the AGI command port: answers commands from a script of raw response lines.

``ScriptedSession`` has the same ``send`` contract as the FastAGI
:class:`~ivr.agi.server.AgiSession` (same formatting, same parser, same typed
errors), without a socket. Wrap it in :class:`~ivr.agi.channel.AgiChannel`
to test code that drives a ``Channel`` against exact AGI responses::

    session = ScriptedSession(["200 result=0\\n", "HANGUP\\n", "511 Command Not Permitted...\\n"])
    channel = AgiChannel(session)
    await channel.answer()
    with pytest.raises(ChannelHungUp):
        await channel.play("hello")
    assert session.sent == ["ANSWER\\n", 'STREAM FILE "hello" ""\\n']
"""

from __future__ import annotations

from collections import deque
from typing import Any, Iterable, Mapping

from ivr.agi.protocol import (
    AgiConnectionClosed,
    AgiResult,
    ResponseParser,
    call_info_from_headers,
    check_result,
    format_command,
)
from ivr.channel import CallInfo

DEFAULT_HEADERS = {
    "agi_network_script": "ivr",
    "agi_uniqueid": "1700000000.1",
    "agi_channel": "SIP/test-00000001",
    "agi_callerid": "01012345678",
    "agi_calleridname": "Test Caller",
    "agi_dnid": "1600",
    "agi_language": "en",
}


class ScriptedSession:
    def __init__(self, responses: Iterable[str], headers: Mapping[str, str] | None = None) -> None:
        self.headers = dict(DEFAULT_HEADERS if headers is None else headers)
        self.info: CallInfo = call_info_from_headers(self.headers)
        self.sent: list[str] = []
        self.command_timeout: float | None = None
        self._lines: deque[str] = deque(line if line.endswith("\n") else line + "\n" for line in responses)
        self._parser = ResponseParser()
        self._hung_up = False

    @property
    def hung_up(self) -> bool:
        return self._hung_up or self._parser.hung_up

    @property
    def remaining(self) -> list[str]:
        return list(self._lines)

    async def send(self, name: str, *args: Any, timeout: float | None = None) -> AgiResult:
        line = format_command(name, *args)
        self.sent.append(line)
        while self._lines:
            result = self._parser.feed(self._lines.popleft())
            if result is not None:
                if result.code == 511 or (name.upper() == "HANGUP" and result.ok and result.result == "1"):
                    self._hung_up = True
                return check_result(result, line.rstrip("\n"))
        self._hung_up = True
        raise AgiConnectionClosed(f"script exhausted at {line.rstrip()!r}", command=line.rstrip("\n"))
