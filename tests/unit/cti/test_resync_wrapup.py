"""Resync after an Asterisk restart re-applies the wrap-up (issue 9 item 9): an agent still in
wrap-up is re-added paused with reason ``wrapup``; the end of the wrap-up lifts that pause."""

from __future__ import annotations

import pytest

from cti.testing import capture_events, list_events, ok

from .conftest import add_agents
from .test_service import CALL, feed, service_captures

pytestmark = pytest.mark.db


async def test_agent_in_wrapup_is_readded_paused_then_unpaused(service, ami, clock):
    await add_agents(service)
    await service.agents.login("1001")
    # a queue call ends: 1001 is in wrap-up (default 10 s), paused in Asterisk for it
    feed(service, clock, capture_events(service_captures() / "ami-ivr-queue-agent.raw"))
    await service.idle()
    assert service.state.agents["1001"].status in ("wrapup", "paused")
    assert service.state.agents["1001"].wrapup_until is not None
    ami.sent.clear()
    # Asterisk restarted: QueueStatus has no dynamic members any more
    after = service_captures() / "ami-after-restart.raw"
    ami.script("CoreShowChannels", ok("CoreShowChannels", events=[]))
    ami.script("QueueStatus", ok("QueueStatus", events=list_events(after, "qs-after")))
    ami.script("QueueSummary", ok("QueueSummary", events=[]))
    await service.resync()
    adds = sorted((a.get("Queue"), a.get("Paused"), a.get("Reason")) for a in ami.of("QueueAdd")
                  if a.get("Interface") == "Local/1001@agents/n")
    assert adds == [("sales", "true", "wrapup"), ("support", "true", "wrapup")]
    assert service.state.agents["1001"].status == "wrapup"
    # the wrap-up ends: the pause callcore put there is lifted
    ami.sent.clear()
    await service.agents.ready("1001")
    pauses = [(a.get("Interface"), a.get("Paused")) for a in ami.of("QueuePause")]
    assert pauses == [("Local/1001@agents/n", "false")]
    assert CALL in service.state.ended
