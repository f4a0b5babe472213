"""End-to-end harness: the whole callcore server (the real composition root, real
sockets) against the PBX emulator, with HTTP and websocket clients.

The database is the backend under test (SQLite by default; a fresh PostgreSQL
database, migrated with Alembic, when ``CALLCORE_TEST_DATABASE_URL`` is set).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import httpx
import pytest
import websockets

from callcore.app import Container
from callcore.settings import Settings
from tests.pbxsim import Pbx, PbxConfig

ROOT = Path(__file__).resolve().parents[2]
KST = timezone(timedelta(hours=9))
#: a Tuesday, 10:00 in Seoul: the customer center is open
OPEN_HOURS = datetime(2026, 12, 22, 10, 0, tzinfo=KST)
ADMIN_TOKEN = "e2e-admin-token"


async def eventually(predicate: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy, with a deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)


def heard(call) -> list[str]:
    """The prompts the caller heard, as sound names (the IVR streams absolute paths)."""
    return [p.rsplit("/", 1)[-1] for p in call.one.prompts]


async def press_when_listening(call, digits: str, timeout: float = 5.0) -> None:
    """Press while the IVR is reading digits. Like a real Asterisk, the emulator drops DTMF
    that arrives between AGI commands; a test that presses blindly is racy."""

    def listening() -> bool:
        cmds = call.agi_commands
        return bool(cmds) and cmds[-1].startswith(("GET DATA", "WAIT FOR DIGIT"))

    await eventually(listening, timeout, "the IVR listening for digits")
    await call.press(digits)


async def expect_prompt(call, name: str, timeout: float = 5.0) -> None:
    await eventually(lambda: name in heard(call), timeout, f"prompt {name!r} (heard {heard(call)})")


@dataclass
class Desk:
    """An agent's (or supervisor's) websocket session."""

    ws: Any
    messages: list[dict[str, Any]] = field(default_factory=list)
    task: asyncio.Task | None = None

    async def _pump(self) -> None:
        async for raw in self.ws:
            self.messages.append(json.loads(raw))

    def named(self, event: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["event"] == event]

    async def wait_for(self, event: str, timeout: float = 5.0, **match: Any) -> dict[str, Any]:
        def find():
            for m in self.named(event):
                if all(m["payload"].get(k) == v for k, v in match.items()):
                    return m
            return None

        return await eventually(find, timeout, f"websocket {event} {match} (got {[m['event'] for m in self.messages]})")

    async def send(self, data: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(data))

    async def close(self) -> None:
        await self.ws.close()
        if self.task is not None:
            await asyncio.wait([self.task], timeout=2)


@dataclass
class Stack:
    container: Container
    pbx: Pbx
    http: httpx.AsyncClient
    base_url: str
    desks: list[Desk] = field(default_factory=list)

    @property
    def cti(self):
        return self.container.cti

    async def api(self, method: str, path: str, token: str = ADMIN_TOKEN, expect: int | None = None, **kw) -> Any:
        r = await self.http.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kw)
        if expect is not None:
            assert r.status_code == expect, f"{method} {path} → {r.status_code}: {r.text}"
        return r.json() if r.content else None

    async def token_for(self, agent_id: str, pin: str) -> str:
        body = await self.api("POST", "/api/auth/login", json={"agent_id": agent_id, "pin": pin}, expect=200)
        return body["token"]

    async def desk(self, token: str) -> Desk:
        ws = await websockets.connect(f"{self.base_url.replace('http', 'ws')}/ws?token={token}")
        desk = Desk(ws)
        desk.task = asyncio.get_running_loop().create_task(desk._pump())
        self.desks.append(desk)
        await desk.wait_for("hello")
        return desk

    async def create_agent(
        self, agent_id: str, name: str, skills: list[str], pin: str = "4321", role: str = "agent", interface: str | None = None
    ) -> str:
        await self.api(
            "POST",
            "/api/agents",
            json={
                "id": agent_id,
                "name": name,
                "interface": interface or f"Local/{agent_id}@agents/n",
                "extension": agent_id,
                "role": role,
                "skills": [{"queue": q, "penalty": 0} for q in skills],
                "pin": pin,
            },
            expect=201,
        )
        return await self.token_for(agent_id, pin)


@pytest.fixture
def server_overrides() -> dict[str, Any]:
    """Settings overrides for the ``server`` fixture; a test module redefines this fixture
    to change them (e.g. a private copy of the dialplans to edit during a call)."""
    return {}


@pytest.fixture
def pbx_overrides() -> dict[str, Any]:
    """PbxConfig overrides for the ``server`` fixture (e.g. a slower ``time_scale``)."""
    return {}


@pytest.fixture
async def server(tmp_path, migrated_database_url, server_overrides, pbx_overrides):
    """The whole stack. Yields a :class:`Stack`; the emulator runs at 1/50 time scale. The
    database is a copy of one migrated to head (tests/conftest.py ``migrated_database_url``):
    PostgreSQL is migrated explicitly in production (`callcore db upgrade`), SQLite upgrades
    itself at start-up (a no-op here)."""
    url = migrated_database_url
    config = {"agi_port": 1, "time_scale": 0.02, "monitor_dir": tmp_path / "monitor", **pbx_overrides}
    pbx = Pbx(PbxConfig(**config))
    await pbx.start()
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=url,
        http_port=0,
        agi_port=0,
        ami_port=pbx.ami_port,
        ami_reconnect_min=0.05,
        ami_reconnect_max=0.5,
        dialplans_dir=ROOT / "dialplans",
        dialplan_watch=False,
        api_tokens={ADMIN_TOKEN: "admin"},
        default_wrapup_seconds=1,
    )
    settings = settings.model_copy(update=server_overrides)
    container = Container(settings, clock=lambda: OPEN_HOURS)
    await container.start()
    pbx.cfg.agi_port = container.agi.port  # the emulator's FastAGI client dials callcore
    base_url = f"http://127.0.0.1:{container.http_port}"
    http = httpx.AsyncClient(base_url=base_url, timeout=10)
    stack = Stack(container, pbx, http, base_url)
    try:
        await eventually(lambda: container.ami.state == "connected", 10, "AMI login + resync")
        yield stack
    finally:
        for desk in stack.desks:
            await desk.close()
        await http.aclose()
        await container.stop()
        await pbx.close()
    assert pbx.errors == [], f"emulator errors: {pbx.errors}"
