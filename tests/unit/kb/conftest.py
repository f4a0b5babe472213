"""Fixtures of the knowledge-base tests: one Kiwi analyser per test session (its model takes
about a second to load), a service on the backend under test with the shipped sample loaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from kb.analysis import Analyzer
from kb.permissions import SYSTEM, actor_of_role
from kb.repository import KbRepository
from kb.rules import load_rules
from kb.service import KbService
from recording.storage import MemoryStorage

ROOT = Path(__file__).resolve().parents[3]
SAMPLE = ROOT / "kb" / "sample"
RULES = ROOT / "dialplans" / "kb" / "rules.yaml"

AGENT = actor_of_role("1001", "agent")
OTHER_AGENT = actor_of_role("1002", "agent")
REVIEWER = actor_of_role("sup1", "supervisor")


@pytest.fixture(scope="session")
def analyzer() -> Analyzer:
    return Analyzer()


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock(1_798_000_000.0)  # 2026-12-23


@pytest.fixture
async def kb(db_sessionmaker, analyzer, clock) -> KbService:
    rules, problems = load_rules(RULES)
    assert rules is not None, problems
    service = KbService(KbRepository(db_sessionmaker), analyzer, store=MemoryStorage(), rules=rules, clock=clock)
    await service.start()
    yield service
    await service.stop()


@pytest.fixture
async def sample_kb(kb: KbService) -> KbService:
    report = await kb.import_dir(SAMPLE, SYSTEM)
    assert report.errors == []
    return kb
