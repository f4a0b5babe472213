"""The reports screen in a real browser: a supervisor picks a day and an interval and sees the
KPI table and the charts (service level, ASA, AHT, abandon, FCR, CSAT, recording and QA
coverage, QA score) — every number drawn is the one the report API gives, and the CSV links
download the same reports."""

from __future__ import annotations

import pytest

from tests.browser.conftest import sign_in
from tests.browser.test_desk_and_wallboard import wait_text
from tests.unit.reports import dataset as ds

CHARTED = ["service_level_pct", "asa_seconds", "aht_seconds", "abandon_rate_pct", "fcr_repeat_pct", "csat_pct",
           "recorded_pct", "qa_coverage_pct", "qa_avg_score"]


@pytest.fixture
def server_overrides():
    return {"report_timezone": "Asia/Seoul"}


async def test_supervisor_reads_the_kpis_and_charts_of_a_day(server, open_tab):
    s = server
    await s.container.reports.repository.add_facts(ds.facts())  # the hand-computed day (tests/unit/reports)
    await s.create_agent("7001", "박팀장", ["sales"], role="supervisor")
    day = {"from": "2026-12-02", "to": "2026-12-03"}
    q = "&".join(f"{k}={v}" for k, v in day.items())
    api_queues = {r["queue"]: r for r in (await s.api("GET", f"/api/reports/queues?{q}"))["rows"]}
    api_quality = {r["key"]: r for r in (await s.api("GET", f"/api/reports/quality?{q}&by=queue"))["rows"]}
    api_surveys = {r["key"]: r for r in (await s.api("GET", f"/api/reports/surveys?{q}&by=queue"))["rows"]}
    hourly = (await s.api("GET", f"/api/reports/queues?{q}&interval=hour"))["rows"]
    hourly_quality = (await s.api("GET", f"/api/reports/quality?{q}&by=queue&interval=hour"))["rows"]

    tab = await open_tab("reports")
    await sign_in(tab, "7001", "4321")
    page = tab.page
    await page.click("nav a[href='#/reports']")
    await page.wait_for_selector("#rep-form")
    await page.fill("#rep-from", "2026-12-02")
    await page.fill("#rep-to", "2026-12-02")
    await page.select_option("#rep-interval", "hour")
    await page.click("#rep-show")
    await wait_text(tab, "#rep-status", "2026-12-02")
    await page.wait_for_selector("#rep-kpis tr[data-queue='sales']")

    # the table: the API's numbers, queue by queue
    cells = await page.eval_on_selector_all(
        "#rep-kpis td", "tds => tds.map(td => [td.closest('tr').dataset.queue, td.dataset.metric, td.dataset.value])")
    table = {(qn, m): v for qn, m, v in cells}
    for queue in ("sales", "support"):
        want = {**api_queues[queue], **api_quality[queue], "csat_pct": api_surveys[queue]["csat_pct"]}
        for metric in ["offered", "answered", *CHARTED]:
            got = table[(queue, metric)]
            assert got == ("" if want[metric] is None else str(want[metric]).removesuffix(".0")) or float(got) == want[metric], (
                queue, metric, got, want[metric])
    assert table[("sales", "service_level_pct")] == "50" and table[("sales", "recorded_pct")] == "40"
    assert table[("sales", "qa_avg_score")] == "90" and table[("support", "qa_avg_score")] == "0"
    assert "50%" in await page.inner_text("#rep-kpis tr[data-queue='sales']")

    # the charts: one per KPI, each point the API's value for that hour and queue
    for metric in CHARTED:
        await page.wait_for_selector(f"#chart-{metric}")
    points = await page.eval_on_selector_all(
        "#rep-charts circle", "cs => cs.map(c => [c.closest('svg').id, c.dataset.series, c.dataset.x, Number(c.dataset.value)])")
    drawn = {(chart, series, x): v for chart, series, x, v in points}
    for row in hourly + hourly_quality:
        queue = row.get("queue") or row.get("key")
        x = row["interval_start"][11:16]
        for metric in CHARTED:
            if metric in row and row[metric] is not None:
                assert drawn.get((f"chart-{metric}", queue, x)) == row[metric], (metric, queue, x)
    assert drawn[("chart-service_level_pct", "sales", "09:00")] == 42.86  # 3 in 20 s of 4 answered + 3 unanswered
    assert drawn[("chart-qa_avg_score", "support", "09:00")] == 0.0
    assert ("chart-recorded_pct", "sales", "10:00") not in drawn  # no call that hour: a gap, not a zero
    # 09:00 and 23:00 are not neighbours: no line joins them (every path is a single point's)
    paths = await page.eval_on_selector_all("#chart-service_level_pct path", "ps => ps.map(p => p.getAttribute('d'))")
    assert paths and all("L" not in d for d in paths), paths
    # staffing: Erlang C's agents needed for the target vs agents logged in, per hour (the API's)
    sales9 = next(r for r in hourly if r["queue"] == "sales" and r["interval_start"][11:16] == "09:00")
    needed = await page.eval_on_selector_all(
        "#chart-staffing circle", "cs => cs.map(c => [c.dataset.series, c.dataset.x, Number(c.dataset.value)])")
    staffing = {(series, x): v for series, x, v in needed}
    assert staffing[("sales · 필요 인원(Erlang C)", "09:00")] == sales9["staffing"]["agents_needed_erlang_c"]
    assert staffing[("sales · 로그인 인원", "09:00")] == sales9["staffing"]["agents_logged_in_avg"]
    # the per-queue comparison of one KPI over the day
    await page.select_option("#rep-compare", "aht_seconds")
    bars = await page.eval_on_selector_all("#chart-compare rect", "rs => rs.map(r => [r.dataset.series, Number(r.dataset.value)])")
    assert dict(bars) == {q: api_queues[q]["aht_seconds"] for q in ("sales", "support")} == {"sales": 98.0, "support": 60.0}
    await tab.shot("reports-day")

    # the CSV links download the reports the page shows
    href = await page.get_attribute("#csv-quality", "href")
    csv = await page.evaluate("async (u) => (await fetch(u)).text()", href)
    assert csv.splitlines()[0].startswith("interval_start,interval_end,by,key,handled_calls")
    assert any(",queue,sales,4,3,2,1,0,50.00,66.67," in line for line in csv.splitlines()), csv

    # English, the same numbers
    await page.select_option("#lang", "en")
    await wait_text(tab, "#rep-form h2", "Reports")
    await page.fill("#rep-from", "2026-12-02")
    await page.fill("#rep-to", "2026-12-02")
    await page.click("#rep-show")
    await wait_text(tab, "#rep-kpis thead", "Service level")
    cell = "#rep-kpis tr[data-queue='sales'] td[data-metric='service_level_pct']"
    # the header is drawn before the day's rows arrive: wait for the rows, then read the figure
    await page.wait_for_function("(sel) => { const c = document.querySelector(sel); return c && c.dataset.value !== ''; }", arg=cell)
    assert await page.get_attribute(cell, "data-value") == "50"
