"""Issue 20 rough edge: `callcore dialplan try` without a fixture used to say "settings.crm_url is
empty" while the server looks callers up in its built-in customer table: `try` now does the same."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ivr.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[3]
ARGS = ["dialplan", "try", "main", "--dir", str(ROOT / "dialplans"), "--caller", "01012345678",
        "--digits", "t,t,1,2", "--at", "2026-12-22T10:00+09:00"]


def test_try_uses_the_servers_builtin_customer_table(tmp_path, monkeypatch, capsys):
    from callcore import migrate
    from callcore.db import create_engine, session_factory
    from cti.repository import CtiRepository

    url = f"sqlite+aiosqlite:///{tmp_path / 'callcore.db'}"
    migrate.upgrade(url)

    async def add_customer() -> None:
        engine = create_engine(url)
        try:
            await CtiRepository(session_factory(engine)).create_customer(
                name="홍길동", phone="01012345678", attributes={"tier": "gold"})
        finally:
            await engine.dispose()

    asyncio.run(add_customer())
    monkeypatch.setenv("CALLCORE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("CALLCORE_DATABASE_URL", raising=False)
    monkeypatch.delenv("CALLCORE_CRM_URL", raising=False)
    assert cli_main(ARGS) == 0
    out = capsys.readouterr().out
    assert "lookups: the built-in customer table of sqlite+aiosqlite:///" in out
    assert "crm_url is empty" not in out
    assert '"customer": "홍길동"' in out and '"tier": "gold"' in out  # the screen pop data from the table


def test_try_without_a_database_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CALLCORE_DATA_DIR", str(tmp_path / "nothing-here"))
    monkeypatch.delenv("CALLCORE_DATABASE_URL", raising=False)
    monkeypatch.delenv("CALLCORE_CRM_URL", raising=False)
    assert cli_main(ARGS) == 0
    out = capsys.readouterr().out
    assert f"lookups: no database at {tmp_path / 'nothing-here' / 'callcore.db'} yet" in out
    assert not (tmp_path / "nothing-here").exists()  # `try` creates nothing
