"""Every screen is keyboard reachable (issue 14, "keyboard reachable"): an admin who is also an
agent opens each screen the nav offers — admin, wallboard, desk, QA, reports — and on each:

* every visible element the page gave a click handler (recorded by wrapping
  ``addEventListener`` before the app's code runs) is a native control that is not disabled, or
  has a ``tabindex`` of 0 or more, or is a container of such controls (a click delegated to its
  children): no mouse-only control;
* pressing Tab from the top reaches every visible focusable control of the screen, in a cycle
  that comes back to the start (no control skipped, no keyboard trap).

Korean text is checked on each screen (the nav and the screen's heading are in Korean).
"""

from __future__ import annotations

from tests.browser.conftest import sign_in
from tests.browser.test_desk_and_wallboard import text

#: before the app's modules run: remember every element that gets a click listener
RECORD_CLICKABLES = """
(() => {
  const clickables = new Set();
  window.__clickables = clickables;
  const add = EventTarget.prototype.addEventListener;
  EventTarget.prototype.addEventListener = function (type, fn, opts) {
    if (type === "click" && this instanceof Element) clickables.add(this);
    return add.call(this, type, fn, opts);
  };
})();
"""

#: the visible, keyboard-focusable controls of the page and the click-only offenders
SURVEY = """
() => {
  const FOCUSABLE = "a[href], button, input, select, textarea, summary, audio[controls], [tabindex]";
  const visible = (el) => el.isConnected && el.getClientRects().length > 0 && getComputedStyle(el).visibility !== "hidden";
  const focusable = (el) => el.matches(FOCUSABLE) && !el.disabled && el.tabIndex >= 0 && !el.closest("[inert]");
  const label = (el) => `${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""}.${el.className || ""} "${(el.textContent || "").trim().slice(0, 30)}"`;
  const offenders = [...window.__clickables].filter((el) => visible(el) && !el.disabled && !focusable(el)
      && !el.querySelector(FOCUSABLE)).map(label);
  const controls = [...document.querySelectorAll(FOCUSABLE)].filter((el) => visible(el) && focusable(el));
  controls.forEach((el, i) => { el.dataset.kbd = String(i); });
  return { offenders, count: controls.length, labels: controls.map(label) };
}
"""


async def _tab_cycle(page, count: int) -> set[str]:
    """Press Tab from the top of the page until focus comes back round; the controls reached."""
    await page.evaluate("() => { document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); }")
    reached: list[str | None] = []
    for _ in range(count + 30):  # out of the page and back in may take a few presses (the browser's own stops)
        await page.keyboard.press("Tab")
        reached.append(await page.evaluate("() => document.activeElement ? (document.activeElement.dataset.kbd ?? null) : null"))
        if len(reached) > 1 and reached[-1] is not None and reached[-1] == next((r for r in reached if r is not None), None):
            break
    return {r for r in reached if r is not None}


async def _check_screens(tab) -> list[str]:
    page = tab.page
    await page.wait_for_selector("nav a")
    screens = await page.eval_on_selector_all("nav a", "links => links.map((a) => a.getAttribute('href'))")
    for href in screens:
        await page.click(f"nav a[href='{href}']")
        await page.wait_for_function("(h) => location.hash === h", arg=href)
        await page.wait_for_timeout(600)  # the screen's first render and its data
        survey = await page.evaluate(SURVEY)
        assert survey["offenders"] == [], f"{href}: clickable but not keyboard-focusable: {survey['offenders']}"
        assert survey["count"] > 0, href
        reached = await _tab_cycle(page, survey["count"])
        missed = [lbl for i, lbl in enumerate(survey["labels"]) if str(i) not in reached]
        assert missed == [], f"{href}: Tab never reaches {missed} (reached {sorted(reached, key=int)} of {survey['count']})"
        assert any("\uac00" <= ch <= "\ud7a3" for ch in await text(tab, "body")), f"{href}: no Korean text"
    return screens


async def test_every_screen_is_reachable_by_keyboard_alone(server, open_tab):
    s = server
    await s.create_agent("9001", "최관리", ["sales"], role="admin")
    await s.create_agent("1001", "김상담", ["sales"])
    seen: set[str] = set()
    for agent_id in ("9001", "1001"):  # the admin's screens, then the agent's desk and evaluations
        tab = await open_tab(f"keyboard-{agent_id}")
        await tab.page.add_init_script(RECORD_CLICKABLES)
        await tab.page.reload()
        await sign_in(tab, agent_id, "4321")
        seen |= set(await _check_screens(tab))
    assert {"#/admin", "#/wallboard", "#/agent", "#/qa", "#/reports"} <= seen, seen
