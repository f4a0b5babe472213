"""Tokens and signed webhooks."""

from __future__ import annotations

import json

import httpx
import pytest

from callcore.bus import Bus, Message
from api.auth import AuthError, Authenticator, issue_token, verify_token
from cti.routes import allowed_keys
from api.auth import Principal
from cti.testing import wait_for
from cti.webhooks import Hook, WebhookSender, sign, verify


def test_token_roundtrip_tamper_and_expiry():
    t = issue_token("k", "1001", "agent", 60, now=1000.0)
    p = verify_token("k", t, now=1010.0)
    assert (p.subject, p.role, p.agent_id) == ("1001", "agent", "1001")
    with pytest.raises(AuthError, match="bad signature"):
        verify_token("other-key", t, now=1010.0)
    head, payload, sig = t.split(".")
    forged = issue_token("k", "1002", "supervisor", 60, now=1000.0).split(".")[1]
    with pytest.raises(AuthError):
        verify_token("k", f"{head}.{forged}.{sig}", now=1010.0)
    with pytest.raises(AuthError, match="expired"):
        verify_token("k", t, now=1061.0)
    with pytest.raises(AuthError):
        verify_token("k", "garbage", now=1.0)
    with pytest.raises(ValueError):
        issue_token("k", "x", "root", 60)


def test_static_tokens():
    a = Authenticator("k", {"wall": "supervisor", "desk": "agent:1001", "bad": "root"})
    assert a.authenticate("wall").is_supervisor and a.authenticate("wall").agent_id is None
    assert a.authenticate("desk") == Principal("1001", "agent")
    with pytest.raises(AuthError):
        a.authenticate("bad")
    with pytest.raises(AuthError):
        a.authenticate(None)


def test_websocket_subscription_rules():
    agent = Principal("1001", "agent")
    ok, denied = allowed_keys(agent, ["agent:1001", "agent:1002", "queue:sales", "queue.stats", "supervisor"])
    assert ok == {"agent:1001"} and denied == ["agent:1002", "queue:sales", "queue.stats", "supervisor"]
    sup = Principal("token:abc", "supervisor")
    ok, denied = allowed_keys(sup, ["queue:sales", "queue.stats", "agent:1002", "whatever"])
    assert ok == {"queue:sales", "queue.stats", "agent:1002"} and denied == ["whatever"]


def test_signature():
    body = b'{"a":1}'
    assert sign("s", body) == "sha256=" + __import__("hmac").new(b"s", body, "sha256").hexdigest()
    assert verify("s", body, sign("s", body)) and not verify("t", body, sign("s", body))


async def test_webhook_signed_delivery_with_retries_and_backoff():
    calls: list[httpx.Request] = []
    answers = [503, 500, 200]

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(answers.pop(0))

    delays: list[float] = []

    async def fake_sleep(d: float) -> None:
        delays.append(d)

    bus = Bus()
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    sender = WebhookSender(
        bus, [Hook("http://crm.test/hook", "s3cret", frozenset({"call.ringing"}), 5)], client=client, base_delay=0.5, sleep=fake_sleep
    )
    await sender.start()
    try:
        bus.publish(Message("call.ringing", {"call_id": "1.2", "caller_name": "홍길동"}, frozenset({"agent:1001"})))
        bus.publish(Message("queue.stats", {"queues": []}, frozenset({"queue.stats"})))  # not subscribed by the hook
        await wait_for(lambda: sender.delivered == 1)
    finally:
        await sender.stop()
        await client.aclose()
    assert len(calls) == 3 and delays == [0.5, 1.0]
    ids = {r.headers["X-Callcore-Delivery"] for r in calls}
    assert len(ids) == 1
    for r in calls:
        assert r.headers["X-Callcore-Event"] == "call.ringing"
        assert verify("s3cret", r.content, r.headers["X-Callcore-Signature"])
    body = json.loads(calls[0].content)
    assert body["event"] == "call.ringing" and body["payload"]["caller_name"] == "홍길동"


async def test_webhook_gives_up_after_max_attempts():
    n = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal n
        n += 1
        raise httpx.ConnectError("refused", request=request)

    async def no_sleep(d: float) -> None:
        return None

    bus = Bus()
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    sender = WebhookSender(bus, [Hook("http://down.test/", "k", frozenset({"call.ended"}), 3)], client=client, sleep=no_sleep)
    await sender.start()
    try:
        bus.publish(Message("call.ended", {"call_id": "x"}, frozenset()))
        await wait_for(lambda: sender.failed == 1)
    finally:
        await sender.stop()
        await client.aclose()
    assert n == 3 and sender.delivered == 0 and sender.pending == 0
