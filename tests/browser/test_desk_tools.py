"""The rest of the desk and the wallboard's actions in a real browser: pause with a reason,
an abandoned call on the wallboard turned into a callback the agent takes and dials, hang up
from the page, customer search / edit / click-to-call, a supervisor listening in, and a
force logout — all against the whole server and the PBX emulator."""

from __future__ import annotations

from tests.browser.conftest import sign_in
from tests.browser.test_desk_and_wallboard import text, wait_text
from tests.e2e.conftest import eventually

CALLER = "01077778888"


def originates(pbx) -> list[dict[str, str]]:
    out = []
    for name, frame in pbx.ami.actions:
        if name.lower() == "originate":
            d: dict[str, str] = {}
            for k, v in frame:
                d.setdefault(k, v)
            out.append(d)
    return out


async def test_abandoned_call_back_customer_click_to_call_listen_and_force_logout(server, open_tab):
    s, pbx = server, server.pbx
    await s.create_agent("1001", "김상담", ["sales"])
    await s.create_agent("2001", "박팀장", ["sales"], role="supervisor")
    customer = await s.api("POST", "/api/customers", expect=201, json={"name": "강고객", "phone": CALLER, "vip": True})

    agent = await open_tab("agent")
    await sign_in(agent, "1001", "4321")
    await agent.page.click("#btn-login")
    await wait_text(agent, "#my-state", "대기")
    phone = pbx.agent("1001", manual=True)
    # pause with a configured reason (labels from web/config.yaml)
    reasons = await agent.page.eval_on_selector_all("#pause-reason option", "els => els.map(e => [e.value, e.textContent])")
    assert ["lunch", "점심"] in reasons
    await agent.page.select_option("#pause-reason", "lunch")
    await agent.page.click("#btn-pause")
    await wait_text(agent, "#my-state", "휴식")
    await wait_text(agent, "#status", "점심")
    assert s.cti.state.agents["1001"].pause_reason == "lunch"

    sup = await open_tab("supervisor")
    await sign_in(sup, "2001", "4321")
    await wait_text(sup, '#agents-grid tr[data-agent="1001"]', "점심")

    # --- a caller waits in sales (the only agent is at lunch) and gives up
    call = await pbx.dial(CALLER, name="강고객", exten="sales", context="queue-direct")
    await call.wait_for_queue("sales")
    await wait_text(sup, "#waiting", CALLER)
    await call.hangup()
    await wait_text(sup, "#abandoned", CALLER)
    # the tile shows CTI's count (a very short wait is a "short abandon" there, not counted);
    # the list shows every abandoned caller, to call back
    sales = next(q for q in s.cti.queues.queue_views() if q["queue"] == "sales")
    assert sales["abandoned_today"] + sales.get("short_abandoned_today", 0) == 1
    await wait_text(sup, '.tile[data-queue="sales"] [data-metric="abandoned_today"] .value', str(sales["abandoned_today"]))
    await sup.shot("wallboard-abandoned")
    await sup.page.click("#abandoned button")
    await sup.page.wait_for_selector(".toast.ok")

    # the callback task reaches the agent's list live; the agent takes it and calls back
    await wait_text(agent, "#callback-list", CALLER)
    await agent.page.click("#callback-list button")  # 맡기
    await wait_text(agent, "#callback-list", "담당")
    await agent.page.click("#callback-list button.primary")  # 전화 걸기
    await eventually(lambda: originates(pbx), what="the callback's Originate")
    orig = originates(pbx)[-1]
    assert (orig["Channel"], orig["Exten"]) == ("Local/1001@agents", CALLER)
    await phone.wait_ringing()
    await phone.answer()
    await wait_text(agent, "#pop-name", "강고객")
    assert "VIP" in await text(agent, "#pop")
    assert await text(agent, "#pop-queue") == "콜백"

    # the supervisor listens in from the agents grid (ChanSpy to the supervisor's phone)
    await wait_text(sup, '#agents-grid tr[data-agent="1001"]', "통화 중")
    await sup.page.click('#agents-grid tr[data-agent="1001"] >> text=감청')
    await sup.page.wait_for_selector(".toast.ok >> text=감청을 시작합니다")
    spy = originates(pbx)[-1]
    assert spy["Application"] == "ChanSpy" and spy["Channel"] == "Local/2001@agents"
    await agent.shot("agent-callback-call")

    # hang up from the page: the after-call form follows
    await agent.page.click("#btn-hangup")
    await agent.page.wait_for_selector("#disp-form")
    await agent.page.click("#disp-form >> text=건너뛰기")
    await agent.page.wait_for_selector("#disp-form", state="detached")

    # --- customers: search, edit, click-to-call. An agent finds only the customers of their own
    # calls (security, issue 11): the callback call must be in the store first.
    for _ in range(500):
        if customer["id"] in await s.cti.repository.customer_ids_of_agent("1001"):
            break
        await pbx.sleep(1)
    await agent.page.fill("#cust-q", "강고")
    await agent.page.press("#cust-q", "Enter")
    await wait_text(agent, "#customer-list", CALLER)
    await agent.page.click("#customer-list >> text=수정")
    await agent.page.fill("#customer-form input >> nth=3", "콜코어물산")
    await agent.page.click('#customer-form button[type="submit"]')
    await wait_text(agent, "#customer-list", "콜코어물산")
    assert (await s.api("GET", f"/api/customers/{customer['id']}"))["company"] == "콜코어물산"
    await agent.shot("agent-customers")
    before = len(originates(pbx))
    await agent.page.click("#customer-list button.primary")  # 전화
    await eventually(lambda: len(originates(pbx)) > before, what="the click-to-call Originate")
    c2c = originates(pbx)[-1]
    assert (c2c["Channel"], c2c["Exten"]) == ("Local/1001@agents", CALLER)
    await phone.wait_ringing()
    await phone.answer()
    await wait_text(agent, "#pop-queue", "발신 통화")
    await wait_text(agent, "#pop-name", "강고객")
    await phone.hangup()
    await agent.page.wait_for_selector("#disp-form")

    # --- force pause from the wallboard with a reason chosen while the grid kept updating
    await agent.page.wait_for_selector("#btn-ready")  # still at lunch (the calls were placed during the pause)
    await agent.page.click("#btn-ready")
    await wait_text(agent, "#my-state", "대기")
    await wait_text(sup, '#agents-grid tr[data-agent="1001"]', "대기")
    await sup.page.select_option("#reason-1001", "meeting")
    updates = s.container.web.updates
    await eventually(lambda: s.container.web.updates >= updates + 2, what="two wallboard pushes")
    await sup.page.click("#force-pause-1001")
    await wait_text(agent, "#my-state", "휴식")
    await eventually(lambda: s.cti.state.agents["1001"].pause_reason == "meeting", what="paused for a meeting")

    # --- force logout from the wallboard: the desk shows it
    await sup.page.click('#agents-grid tr[data-agent="1001"] >> text=강제 로그아웃')
    await wait_text(agent, "#my-state", "로그아웃")
    await wait_text(sup, '#agents-grid tr[data-agent="1001"]', "로그아웃")
