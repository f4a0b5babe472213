"""Test doubles for the CTI ports, shipped next to them (see GUIDE §2.8).

* :class:`FakeAmi` implements :class:`cti.service.AmiPort`: it records every
  action sent and answers from a script (per action name: a response, an
  exception to raise, or a callable building either).
* :func:`read_frames` / :func:`capture_events` split a raw AMI capture into
  header dicts / typed events, so tests replay real Asterisk streams.
* :func:`list_events` returns the events answering one list action
  (by ``ActionID``), e.g. the ``resync-*`` snapshot of ``ami-resync-snapshot.raw``.
* :class:`FakeIvrContext`, :class:`FakeCrm` stand in for the IVR context
  source and the CRM.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Callable, Iterable, Union

from cti.ami.actions import Action, AmiResponse
from cti.ami.events import AmiEvent, translate

Scripted = Union[AmiResponse, BaseException, Callable[[Action], Union[AmiResponse, BaseException]]]


def read_frames(path: str | Path) -> list[dict[str, str]]:
    """Every frame of a raw AMI capture as a header dict (banner line dropped)."""
    data = Path(path).read_bytes().decode("utf-8")
    frames: list[dict[str, str]] = []
    for raw in data.split("\r\n\r\n"):
        headers: dict[str, str] = {}
        for line in raw.split("\r\n"):
            if line.startswith("Asterisk Call Manager/"):
                continue
            key, sep, value = line.partition(": ")
            if not sep:
                key, sep, value = line.partition(":")
            if sep:
                headers[key] = value
        if headers:
            frames.append(headers)
    return frames


def capture_events(path: str | Path, *, include_list_events: bool = False) -> list[AmiEvent]:
    """The typed events of a capture, in order. List-action answers (frames with an
    ``ActionID``) are left out unless ``include_list_events``: a live client hands
    those to the action's caller, not to ``on_event``."""
    out: list[AmiEvent] = []
    for frame in read_frames(path):
        if "Event" not in frame:
            continue
        if "ActionID" in frame and not include_list_events and frame["Event"] != "OriginateResponse":
            continue
        event = translate(frame)
        if event is not None:
            out.append(event)
    return out


def list_events(path: str | Path, action_id: str) -> list[AmiEvent]:
    """Typed events answering the list action with ``action_id``."""
    out: list[AmiEvent] = []
    for frame in read_frames(path):
        if frame.get("ActionID") == action_id and "Event" in frame:
            event = translate(frame)
            if event is not None:
                out.append(event)
    return out


def ok(action: str = "", message: str = "Success", events: list[Any] | None = None, **headers: str) -> AmiResponse:
    return AmiResponse(action, True, message, {"Response": "Success", "Message": message, **headers}, list(events or []))


class FakeAmi:
    """Records actions; answers each with the next scripted reply for its name
    (``script(name, reply, ...)``), or a plain success."""

    def __init__(self) -> None:
        self.sent: list[Action] = []
        self._script: dict[str, list[Scripted]] = {}
        self._default: dict[str, Scripted] = {}
        self.down: BaseException | None = None

    def script(self, name: str, *replies: Scripted) -> "FakeAmi":
        """Queue one-shot replies for ``name`` (consumed in order)."""
        self._script.setdefault(name, []).extend(replies)
        return self

    def always(self, name: str, reply: Scripted) -> "FakeAmi":
        self._default[name] = reply
        return self

    async def send(self, action: Action) -> AmiResponse:
        await asyncio.sleep(0)
        if self.down is not None:
            raise self.down
        self.sent.append(action)
        queue = self._script.get(action.name)
        reply: Scripted | None = queue.pop(0) if queue else self._default.get(action.name)
        if reply is None:
            return ok(action.name)
        if callable(reply) and not isinstance(reply, (AmiResponse, BaseException)):
            reply = reply(action)
        if isinstance(reply, BaseException):
            raise reply
        return reply

    def names(self) -> list[str]:
        return [a.name for a in self.sent]

    def of(self, name: str) -> list[Action]:
        return [a for a in self.sent if a.name == name]


class FakeIvrContext:
    """``IvrContextSource`` double: a dict uniqueid -> context."""

    def __init__(self, contexts: dict[str, dict[str, Any]] | None = None) -> None:
        self.contexts = dict(contexts or {})
        self.asked: list[str] = []

    def context_for(self, uniqueid: str) -> dict[str, Any] | None:
        self.asked.append(uniqueid)
        return self.contexts.get(uniqueid)


class FakeCrm:
    """``Crm`` double: phone -> record; ``delay`` simulates a slow CRM."""

    def __init__(self, records: dict[str, dict[str, Any]] | None = None, delay: float = 0.0) -> None:
        self.records = dict(records or {})
        self.delay = delay
        self.lookups: list[str] = []

    async def lookup(self, phone: str) -> dict[str, Any] | None:
        self.lookups.append(phone)
        if self.delay:
            await asyncio.sleep(self.delay)
        return self.records.get(phone)


async def wait_for(predicate: Callable[[], Any], timeout: float = 2.0, interval: float = 0.005) -> Any:
    """Poll ``predicate`` until truthy or the deadline passes (then AssertionError)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if loop.time() >= deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


def drain(sub: Any) -> list[Any]:
    """Everything queued on a bus subscription right now."""
    out = []
    while not sub.queue.empty():
        out.append(sub.queue.get_nowait())
    return out


def replay(state: Any, events: Iterable[AmiEvent], start: float = 1_000_000.0, step: float = 0.5) -> list[Any]:
    """Apply events to a CtiState with a clock advancing ``step`` per event; returns all changes."""
    changes = []
    now = start
    for e in events:
        changes.extend(state.apply(e, now))
        now += step
    return changes
