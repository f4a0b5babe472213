"""Fixtures for the CTI tests: a CtiService on the test database with a FakeAmi,
a controllable clock, a real Bus and an HTTP client on the CTI routers."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from callcore.bus import Bus
from api.auth import Authenticator
from cti.crm import BuiltinCrm
from cti.repository import CtiRepository
from cti.routes import routers
from cti.service import CtiService
from cti.testing import FakeAmi, FakeIvrContext

KEY = "test-key"


class Clock:
    def __init__(self, now: float = 1_795_395_800.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ami() -> FakeAmi:
    return FakeAmi()


@pytest.fixture
def bus() -> Bus:
    return Bus()


@pytest.fixture
def ivr_ctx() -> FakeIvrContext:
    return FakeIvrContext()


@pytest.fixture
def repo(db_sessionmaker) -> CtiRepository:
    return CtiRepository(db_sessionmaker)


@pytest.fixture
def authenticator(clock: Clock) -> Authenticator:
    return Authenticator(KEY, {"static-admin": "admin", "static-sup": "supervisor", "static-1001": "agent:1001"}, clock=clock)


@pytest.fixture
async def service(ami, repo, bus, ivr_ctx, clock, authenticator) -> Any:
    svc = CtiService(
        ami=ami,
        repository=repo,
        bus=bus,
        crm=BuiltinCrm(repo),
        authenticator=authenticator,
        ivr_context=ivr_ctx,
        clock=clock,
        default_wrapup_seconds=10,
        stats_interval=0.05,
        tick_interval=0.01,
    )
    await svc.start()
    try:
        yield svc
    finally:
        await svc.stop()


@pytest.fixture
def app(service) -> FastAPI:
    app = FastAPI()
    for r in routers():
        app.include_router(r)
    app.state.cti = service
    return app


@pytest.fixture
async def client(app) -> Any:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
        yield c


def token(service: CtiService, subject: str, role: str = "agent") -> dict[str, str]:
    return {"Authorization": f"Bearer {service.authenticator.issue(subject, role)}"}


async def add_agents(service: CtiService) -> None:
    """The agents of the captures: 1001 (agents/n, sales+support), 1002 (support), 1003 (sales)."""
    await service.agents.create_agent(
        id="1001", name="Agent 1001", interface="Local/1001@agents/n", extension="1001",
        skills={"sales": 0, "support": 1}, pin="4321",
    )
    await service.agents.create_agent(
        id="1002", name="Agent 1002", interface="Local/1002@agents/n", extension="1002", skills={"support": 0}, pin="1111"
    )
    await service.agents.create_agent(
        id="1003", name="Agent 1003", interface="Local/1003@agents-noanswer/n", extension="1003", skills={"sales": 0}
    )
    await service.agents.create_agent(
        id="sup1", name="Supervisor", interface="Local/2001@supervisors/n", role="supervisor", skills={}, pin="9999"
    )
