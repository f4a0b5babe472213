"""The end-to-end path against a REAL Asterisk, when one is configured.

Set ``CALLCORE_LIVE_AMI=host:port`` (plus ``CALLCORE_LIVE_AMI_USERNAME`` /
``CALLCORE_LIVE_AMI_SECRET``, default callcore and the secret of the shipped
``asterisk-config/manager.conf``, which is also callcore's default) for an Asterisk
running the project's ``asterisk-config/`` with ``CALLCORE_AGI_HOST`` pointing at
this machine. callcore's FastAGI server then binds ``CALLCORE_LIVE_AGI_BIND``
(default ``0.0.0.0:4573``, the port extensions.conf dials). If Asterisk does not
share this machine's filesystem, point ``CALLCORE_LIVE_SOUNDS_PREFIX`` at where it
sees ``dialplans/sounds``. Without ``CALLCORE_LIVE_AMI`` every test here is skipped.
``docker/`` runs such an Asterisk.
"""

from __future__ import annotations

import asyncio
import os

import httpx
import pytest

from callcore.app import Container
from callcore.settings import Settings
from cti.ami import actions as act
from tests.e2e.conftest import ADMIN_TOKEN, OPEN_HOURS, ROOT, Stack, eventually

LIVE = os.environ.get("CALLCORE_LIVE_AMI")
#: the one default AMI secret: callcore's settings = asterisk-config/manager.conf (tests/unit/callcore/test_defaults_agree.py)
DEFAULT_AMI_SECRET = Settings.model_fields["ami_secret"].default.get_secret_value()
pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(not LIVE, reason="no real Asterisk configured (set CALLCORE_LIVE_AMI=host:port)"),
]


@pytest.fixture
async def live(tmp_path, empty_database_url):
    host, _, port = (LIVE or "").rpartition(":")
    agi_host, _, agi_port = os.environ.get("CALLCORE_LIVE_AGI_BIND", "0.0.0.0:4573").rpartition(":")
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=empty_database_url,
        http_port=0,
        agi_host=agi_host,
        agi_port=int(agi_port),
        ami_host=host,
        ami_port=int(port),
        ami_username=os.environ.get("CALLCORE_LIVE_AMI_USERNAME", "callcore"),
        ami_secret=os.environ.get("CALLCORE_LIVE_AMI_SECRET", DEFAULT_AMI_SECRET),
        dialplans_dir=ROOT / "dialplans",
        asterisk_sounds_prefix=os.environ.get("CALLCORE_LIVE_SOUNDS_PREFIX"),
        dialplan_watch=False,
        api_tokens={ADMIN_TOKEN: "admin"},
    )
    if empty_database_url.startswith("postgresql"):
        from callcore import migrate

        await asyncio.to_thread(migrate.upgrade, empty_database_url)
    container = Container(settings, clock=lambda: OPEN_HOURS)
    await container.start()
    base = f"http://127.0.0.1:{container.http_port}"
    http = httpx.AsyncClient(base_url=base, timeout=10)
    stack = Stack(container, pbx=None, http=http, base_url=base)  # type: ignore[arg-type]
    try:
        await eventually(lambda: container.ami.state == "connected", 15, f"AMI login to {LIVE}")
        yield stack
    finally:
        for desk in stack.desks:
            await desk.close()
        for agent in list(container.cti.state.agents):
            if container.cti.state.agents[agent].logged_in:
                await stack.api("POST", f"/api/agents/{agent}/logout")
        await http.aclose()
        await container.stop()


async def test_live_resync_sees_the_configured_queues(live):
    ready = await live.api("GET", "/readyz")
    assert ready["ami"]["connected"] is True
    queues = {q["queue"] for q in await live.api("GET", "/api/queues", expect=200)}
    assert {"sales", "billing", "tech", "vip", "support"} <= queues


async def live_agent_desk(live):
    """Test agent 9001 ([callcore-test-agent]: answers after 1 s, hangs up after 8 s) in sales, on a desk."""
    token = await live.create_agent("9001", "Live Agent", ["sales"], interface="Local/9001@callcore-test-agent/n")
    await live.api("POST", "/api/agents/9001/login", token=token, expect=200)
    await eventually(lambda: live.cti.state.agents["9001"].logged_in, 10, "QueueMemberAdded from Asterisk")
    return await live.desk(token)


async def place_test_call(live, script: str, **variables: str) -> None:
    """A [callcore-test-caller] caller into the IVR (``press3``: presses 3 = sales at the main menu)."""
    await live.container.ami.send(
        act.originate(
            f"Local/{script}@callcore-test-caller",
            context="ivr-in",
            exten="15881234",
            caller_id='"홍길동" <01012345678>',
            variables={"CALLCORE_TEST_DELAY": os.environ.get("CALLCORE_LIVE_DTMF_DELAY", "6"), **variables},
        )
    )


async def test_live_call_through_ivr_to_an_agent_pop(live):
    desk = await live_agent_desk(live)
    await place_test_call(live, "press3")
    pop = await desk.wait_for("call.ringing", timeout=40)
    assert pop["payload"]["caller_num"] == "01012345678"
    assert pop["payload"]["caller_name"] == "홍길동"  # UTF-8 intact from a real Asterisk
    assert pop["payload"]["queue"] == "sales"
    call_id = pop["payload"]["call_id"]
    await desk.wait_for("call.answered", timeout=15, call_id=call_id)
    await desk.wait_for("call.ended", timeout=40, call_id=call_id)

    async def stored():
        return await live.cti.repository.get_call(call_id)

    record = None
    for _ in range(100):
        record = await stored()
        if record:
            break
        await asyncio.sleep(0.1)
    assert record and record["agent_id"] == "9001" and record["ivr_context"]["flow"] == "main"


async def test_live_post_call_survey_answers_land_on_the_call(live):
    """Issue 9 item 4 on a real Asterisk: the test agent hangs up first, ``[queue-entry]`` sends the
    caller to ``[survey]`` (``AGI(…/ivr?flow=${IVR_SURVEY_FLOW})``), the caller answers 4 and 1."""
    desk = await live_agent_desk(live)
    await place_test_call(live, "survey341", CALLCORE_TEST_SURVEY_AT=os.environ.get("CALLCORE_LIVE_SURVEY_AT", "18"))
    pop = await desk.wait_for("call.ringing", timeout=40)
    call_id = pop["payload"]["call_id"]  # the Linkedid = the caller ;1's Uniqueid (the IVR's channel)
    deadline = asyncio.get_running_loop().time() + 90  # the agent talks 8 s, then the survey
    got: dict = {}
    while len(got) < 2 and asyncio.get_running_loop().time() < deadline:
        session = await live.api("GET", f"/api/ivr/sessions/{call_id}")
        got = {a["question"]: a["answer"] for a in (session or {}).get("survey") or []}
        await asyncio.sleep(0.2)
    assert got == {"satisfaction": 4, "resolved": 1}
