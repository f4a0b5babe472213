"""The engine and service over the real AGI Channel adapter (scripted Asterisk answers):
the same code as the console, and caller/lookup data only reaches AGI as quoted arguments."""

from __future__ import annotations

from ivr.agi.channel import AgiChannel
from ivr.agi.testing import ScriptedSession
from ivr.lookup import FixtureLookupClient, PhoneDirectoryLookup
from ivr.ports import InMemoryCallbackSink, PassThroughRouter
from ivr.registry import FlowRegistry
from ivr.repository import MemoryIvrRepository
from ivr.service import IvrService

from .helpers import TUESDAY_10

FLOW = """languages: [en]
start: l
agent_vars: [name]
nodes:
  l: {type: lookup, path: "/c/{caller}", map: {name: c.name, acct: c.acct}, next: s, fallback: s}
  s: {type: say, digits: acct, next: m}
  m: {type: menu, prompt: menu, options: {"1": q}, on_fail: q}
  q: {type: queue, queue: sales, priority: 3, data: {who: name}}
"""


async def test_service_over_agi_channel_sends_only_quoted_arguments(tmp_path):
    (tmp_path / "main.yaml").write_text(FLOW)
    repo = MemoryIvrRepository()
    lookup = FixtureLookupClient({"*": {"c": {"name": 'evil"\nHANGUP', "acct": '12"3\n4'}}})
    svc = IvrService(FlowRegistry(tmp_path, store=repo, check_sounds=False), PassThroughRouter(), InMemoryCallbackSink(),
                     lookup, repo, clock=lambda: TUESDAY_10, sounds_prefix="/var/lib/callcore/sounds/")
    session = ScriptedSession(["200 result=0", "200 result=1", "200 result=0", "200 result=49 endpos=100",
                               "200 result=1", "200 result=1", "200 result=1"])
    outcome = await svc.run(AgiChannel(session))
    assert outcome.kind == "queue"
    assert session.sent == [
        "ANSWER\n",
        'SET VARIABLE "CHANNEL(language)" "en"\n',
        'SAY DIGITS "1234" ""\n',  # non-digits from the lookup never reach Asterisk
        'STREAM FILE "/var/lib/callcore/sounds/en/menu" "1"\n',
        'SET VARIABLE "IVR_QUEUE" "sales"\n',
        'SET VARIABLE "IVR_PRIORITY" "3"\n',
        'SET VARIABLE "CALLCORE_SESSION" "1"\n',
    ]
    # the raw lookup value is kept for the screen pop (control characters replaced), not sent to AGI
    assert (await svc.context_for("1700000000.1"))["agent"] == {"name": 'evil" HANGUP'}


async def test_caller_hangup_notice_over_agi_is_recorded_as_drop_off(tmp_path):
    (tmp_path / "main.yaml").write_text(FLOW)
    repo = MemoryIvrRepository()
    svc = IvrService(FlowRegistry(tmp_path, store=repo, check_sounds=False), PassThroughRouter(), InMemoryCallbackSink(),
                     FixtureLookupClient({}), repo, clock=lambda: TUESDAY_10)
    session = ScriptedSession(["200 result=0", "200 result=1", "HANGUP", "511 Command Not Permitted on a dead channel"])
    outcome = await svc.run(AgiChannel(session))
    assert outcome.kind == "caller_hangup"
    assert outcome.end_node == "main:m"
    assert (await repo.stats())["drop_off"] == [{"node": "main:m", "calls": 1}]


class Directory:
    def __init__(self):
        self.asked = []

    async def lookup(self, phone):
        self.asked.append(phone)
        return {"id": 7, "name": "홍길동", "vip": True} if phone == "01011112222" else None


async def test_phone_directory_lookup_answers_customer_paths_and_delegates_the_rest():
    directory = Directory()
    fallback = FixtureLookupClient({"/outages": {"outage": {"active": False}}})
    lk = PhoneDirectoryLookup(directory, fallback=fallback)
    assert await lk.lookup("GET", "/customers/by-phone/01011112222", {}, 1) == {"customer": {"id": 7, "name": "홍길동", "vip": True}}
    assert await lk.lookup("GET", "/outages", {}, 1) == {"outage": {"active": False}}
    import pytest

    from ivr.lookup import LookupFailed

    with pytest.raises(LookupFailed):
        await lk.lookup("GET", "/customers/by-phone/0200000000", {}, 1)
    assert directory.asked == ["01011112222", "0200000000"]
