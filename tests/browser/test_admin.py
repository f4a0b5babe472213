"""Admin / ops screens in a real browser: an admin changes a dialplan, compares the two
versions, sees the checker result and the flow graph, and rolls the dialplan back; agents,
pause reasons and queue settings are edited from the page."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.browser.conftest import sign_in
from tests.browser.test_desk_and_wallboard import text, wait_text
from tests.e2e.conftest import ROOT, eventually


@pytest.fixture
def server_overrides(tmp_path: Path):
    plans = tmp_path / "dialplans"
    shutil.copytree(ROOT / "dialplans", plans)
    return {"dialplans_dir": plans}


async def test_admin_compares_versions_and_rolls_a_dialplan_back(server, open_tab):
    s = server
    await s.create_agent("9001", "최관리", ["sales"], role="admin")
    plans = Path(s.container.settings.dialplans_dir)
    first = (await s.api("GET", "/api/dialplans"))["active"]["main"]

    tab = await open_tab("admin")
    await sign_in(tab, "9001", "4321")
    await tab.page.wait_for_selector("#versions")
    await tab.page.wait_for_selector("#graph-img")
    assert "ARS 시나리오" in await text(tab, "#admin-body")
    # the graph is a real SVG rendered by Graphviz on the server, shown in the page
    size = await tab.page.eval_on_selector("#graph-img", "img => [img.naturalWidth, img.naturalHeight]")
    assert size[0] > 200 and size[1] > 200, size
    await tab.shot("admin-dialplans")

    # a new version arrives on disk; the admin reloads it from the page
    main = plans / "main.yaml"
    main.write_text(main.read_text(encoding="utf-8").replace('label: {ko: "요금 문의", en: "Billing"}', 'label: {ko: "요금 안내", en: "Billing info"}'), encoding="utf-8")
    await tab.page.click("#btn-reload")
    await tab.page.wait_for_selector(f'#versions tr[data-hash="{first}"] [data-action="activate"]')
    second = (await s.api("GET", "/api/dialplans"))["active"]["main"]
    assert second != first
    await wait_text(tab, "#last-reload", "검사 통과")

    # the diff between the two versions
    await tab.page.select_option("#diff-a", first)
    await tab.page.select_option("#diff-b", second)
    await tab.page.click("#btn-diff")
    await wait_text(tab, "#diff-out", "요금 안내")
    diff = await text(tab, "#diff-out")
    assert '-    label: {ko: "요금 문의", en: "Billing"}' in diff and '+    label: {ko: "요금 안내", en: "Billing info"}' in diff

    # the checker result of the old version, then roll back to it (keyboard: focus + Enter)
    await tab.page.click(f'#versions tr[data-hash="{first}"] button:not([data-action])')
    await wait_text(tab, "#check-result", "검사 통과")
    await tab.shot("admin-diff-and-check")
    await tab.page.focus(f'#versions tr[data-hash="{first}"] [data-action="activate"]')
    await tab.page.keyboard.press("Enter")
    await tab.page.wait_for_selector(f'#versions tr.active[data-hash="{first}"]')
    assert (await s.api("GET", "/api/dialplans"))["active"]["main"] == first
    assert s.container.ivr.registry.current.versions["main"] == first  # what the next caller hears

    # agents: create one with skills, reset a PIN
    await tab.page.click("#tab-agents")
    await tab.page.wait_for_selector("#new-agent")
    await tab.page.fill("#new-agent-id", "1003")
    await tab.page.fill("#new-agent-name", "정상담")
    await tab.page.fill("#new-agent-interface", "PJSIP/1003")
    await tab.page.fill('#new-agent input[placeholder="sales, billing:1"]', "sales, billing:2")
    await tab.page.fill('#new-agent input[type="password"]', "5555")
    await tab.page.click('#new-agent button[type="submit"]')
    await tab.page.wait_for_selector('#agents-table tr[data-agent="1003"]')
    agent = await s.api("GET", "/api/agents/1003")
    assert agent["name"] == "정상담" and {(k["queue"], k["penalty"]) for k in agent["skills"]} == {("sales", 0), ("billing", 2)}
    row = '#agents-table tr[data-agent="1003"]'
    await tab.page.fill(f'{row} input[type="password"]', "7777")
    await tab.page.click(f"{row} >> text=PIN 재설정")
    await tab.page.wait_for_selector(".toast.ok >> text=PIN을 재설정했습니다")
    await s.token_for("1003", "7777")  # the new PIN signs in
    await tab.shot("admin-agents")

    # pause reasons and queue settings
    await tab.page.click("#tab-pause")
    await tab.page.fill("#new-reason", "coaching")
    await tab.page.fill("#new-reason-label", "코칭")
    await tab.page.press("#new-reason-label", "Enter")
    await wait_text(tab, "#reason-list", "coaching")
    assert "coaching" in await s.api("GET", "/api/pause-reasons")
    await tab.page.click("#tab-queues")
    form = '[data-queue="sales"] form'
    await tab.page.wait_for_selector(form)
    await tab.page.fill(f"{form} label:has-text('후처리 시간') input", "45")
    await tab.page.click(f"{form} button[type=submit]")
    await eventually(lambda: s.cti.state.settings_for("sales").wrapup_seconds == 45, what="the queue settings saved")
    await tab.shot("admin-queues")


async def test_api_docs_render_offline(server, open_tab):
    tab = await open_tab("docs")
    await tab.page.goto(server.base_url + "/docs")
    await tab.page.wait_for_selector(".swagger-ui .info .title")
    assert "callcore" in await tab.page.inner_text(".swagger-ui .info .title")
    await tab.page.wait_for_selector(".opblock-tag-section")  # the operations, grouped by tag
    await tab.shot("api-docs")

