"""Telephony never waits on the database (issue 12): with a failing repository the AMI
actions that keep calls flowing are still sent — wrap-up pause and unpause, agent
pause/unpause, QueueAdd after an Asterisk restart — and the bookkeeping failure is
counted instead of blocking them."""

from __future__ import annotations

import asyncio

import pytest

from cti.ami import events as ev
from cti.state import QueueSettings
from cti.testing import capture_events, list_events, ok, wait_for
from tests.conftest import CAPTURES

from .conftest import add_agents

pytestmark = pytest.mark.db


class DatabaseDown(ConnectionError):
    pass


def break_writes(monkeypatch, repo, *names):
    async def down(*args, **kwargs):
        raise DatabaseDown("connection refused")

    for name in names:
        monkeypatch.setattr(repo, name, down)


def feed(service, clock, events, step=0.5):
    for e in events:
        service.handle_event(e)
        clock.advance(step)


async def test_wrapup_pause_and_unpause_are_sent_while_the_database_is_down(service, ami, clock, repo, monkeypatch):
    await add_agents(service)
    await service.queues.queue_settings_update(QueueSettings("sales", wrapup_seconds=30))
    service.bookkeeping.first_wait = 0.01
    service.persistence.backoff = 0.01
    break_writes(monkeypatch, repo, "add_agent_event", "set_agent_state", "save_call")
    events = [e for e in capture_events(CAPTURES / "ami-ivr-queue-agent.raw") if not isinstance(e, ev.QueueMemberPause)]
    feed(service, clock, events)
    await wait_for(lambda: ami.of("QueuePause"))
    assert ami.of("QueuePause")[0].get("Paused") == "true"  # the wrap-up pause is in place
    clock.advance(31)  # the wrap-up ends: the unpause must reach Asterisk although nothing can be stored
    await wait_for(lambda: len(ami.of("QueuePause")) == 2)
    assert ami.of("QueuePause")[1].get("Paused") == "false"
    assert service.state.agents["1001"].status == "ready"
    await service.idle()
    assert service.bookkeeping.failures >= 2  # wrap-up and ready events: counted, not lost silently


async def test_agent_pause_and_unpause_answer_after_the_ami_action_when_storing_fails(service, ami, repo, monkeypatch):
    await add_agents(service)
    await service.agents.login("1001")
    service.handle_event(ev.QueueMemberAdded(ev.MemberInfo.parse({"Queue": "sales", "Interface": "Local/1001@agents/n", "Status": "1"})))
    service.bookkeeping.first_wait = 0.01
    break_writes(monkeypatch, repo, "add_agent_event", "set_agent_state")
    view = await service.agents.pause("1001", "lunch")
    assert view["paused"] is True and ami.of("QueuePause")[-1].get("Paused") == "true"
    view = await service.agents.unpause("1001")
    assert view["paused"] is False and ami.of("QueuePause")[-1].get("Paused") == "false"
    assert service.bookkeeping.failures == 4


async def test_queue_add_after_an_asterisk_restart_does_not_wait_for_the_database(service, ami, repo, monkeypatch):
    await add_agents(service)
    await service.agents.login("1001")
    ami.sent.clear()
    after = CAPTURES / "ami-after-restart.raw"
    ami.script("CoreShowChannels", ok("CoreShowChannels", events=[]))
    ami.script("QueueStatus", ok("QueueStatus", events=list_events(after, "qs-after")))
    ami.script("QueueSummary", ok("QueueSummary", events=[]))
    break_writes(monkeypatch, repo, "list_agents")  # the directory cannot be reloaded

    report = await service.resync()

    adds = sorted((a.get("Queue"), a.get("Interface")) for a in ami.of("QueueAdd"))
    assert adds == [("sales", "Local/1001@agents/n"), ("support", "Local/1001@agents/n")]
    assert report["agents_readded"] == ["1001"]


async def test_a_hanging_database_write_never_holds_the_wrapup_pause_or_unpause(service, ami, clock, repo, monkeypatch):
    await add_agents(service)
    await service.queues.queue_settings_update(QueueSettings("sales", wrapup_seconds=30))
    stuck = asyncio.Event()

    async def hangs(*args, **kwargs):
        await stuck.wait()  # the database does not answer

    monkeypatch.setattr(repo, "add_agent_event", hangs)
    events = [e for e in capture_events(CAPTURES / "ami-ivr-queue-agent.raw") if not isinstance(e, ev.QueueMemberPause)]
    feed(service, clock, events)
    await wait_for(lambda: ami.of("QueuePause"))
    clock.advance(31)
    await wait_for(lambda: len(ami.of("QueuePause")) == 2)  # unpaused while the wrap-up event is still being written
    assert ami.of("QueuePause")[1].get("Paused") == "false"
    stuck.set()
    await service.idle()
