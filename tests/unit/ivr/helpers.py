"""Shared helpers for the IVR tests: build flows from inline YAML, run them on the console."""

from __future__ import annotations

import asyncio
import textwrap
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from ivr.channel import CallInfo
from ivr.checker import check_flows
from ivr.console import ConsoleChannel
from ivr.engine import Engine, IvrOutcome
from ivr.flow import Flow, parse_flow

SEOUL = ZoneInfo("Asia/Seoul")
TUESDAY_10 = datetime(2026, 12, 22, 10, 0, tzinfo=SEOUL)


def flows(**sources: str) -> dict[str, Flow]:
    """Parse and check inline flows (sounds not checked); fails the test on any error."""
    out: dict[str, Flow] = {}
    problems = []
    for name, text in sources.items():
        flow, probs = parse_flow(textwrap.dedent(text), f"{name}.yaml", name=name)
        problems += probs
        if flow is not None:
            out[name] = flow
    problems += check_flows(out, None)
    errors = [str(p) for p in problems if p.severity == "error"]
    assert not errors, errors
    return out


def call_info(caller: str | None = "01012345678", dialed: str | None = "15880000", **params: str) -> CallInfo:
    return CallInfo(uniqueid="1700000000.1", channel="SIP/trunk-00000001", caller_num=caller, caller_name=None,
                    dialed=dialed, language="ko", params=dict(params))


async def run(
    fl: dict[str, Flow], answers: list[str], *, flow: str = "main", at: datetime = TUESDAY_10,
    caller: str | None = "01012345678", dialed: str | None = "15880000", lang: str | None = None, **engine_kw: Any,
) -> tuple[IvrOutcome, ConsoleChannel]:
    ch = ConsoleChannel(call_info(caller, dialed), answers)
    engine = Engine(fl, clock=lambda: at, **engine_kw)
    outcome = await asyncio.wait_for(engine.run(ch, flow, lang), 10)
    return outcome, ch


def heard(ch: ConsoleChannel) -> list[str]:
    """What the caller heard: sounds played and things said."""
    return [line.split(" ", 2)[-1] if line.startswith("▶") else line for line in ch.transcript
            if line.startswith(("▶", "🔢", "📅"))]
