"""Logins, throttling, browser sessions + CSRF, token revocation, API keys, the audit chain,
start-up refusals, PIN migration, hostile HTTP input (issue 11)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest
from sqlalchemy import text

from auth.checker import StartupRefused, check_startup
from callcore.settings import Settings

from .conftest import bearer

# no module-wide `db` mark: the tests on the `stack` fixture are marked by tests/conftest.py (its store);
# the CLI tests run their subprocess on its own SQLite data directory, so the PostgreSQL leg does not repeat them

PASSWORD = "correct horse battery"


async def _user(c, uid="alice", role="supervisor", **kw):
    return await c.auth.create_user(None, id=uid, password=PASSWORD, name=uid, role=role, **kw)


async def test_lockout_per_account_answers_429_with_retry_after_and_is_audited(stack):
    c, app, client = stack
    await _user(c)
    for _ in range(3):
        r = await client.post("/api/auth/token", json={"username": "alice", "password": "wrong-wrong"})
        assert r.status_code == 401
    r = await client.post("/api/auth/token", json={"username": "alice", "password": PASSWORD})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    actions = [e["action"] for e in await c.audit.query(limit=20)]
    assert actions.count("auth.login_failed") == 3 and "auth.locked" in actions and "auth.login_refused" in actions


async def test_lockout_per_client_address(stack):
    c, app, client = stack
    for n in range(6):  # six different accounts, one address
        assert (await client.post("/api/auth/token", json={"username": f"u{n}", "password": "x"})).status_code == 401
    await _user(c, "bob")
    r = await client.post("/api/auth/token", json={"username": "bob", "password": PASSWORD})
    assert r.status_code == 429 and "Retry-After" in r.headers


async def test_browser_session_cookie_and_csrf(stack):
    c, app, client = stack
    await _user(c, role="admin")
    r = await client.post("/api/auth/session", json={"username": "alice", "password": PASSWORD})
    assert r.status_code == 200
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    csrf = r.json()["csrf_token"]
    me = (await client.get("/api/auth/me")).json()
    assert me["via"] == "session" and me["csrf_token"] == csrf and "users.admin" in me["permissions"]
    body = {"id": "carol", "name": "Carol", "password": PASSWORD, "role": "qa"}
    assert (await client.post("/api/users", json=body)).status_code == 403  # no CSRF header
    assert (await client.post("/api/users", json=body, headers={"X-CSRF-Token": "forged"})).status_code == 403
    assert (await client.post("/api/users", json=body, headers={"X-CSRF-Token": csrf})).status_code == 201
    assert (await client.delete("/api/auth/session", headers={"X-CSRF-Token": csrf})).status_code == 204
    assert (await client.get("/api/auth/me")).status_code == 401


async def test_refresh_rotation_logout_revocation_and_key_rotation(stack):
    c, app, client = stack
    await _user(c)
    t = (await client.post("/api/auth/token", json={"username": "alice", "password": PASSWORD})).json()
    h = {"Authorization": f"Bearer {t['access_token']}"}
    assert (await client.get("/api/auth/me", headers=h)).json()["subject"] == "user:alice"
    new = (await client.post("/api/auth/refresh", json={"refresh_token": t["refresh_token"]})).json()
    assert (await client.post("/api/auth/refresh", json={"refresh_token": t["refresh_token"]})).status_code == 401  # single use
    assert (await client.post("/api/auth/refresh", json={"refresh_token": t["access_token"]})).status_code == 401  # wrong type
    assert (await client.post("/api/auth/logout", json={"refresh_token": new["refresh_token"]}, headers=h)).status_code == 204
    assert (await client.get("/api/auth/me", headers=h)).status_code == 401
    assert (await client.post("/api/auth/refresh", json={"refresh_token": new["refresh_token"]})).status_code == 401
    # revocations survive a restart of the auth service (stored)
    c.authenticator.revoked.clear()
    await c.auth.reload()
    assert (await client.get("/api/auth/me", headers=h)).status_code == 401
    # key rotation: a token signed with the previous key id still verifies
    from auth.tokens import KeyRing, issue_token

    old = KeyRing("o" * 40, "k0")
    token = issue_token(old, "user:x", "qa", 60)
    c.authenticator.keys.keys["k0"] = old.keys["k0"]
    assert (await client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})).status_code == 200


async def test_api_keys_are_hashed_scoped_and_revocable(stack):
    c, app, client = stack
    admin = bearer(c, "admin")
    r = await client.post("/api/api-keys", json={"name": "wallboard", "role": "supervisor", "scopes": ["queues.read"]}, headers=admin)
    assert r.status_code == 201
    key, key_id = r.json()["key"], r.json()["id"]
    async with c.engine.connect() as conn:
        stored = (await conn.execute(text("SELECT key_hash FROM auth_api_keys"))).scalar_one()
    assert stored == hashlib.sha256(key.encode()).hexdigest() and key not in stored
    kh = {"Authorization": f"Bearer {key}"}
    assert (await client.get("/api/queues", headers=kh)).status_code == 200
    assert (await client.get("/api/agents", headers=kh)).status_code == 403  # outside its scope
    assert (await client.delete(f"/api/api-keys/{key_id}", headers=admin)).status_code == 200
    assert (await client.get("/api/queues", headers=kh)).status_code == 401
    bad = await client.post("/api/api-keys", json={"name": "x", "role": "qa", "scopes": ["nope.nope"]}, headers=admin)
    assert bad.status_code == 422


async def test_audit_chain_detects_tampering_and_the_table_is_append_only(stack, tmp_path):
    c, app, client = stack
    for n in range(3):
        await c.audit.record("system", "test.entry", f"t{n}", {"n": n})
    assert (await c.audit.verify()).ok
    listed = await client.get("/api/audit?action=test.", headers=bearer(c, "admin"))
    assert [e["target"] for e in listed.json()] == ["t2", "t1", "t0"]
    assert (await client.get("/api/audit", headers=bearer(c, "supervisor"))).status_code == 403
    postgres = c.engine.dialect.name == "postgresql"
    async with c.engine.begin() as conn:
        with pytest.raises(Exception, match="append-only"):
            async with conn.begin_nested():
                await conn.execute(text("UPDATE audit_log SET target = 'x' WHERE id = 2"))
        # an attacker with the database's owner rights drops the guard and edits a row
        if postgres:
            await conn.execute(text("DROP TRIGGER audit_log_no_change ON audit_log"))
        else:
            await conn.execute(text("DROP TRIGGER audit_log_no_update"))
        await conn.execute(text("UPDATE audit_log SET details = '{\"n\": 7}' WHERE target = 't1'"))
    result = await c.audit.verify()
    assert not result.ok and result.reason and "edited" in result.reason
    if not postgres:  # the CLI against the same SQLite file
        env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCORE_")}
        env["CALLCORE_DATABASE_URL"] = c.settings.effective_database_url
        out = subprocess.run([sys.executable, "-m", "callcore.cli", "audit", "verify"], env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 1 and "TAMPERED" in out.stdout


def test_start_refused_with_default_or_short_key_outside_dev_mode(tmp_path):
    base = {"data_dir": tmp_path, "dev_mode": False}
    with pytest.raises(StartupRefused, match="CALLCORE_JWT_KEY is the shipped placeholder"):
        check_startup(Settings(**base, ami_secret="a-real-ami-secret"))
    with pytest.raises(StartupRefused, match="shorter than 32"):
        check_startup(Settings(**base, jwt_key="short", ami_secret="a-real-ami-secret"))
    with pytest.raises(StartupRefused, match="CALLCORE_AMI_SECRET"):
        check_startup(Settings(**base, jwt_key="k" * 40, ami_secret="change-me-callcore-secret"))
    with pytest.raises(StartupRefused, match="loopback only"):
        check_startup(Settings(data_dir=tmp_path, dev_mode=True, http_host="0.0.0.0"))
    ring = check_startup(Settings(data_dir=tmp_path, dev_mode=True))
    assert (tmp_path / "jwt.key").stat().st_mode & 0o777 == 0o600
    assert ring.signing_key()[1].decode() == (tmp_path / "jwt.key").read_text().strip()
    assert check_startup(Settings(**base, jwt_key="k" * 40, ami_secret="real")).signing_key()[1] == b"k" * 40


def test_serve_refuses_to_start_with_the_default_key(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCORE_")}
    env.update(CALLCORE_DATA_DIR=str(tmp_path), CALLCORE_HTTP_HOST="0.0.0.0", CALLCORE_HTTP_PORT="0", CALLCORE_AGI_PORT="0")
    out = subprocess.run([sys.executable, "-m", "callcore.cli", "serve"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "refusing to start" in out.stderr and "CALLCORE_JWT_KEY" in out.stderr and "secrets.token_urlsafe" in out.stderr


async def test_pbkdf2_pin_migrates_to_argon2_on_first_login(stack):
    import hashlib as h
    import secrets

    c, app, client = stack
    await c.cti.agents.create_agent(id="1001", name="A", interface="Local/1001@agents/n", skills={})
    salt = secrets.token_bytes(16)
    legacy = f"pbkdf2_sha256$100000${salt.hex()}${h.pbkdf2_hmac('sha256', b'4321', salt, 100000).hex()}"
    async with c.engine.begin() as conn:
        await conn.execute(text("UPDATE cti_agents SET pin_hash = :h WHERE id = '1001'"), {"h": legacy})
    r = await client.post("/api/auth/login", json={"agent_id": "1001", "pin": "4321"})
    assert r.status_code == 200 and r.json()["role"] == "agent"
    async with c.engine.connect() as conn:
        stored = (await conn.execute(text("SELECT pin_hash FROM cti_agents WHERE id = '1001'"))).scalar_one()
    assert stored.startswith("$argon2id$")
    assert (await client.post("/api/auth/login", json={"agent_id": "1001", "pin": "4321"})).status_code == 200


async def test_hostile_http_input_gets_4xx(stack):
    c, app, client = stack
    admin = bearer(c, "admin")
    assert (await client.get("/api/customers/99999999999999999999999", headers=admin)).status_code == 422
    r = await client.put("/api/queues/sales/settings", json={"wrapup_seconds": 1e30}, headers=admin)
    assert r.status_code == 422
    r = await client.post("/api/calls/x1/disposition", json={"code": "resolved"}, headers=admin)
    assert r.status_code == 422 and "code" in r.text  # unknown field refused, not silently dropped
    r = await client.post("/api/agents", json={"id": "1009", "name": "x", "interface": "Local/1009@agents/n\r\nAction: Hangup"}, headers=admin)
    assert r.status_code == 422
    r = await client.put("/api/queues/sales%0d%0aevil/settings", json={}, headers=admin)
    assert r.status_code == 422
    big = b"{" + b" " * (2 * 1024 * 1024) + b"}"
    r = await client.post("/api/customers", content=big, headers={**admin, "Content-Type": "application/json"})
    assert r.status_code == 413
    r = await client.get("/healthz")
    assert r.headers["x-content-type-options"] == "nosniff" and "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert "access-control-allow-origin" not in (await client.get("/healthz", headers={"Origin": "http://evil.example"})).headers


async def test_like_wildcards_are_literal_and_agents_see_only_their_customers(stack):
    c, app, client = stack
    admin = bearer(c, "admin")
    for name in ("100% Kim", "Lee"):
        await client.post("/api/customers", json={"name": name, "phone": "0101111222" + str(len(name)), "attributes": {"rrn": "900101-1234567"}}, headers=admin)
    assert [x["name"] for x in (await client.get("/api/customers?q=%25", headers=admin)).json()] == ["100% Kim"]
    assert (await client.get("/api/customers?q=_", headers=admin)).json() == []
    sup = (await client.get("/api/customers", headers=bearer(c, "supervisor"))).json()
    assert sup and all(x["attributes"]["rrn"].endswith("67") and "1234567" not in x["attributes"]["rrn"] for x in sup)
    assert (await client.get("/api/customers", headers=bearer(c, "agent"))).json() == []  # no calls of theirs
    cid = sup[0]["id"]
    assert (await client.get(f"/api/customers/{cid}", headers=bearer(c, "agent"))).status_code == 404
    # a masked value sent back does not overwrite the stored one
    await client.put(f"/api/customers/{cid}", json={"attributes": {"rrn": sup[0]["attributes"]["rrn"]}}, headers=bearer(c, "supervisor"))
    assert (await client.get(f"/api/customers/{cid}", headers=admin)).json()["attributes"]["rrn"] == "900101-1234567"


@pytest.mark.slow
def test_token_command_refuses_the_default_key_and_signs_with_the_dev_key(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCORE_")}
    env["CALLCORE_DATA_DIR"] = str(tmp_path)
    cmd = [sys.executable, "-m", "callcore.cli", "token", "x", "--role", "admin"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "CALLCORE_JWT_KEY" in out.stderr and not out.stdout
    out = subprocess.run([*cmd, "--dev"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    from auth.tokens import KeyRing, verify_token

    key = (tmp_path / "jwt.key").read_text().strip()
    assert verify_token(KeyRing(key), out.stdout.strip()).role == "admin"


async def test_cors_only_for_configured_origins():
    import httpx

    from api.app import create_app

    class Bare:  # the app factory's view of the container: no domain routers needed here
        settings = Settings(cors_origins=["https://desk.example"])

        def routers(self):
            return []

        def app_services(self):
            return {}

    app = create_app(Bare())  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        pre = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x-csrf-token"}
        ok = await client.options("/healthz", headers={"Origin": "https://desk.example", **pre})
        assert ok.headers["access-control-allow-origin"] == "https://desk.example"
        bad = await client.options("/healthz", headers={"Origin": "https://evil.example", **pre})
        assert "access-control-allow-origin" not in bad.headers


@pytest.mark.slow
def test_user_add_cli_creates_an_account_that_can_log_in(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCORE_")}
    env.update(CALLCORE_DATA_DIR=str(tmp_path), CALLCORE_NEW_PASSWORD="a-long-password-1")
    cmd = [sys.executable, "-m", "callcore.cli", "user", "add", "root", "--role", "admin"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "user root created" in out.stdout
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 1 and "already exists" in again.stderr
    short = subprocess.run([*cmd[:-3], "x", "--role", "qa"], env={**env, "CALLCORE_NEW_PASSWORD": "short"}, capture_output=True, text=True, timeout=60)
    assert short.returncode == 1 and "12 characters" in short.stderr

    import asyncio

    from auth.passwords import Passwords
    from auth.repository import AuthRepository
    from callcore.db import create_engine, session_factory

    async def stored():
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'callcore.db'}")
        try:
            return await AuthRepository(session_factory(engine)).get_user("root")
        finally:
            await engine.dispose()

    row = asyncio.run(stored())
    assert row.role == "admin" and Passwords().verify("a-long-password-1", row.password_hash)[0]
