"""The assembled app (real composition root, HTTP part only, no AMI) for the security tests."""

from __future__ import annotations


import httpx
import pytest

from api.app import create_app
from callcore.app import Container
from callcore.settings import Settings


@pytest.fixture
async def stack(tmp_path, migrated_database_url):
    (tmp_path / "plans").mkdir()
    settings = Settings(
        data_dir=tmp_path / "data", database_url=migrated_database_url, only=["http"], http_port=0,
        dialplans_dir=tmp_path / "plans", dialplan_watch=False, dev_mode=True,
        login_max_failures_account=3, login_max_failures_address=6, login_lockout_seconds=60,
    )
    c = Container(settings)
    await c.start()
    app = create_app(c)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
    try:
        yield c, app, client
    finally:
        await client.aclose()
        await c.stop()


def bearer(c, role: str, subject: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {c.authenticator.issue(subject or ('1001' if role == 'agent' else f'user:t-{role}'), role)}"}
