"""Call views follow the permission table (issue 11): QA reads every call of its queues, a user
scoped to other queues does not, agents only their own; caller numbers masked per role."""

from __future__ import annotations

import pytest

from api.auth import Principal
from callcore.settings import Settings
from cti.ami import events as ev
from cti.testing import capture_events
from tests.conftest import CAPTURES

from .conftest import add_agents

pytestmark = pytest.mark.db


def _h(service, subject, role, queues=()):
    return {"Authorization": f"Bearer {service.authenticator.issue(subject, role, queues=queues)}"}


async def test_call_views_by_permission_scope_and_masking(service, app, client, clock):
    await add_agents(service)
    events = capture_events(CAPTURES / "ami-ivr-queue-agent.raw")
    i = next(i for i, e in enumerate(events) if isinstance(e, ev.AgentConnect))
    for e in events[: i + 1]:
        service.handle_event(e)
        clock.advance(0.5)
    live = service.state.calls
    assert live, "the capture left a live call"
    call = next(iter(live.values()))
    queue = call.queue
    assert queue
    qa = (await client.get("/api/calls", headers=_h(service, "user:q", "qa"))).json()
    assert [c["call_id"] for c in qa] == [call.id]
    assert (await client.get(f"/api/calls/{call.id}", headers=_h(service, "user:q", "qa"))).status_code == 200
    other = _h(service, "user:q2", "qa", queues=["nosuchqueue"])
    assert (await client.get("/api/calls", headers=other)).json() == []
    assert (await client.get(f"/api/calls/{call.id}", headers=other)).status_code == 403
    assert (await client.get("/api/calls", headers=_h(service, "1002", "agent"))).json() == []
    mine = (await client.get("/api/calls", headers=_h(service, call.agent_id, "agent"))).json()
    assert mine[0]["caller_num"] == call.caller_num  # no masking configured
    app.state.settings = Settings(mask_numbers_for_roles=["agent"])
    masked = (await client.get("/api/calls", headers=_h(service, call.agent_id, "agent"))).json()
    assert masked[0]["caller_num"] != call.caller_num and masked[0]["caller_num"].endswith(call.caller_num[-4:])
    assert "*" in masked[0]["caller_num"]
    sup = (await client.get("/api/calls", headers=_h(service, "user:s", "supervisor"))).json()
    assert sup[0]["caller_num"] == call.caller_num  # supervisors hold numbers.unmasked
    assert Principal("user:q", "qa").can("calls.read_all") and not Principal("1001", "agent").can("calls.read_all")


async def test_customer_numbers_masked_for_configured_roles_and_never_saved_masked(service, app, client):
    admin = {"Authorization": "Bearer static-admin"}
    c = (await client.post("/api/customers", json={"name": "Kim", "phone": "01012345678"}, headers=admin)).json()
    app.state.settings = Settings(mask_numbers_for_roles=["agent", "supervisor"], agents_see_own_customers_only=False)
    qa = _h(service, "user:q", "qa")
    sup = _h(service, "user:s", "supervisor")
    assert (await client.get(f"/api/customers/{c['id']}", headers=sup)).json()["phone"] == "01012345678"  # numbers.unmasked
    agent = _h(service, "1001", "agent")
    assert (await client.get(f"/api/customers/{c['id']}", headers=agent)).json()["phone"] == "010****5678"
    assert (await client.get("/api/customers", headers=agent)).json()[0]["phone"] == "010****5678"
    r = await client.put(f"/api/customers/{c['id']}", json={"phone": "010****5678"}, headers=admin)
    assert r.status_code == 422 and "masked" in r.text
    assert (await client.get(f"/api/customers/{c['id']}", headers=admin)).json()["phone"] == "01012345678"
    assert (await client.get("/api/customers", headers=qa)).status_code == 403  # QA holds no customers.read
