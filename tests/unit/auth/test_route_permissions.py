"""Authorization in one place: generated from the assembled app's own route list, every route
declares a permission (``require("...")``) or ``public("why")``, and every route answers every
role as the permission table says. A new route without a declaration fails here."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute

from api.auth import declared_permissions
from auth.permissions import ROLES, permissions_of

from .conftest import bearer

pytestmark = pytest.mark.db


def flatten(routes, prefix: str = ""):
    """``(full path, route)`` of every route, through included routers (FastAPI keeps them nested)."""
    for r in routes:
        inner = getattr(r, "original_router", None)
        if inner is not None:
            yield from flatten(inner.routes, prefix + (r.include_context.prefix or ""))
        else:
            yield prefix + getattr(r, "path", ""), r


def _url(path: str) -> str:
    def fill(m: re.Match) -> str:
        name = m.group(1)
        return "1" if name.endswith("_id") and "customer" in name else {"mode": "listen", "name": "sales", "code": "break"}.get(name, "x1")

    return re.sub(r"\{(\w+)(?::\w+)?\}", fill, path)


def _routes(app):
    found = []
    for path, route in flatten(app.routes):
        if isinstance(route, APIRoute):
            for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
                found.append((path, route, method))
    assert len(found) > 60, f"only {len(found)} routes found: the walk is broken"
    return found


async def test_every_route_declares_a_permission(stack):
    c, app, client = stack
    missing, legacy = [], []
    for path, route, method in _routes(app):
        perms, roles, public = declared_permissions(route.dependant)
        if roles:
            legacy.append(f"{method} {path} declares roles {sorted(roles)}: use require('<permission>')")
        if not perms and not public:
            missing.append(f"{method} {path}")
    assert not missing, "routes without require('<permission>') or public('why'):\n" + "\n".join(missing)
    assert not legacy, "\n".join(legacy)
    ws = [path for path, r in flatten(app.routes) if path == "/ws"]
    assert ws, "the websocket route is checked by its subscription rules (test_websocket_subscriptions_follow_the_table)"


@pytest.mark.parametrize("role", [None, *ROLES])
async def test_every_route_answers_every_role_as_the_table_says(stack, role):
    c, app, client = stack
    wrong = []
    for path, route, method in _routes(app):
        perms, _, public = declared_permissions(route.dependant)
        headers = bearer(c, role) if role else {}  # a fresh token each time: logout revokes the one it gets
        r = await client.request(method, _url(path), headers=headers, json={})
        denial = r.status_code == 403 and "permission" in r.text
        if public:
            ok = r.status_code not in (401, 403)
        elif role is None:
            ok = r.status_code == 401
        elif all(p in permissions_of(role) for p in perms):
            ok = r.status_code not in (401, 500) and not denial
        else:
            ok = denial
        if not ok:
            wrong.append(f"{method} {path} as {role}: {r.status_code} {r.text[:120]}")
    assert not wrong, "\n".join(wrong)


def test_websocket_subscriptions_follow_the_table():
    from auth.tokens import Principal
    from cti.routes import allowed_keys

    keys = ["agent:1001", "agent:1002", "queue:sales", "queue.stats", "supervisor"]
    assert allowed_keys(Principal("1001", "agent"), keys)[0] == {"agent:1001"}
    assert allowed_keys(Principal("user:s", "supervisor"), keys)[0] == {"agent:1001", "agent:1002", "queue:sales", "queue.stats", "supervisor"}
    scoped = Principal("user:s", "supervisor", queues=frozenset({"support"}))
    assert "queue:sales" in allowed_keys(scoped, ["queue:sales"])[1]
    assert allowed_keys(Principal("user:o", "ops"), keys)[0] == set()
    assert allowed_keys(Principal("user:q", "qa"), keys)[0] == set()
