"""The wallboard's KPI tiles and the desk's DTMF keypad and blind transfers, in a real browser.

* KPI tiles: after calls through the PBX emulator (one answered, one abandoned), every figure of
  a queue's KPI row on the supervisor's wallboard — ASA, AHT, abandon rate, service level, and the
  agents needed by Erlang C — equals ``GET /api/reports/queues`` for today up to the moment the
  tiles were computed (and the current 15-minute interval's staffing row), and the page shows
  the figures' age.
* The desk: the agent sends DTMF from the keypad (the emulator receives PlayDTMF), blind-transfers
  to a second agent picked from the directory (a Redirect; the second agent's page pops the same
  call with the same CRM context), who blind-transfers it on to a queue (the caller queues there).
"""

from __future__ import annotations

import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from reports.service import bucket_start
from tests.browser.conftest import sign_in
from tests.browser.test_desk_and_wallboard import tab_to, text, wait_text
from tests.e2e.conftest import eventually

ROOT = Path(__file__).resolve().parents[2]
CALLER = "01033334444"
KPIS = ["asa_seconds", "aht_seconds", "abandon_rate_pct", "service_level_pct"]


@pytest.fixture
def server_overrides(tmp_path):
    cfg = (ROOT / "web" / "config.yaml").read_text(encoding="utf-8")
    assert "kpi_refresh_seconds: 15" in cfg
    path = tmp_path / "web.yaml"
    path.write_text(cfg.replace("kpi_refresh_seconds: 15", "kpi_refresh_seconds: 0.3"), encoding="utf-8")
    return {"web_config": path}


def actions(pbx, name: str) -> list[dict[str, str]]:
    return [dict(f) for a, f in pbx.ami.actions if a == name]


async def kpi(tab, queue: str, name: str) -> str:
    return await tab.page.get_attribute(f'.tile[data-queue="{queue}"] [data-kpi="{name}"]', "data-value")


def num(value: str):
    return None if value in ("", None) else float(value)


async def test_kpi_tiles_are_the_report_stores_figures(server, open_tab):
    s, pbx = server, server.pbx
    tok = await s.create_agent("1001", "김상담", ["sales"])
    await s.create_agent("2001", "박팀장", ["sales"], role="supervisor")
    pbx.agent("1001", answer_after=1, hangup_after=8)
    await s.api("POST", "/api/agents/1001/login", token=tok, expect=200)
    await eventually(lambda: "Local/1001@agents/n" in pbx.queues["sales"].members, what="1001 in sales")

    sup = await open_tab("supervisor")
    await sign_in(sup, "2001", "4321")
    await sup.page.wait_for_selector('.tile[data-queue="sales"] [data-kpi="staffing"]')

    # one answered call, then one caller who gives up while the only agent is paused
    call = await pbx.dial("01011112222", exten="sales", context="queue-direct")
    await call.wait_for_agent(timeout=10)
    await call.wait_for_hangup(timeout=10)
    await eventually(lambda: s.cti.state.agents["1001"].status == "ready", 10, "wrap-up over")
    await s.api("POST", "/api/agents/1001/pause", token=tok, json={"reason": "break"}, expect=200)
    await eventually(lambda: s.cti.state.agents["1001"].paused, what="1001 paused")
    gone = await pbx.dial(CALLER, exten="sales", context="queue-direct")
    await gone.wait_for_queue("sales")
    await pbx.sleep(30)  # not a short abandon
    await gone.hangup()
    await eventually(lambda: not s.cti.state.calls, 10, "calls over")
    await s.cti.idle()
    await s.container.reports.flush()

    # the next KPI refresh after every fact is stored
    stored = time.time()
    await sup.page.wait_for_function(
        "(t) => { const el = document.querySelector('#kpi-age'); return el && Number(el.dataset.at) > t; }",
        arg=stored, timeout=10_000)
    at = float(await sup.page.get_attribute("#kpi-age", "data-at"))
    (today,) = (await s.api("GET", "/api/reports/queues", params={"queue": "sales", "to": at}, expect=200))["rows"]
    assert today["answered"] == 1 and today["abandoned"] == 1 and today["aht_seconds"] > 0
    shown = {name: num(await kpi(sup, "sales", name)) for name in KPIS}
    assert shown == {name: today[name] for name in KPIS}
    assert shown["abandon_rate_pct"] == 50.0
    # the current interval's staffing: the reports' 15-minute row up to the same moment
    slot = bucket_start(at, "15min", ZoneInfo(s.container.settings.report_timezone))
    rows = (await s.api("GET", "/api/reports/queues",
                        params={"queue": "sales", "from": slot, "to": at, "interval": "15min"}, expect=200))["rows"]
    expected = rows[0]["staffing"]["agents_needed_erlang_c"] if rows else None
    assert num(await kpi(sup, "sales", "staffing")) == expected
    logged_in = await sup.page.get_attribute('.tile[data-queue="sales"] [data-kpi="staffing"]', "data-logged-in")
    assert logged_in == "1"
    assert "KPI" in await text(sup, "#kpi-age") and "초 전" in await text(sup, "#kpi-age")
    assert s.container.web.kpi_runs >= 2  # a periodic task, not a computation per event
    # pushed, never polled: the page read the wallboard once (its resync after connecting), never a report
    reads = [u for u in sup.requests if "/api/web/wallboard" in u or "/api/reports" in u]
    assert len(reads) == 1 and reads[0].endswith("/api/web/wallboard"), reads
    await tab_to(sup, "#btn-tv")  # the wallboard's controls are keyboard reachable too
    await sup.shot("wallboard-kpis")


async def test_desk_dtmf_keypad_and_blind_transfers_to_an_agent_and_a_queue(server, open_tab):
    s, pbx = server, server.pbx
    await s.create_agent("1001", "김상담", ["sales"])
    await s.create_agent("1002", "이상담", ["billing"])
    await s.api("POST", "/api/customers", expect=201, json={
        "name": "강고객", "phone": CALLER, "attributes": {"tier": "silver"}})
    tabs = {}
    for agent, name in (("1001", "agent-a"), ("1002", "agent-b")):
        tab = tabs[agent] = await open_tab(name)
        await sign_in(tab, agent, "4321")
        await tab.page.click("#btn-login")
        await wait_text(tab, "#my-state", "대기")
    tab_a, tab_b = tabs["1001"], tabs["1002"]
    phone_a, phone_b = pbx.agent("1001", manual=True), pbx.agent("1002", manual=True)

    call = await pbx.dial(CALLER, name="강고객", exten="sales", context="queue-direct")
    await phone_a.wait_ringing()
    await wait_text(tab_a, "#pop-name", "강고객")
    await phone_a.answer()
    await wait_text(tab_a, "#pop-title", "현재 통화")
    context = {sel: await text(tab_a, sel) for sel in ("#pop-name", "#pop-number", "#pop-tier", "#pop-queue")}
    assert context == {"#pop-name": "강고객", "#pop-number": CALLER, "#pop-tier": "silver", "#pop-queue": "sales"}

    # --- DTMF from the keypad, with the keyboard alone: the digits reach the PBX as PlayDTMF on
    # the customer's channel
    await tab_to(tab_a, "#dtmf-digits")
    await tab_a.page.keyboard.type("12#")
    await tab_a.page.keyboard.press("Tab")
    assert await tab_a.page.evaluate("() => document.activeElement.id") == "btn-dtmf"
    await tab_a.page.keyboard.press("Enter")
    await eventually(lambda: len(actions(pbx, "PlayDTMF")) == 3, what="three PlayDTMF")
    assert [(a["Channel"], a["Digit"]) for a in actions(pbx, "PlayDTMF")] == [
        (call.channel, "1"), (call.channel, "2"), (call.channel, "#")]
    await tab_a.page.wait_for_selector(".toast.ok")

    # --- blind transfer to agent B, picked from the directory
    await tab_a.page.select_option("#xfer-type", "agent")
    options = await tab_a.page.eval_on_selector_all("#xfer-list option", "els => els.map(e => [e.value, e.label || e.textContent])")
    assert any(v == "1002" and "이상담" in label for v, label in options), options
    await tab_a.page.fill("#xfer-target", "1002")
    await tab_a.shot("agent-a-blind-transfer")
    await tab_a.page.click("#btn-blind")
    redirect = await eventually(lambda: next((a for a in actions(pbx, "Redirect") if a.get("Context") == "transfer"), None),
                                what="the blind transfer's Redirect")
    assert (redirect["Channel"], redirect["Exten"]) == (call.channel, "1002")
    await wait_text(tab_a, "#my-state", "후처리")  # A is released at once
    # B's page pops the same call with the same context
    await phone_b.wait_ringing()
    await wait_text(tab_b, "#pop-name", "강고객")
    await phone_b.answer()
    await wait_text(tab_b, "#pop-title", "현재 통화")
    assert {sel: await text(tab_b, sel) for sel in context} == context
    await tab_b.shot("agent-b-after-blind-transfer")

    # --- B blind-transfers the caller on to the billing queue, typed from the picker's queue list
    await tab_b.page.select_option("#xfer-type", "queue")
    queues = await tab_b.page.eval_on_selector_all("#xfer-list option", "els => els.map(e => e.value)")
    assert {"sales", "billing"} <= set(queues), queues
    await tab_b.page.fill("#xfer-target", "billing")
    await tab_b.page.click("#btn-blind")
    await eventually(lambda: len([a for a in actions(pbx, "Redirect") if a.get("Context") == "transfer"]) == 2,
                     what="the second Redirect")
    second = [a for a in actions(pbx, "Redirect") if a.get("Context") == "transfer"][-1]
    assert (second["Channel"], second["Exten"]) == (call.channel, "billing")
    await call.wait_for_queue("billing", timeout=10)
    await wait_text(tab_b, "#my-state", "후처리")
    await call.hangup()
