"""Every event the notifier emits is documented in cti/events.yml, with the payload it really has."""

from __future__ import annotations

import re

import yaml

from callcore.bus import Bus
from cti.notifier import EVENTS_FILE, CtiNotifier
from cti.pops import PopBuilder
from cti.state import Call


def documented() -> dict[str, dict]:
    doc = yaml.safe_load(EVENTS_FILE.read_text(encoding="utf-8"))
    return {e["name"]: e for e in doc["events"]}


def test_every_emitted_event_is_documented():
    source = (EVENTS_FILE.parent / "notifier.py").read_text(encoding="utf-8")
    emitted = set(re.findall(r'_emit\(\s*"([a-z_.]+)"', source))
    docs = documented()
    assert emitted == set(docs), f"undocumented: {emitted - set(docs)}; stale: {set(docs) - emitted}"
    for e in docs.values():
        assert e["audience"] and e["payload"] and e["when"]


def test_pop_payload_matches_its_schema():
    payload = PopBuilder(lambda: 0.0).pop(Call(id="1.1", started_at=0.0), "1001", 1.0)  # only reads memory
    assert set(payload) == set(documented()["call.ringing"]["payload"])


def test_agent_status_payload_matches_its_schema():
    bus = Bus()
    sub = bus.subscribe({"agent:1"})
    from cti.state import Agent

    CtiNotifier(bus).agent_status(Agent("1", queues={"sales": 0}).to_dict())
    msg = sub.queue.get_nowait()
    assert set(msg.payload) == set(documented()["agent.status"]["payload"])
    assert msg.audience == frozenset({"agent:1", "supervisor", "queue:sales"})
