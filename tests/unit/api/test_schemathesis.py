"""No request ever produces a 500: schemathesis generates requests from the app's OpenAPI
schema and runs them, as an admin, against the assembled app (ASGI, no socket).

CI runs a small sample per operation; the full run is on demand:
``CALLCORE_SCHEMATHESIS_FULL=1 .venv/bin/python -m pytest tests/unit/api/test_schemathesis.py``."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

FULL = os.environ.get("CALLCORE_SCHEMATHESIS_FULL") == "1"
EXAMPLES = 100 if FULL else 3


def _app_and_token(tmp: str):
    """The assembled app on its own loop in a thread (schemathesis calls it synchronously)."""
    from api.app import create_app
    from callcore.app import Container
    from callcore.settings import Settings

    os.makedirs(f"{tmp}/plans", exist_ok=True)
    settings = Settings(
        data_dir=f"{tmp}/data", only=["http"], http_port=0, dialplans_dir=f"{tmp}/plans", dialplan_watch=False, dev_mode=True,
        login_max_failures_address=10_000, login_max_failures_account=10_000,
    )
    c = Container(settings)
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True, name="schemathesis-app").start()
    asyncio.run_coroutine_threadsafe(c.start(), loop).result(60)
    return create_app(c), c.authenticator.issue("user:fuzz", "admin", 3600), c, loop


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory):
    app, token, c, loop = _app_and_token(str(tmp_path_factory.mktemp("fuzz")))
    yield app, token
    asyncio.run_coroutine_threadsafe(c.stop(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)


def test_no_operation_answers_500(fuzz_target):
    app, token = fuzz_target
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path == "/api/auth/logout":
            continue  # would revoke the fuzzer's own token
        operations += 1

        strategy = operation.as_strategy()

        @given(case=strategy)
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case) -> None:
            response = case.call(headers={"Authorization": f"Bearer {token}"})
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} → {response.status_code}: {response.text[:200]}")

        run()
    assert operations > 50
    assert not failures, "\n".join(sorted(set(failures))[:30])
