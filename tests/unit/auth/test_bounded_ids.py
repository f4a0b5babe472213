"""Bounded ids (issue 11): generated from the assembled app's own route list, every integer path
or query parameter is sent a value the database cannot hold (2**31 overflows the 32-bit id
columns on PostgreSQL, 10**23 overflows SQLite's 64-bit INTEGER). The answer is a 4xx (or an
empty 2xx list), never 500 — a new route that forgets a bound is still covered by
``api.security.install_db_value_errors``, and a new one that breaks it fails here."""

from __future__ import annotations

import re

import httpx
import pytest

from .conftest import bearer
from .test_route_permissions import _routes

pytestmark = pytest.mark.db

TOO_BIG = (2**31, 2**63, 10**23)


def _int_params(route) -> tuple[list[str], list[str]]:
    dep = route.dependant
    ints = lambda params: [p.name for p in params if "int" in str(p.field_info.annotation)]  # noqa: E731
    return ints(dep.path_params), [p.alias or p.name for p in dep.query_params if p.name in ints(dep.query_params)]


async def test_ids_too_large_for_the_database_never_answer_500(stack):
    c, app, _ = stack
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://test")
    tried, wrong = 0, []
    async with client:
        for path, route, method in _routes(app):
            in_path, in_query = _int_params(route)
            if not in_path and not in_query:
                continue
            for big in TOO_BIG:
                url = re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: str(big) if m.group(1) in in_path else "x1", path)
                query = {name: str(big) for name in in_query}
                r = await client.request(method, url, params=query, headers=bearer(c, "admin"), json={})
                tried += 1
                if r.status_code >= 500 or (in_path and r.status_code < 300):
                    wrong.append(f"{method} {url} {query}: {r.status_code} {r.text[:100]}")
    assert tried > 50, "the walk found no integer parameters"
    assert not wrong, "\n".join(wrong)


async def test_a_bounded_id_names_the_field_and_the_safety_net_answers_422(stack):
    c, app, client = stack
    admin = bearer(c, "admin")
    r = await client.get("/api/customers/99999999999999999999999", headers=admin)
    assert r.status_code == 422 and "customer_id" in r.text  # bounded by the route (DbId)
    r = await client.get("/api/recordings/99999999999999999999999", headers=admin)
    assert r.status_code == 422


def test_only_values_the_database_refused_are_mapped_to_422():
    from sqlalchemy.exc import DataError

    from api.security import is_db_value_error

    assert is_db_value_error(OverflowError("Python int too large to convert to SQLite INTEGER"))
    assert is_db_value_error(DataError("SELECT 1", {}, Exception("value out of int32 range")))
    assert not is_db_value_error(OverflowError("math range error"))  # a bug stays a 500
    assert not is_db_value_error(ValueError("x"))


def test_asyncpgs_refused_bind_value_is_a_value_error():
    """The shape PostgreSQL's driver gives (checked against asyncpg 0.x through SQLAlchemy 2)."""
    from sqlalchemy.exc import DBAPIError

    from api.security import is_db_value_error

    DataError = type("DataError", (Exception,), {})  # asyncpg.exceptions.DataError, client-side
    orig = Exception("invalid input for query argument $1: 2147483648 (value out of int32 range)")
    orig.__cause__ = DataError("value out of int32 range")
    assert is_db_value_error(DBAPIError("SELECT", {}, orig))
    assert not is_db_value_error(DBAPIError("SELECT", {}, Exception("connection refused")))
