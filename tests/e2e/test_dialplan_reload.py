"""Hot reload on a live server: an ops engineer edits `dialplans/main.yaml` while callers
are in the IVR. Calls in progress finish on the version they started with; new calls
get the new version; a broken edit is rejected with line:column errors and the last
good version keeps serving; a rollback through the API restores an earlier version."""

from __future__ import annotations

import shutil

import pytest

from tests.e2e.conftest import ROOT, eventually, expect_prompt, press_when_listening


@pytest.fixture
def pbx_overrides():
    # 1/5 of real time: the main menu's 5 s timeout lasts 1 s here, time enough for the
    # file watcher (300 ms debounce) to reload while caller A is still in the menu
    return {"time_scale": 0.2}


@pytest.fixture
def server_overrides(tmp_path):
    plans = tmp_path / "plans"
    shutil.copytree(ROOT / "dialplans", plans)
    return {"dialplans_dir": plans, "dialplan_watch": True}


def _edit(path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


async def _to_main_menu(pbx, number: str):
    call = await pbx.dial(number, exten="15881234", context="ivr-in")
    await expect_prompt(call, "main_menu", timeout=10)
    return call


async def test_edit_during_a_call_broken_edit_and_rollback(server):
    s = server
    pbx = s.pbx
    main_yaml = s.container.settings.dialplans_dir / "main.yaml"
    listing = await s.api("GET", "/api/dialplans", expect=200)
    v1 = listing["active"]["main"]

    # caller A is listening to the main menu of version 1
    a = await _to_main_menu(pbx, "01011110001")

    # the ops engineer sends "1" straight to sales (version 2); the file watcher reloads
    _edit(main_yaml, '      "1": billing_menu\n', '      "1": set_sales\n      "4": billing_menu\n')

    async def active_main():
        return (await s.api("GET", "/api/dialplans", expect=200))["active"]["main"]

    v2 = None
    for _ in range(100):
        v2 = await active_main()
        if v2 != v1:
            break
        await a.wait(0.1)
    assert v2 != v1, "the file watcher did not load the edited flow"

    # A's call keeps version 1: "1" still opens the billing menu
    await press_when_listening(a, "1")
    await expect_prompt(a, "billing_menu")
    await press_when_listening(a, "2")
    await a.wait_for_queue("billing", timeout=10)

    # a new caller gets version 2: "1" goes straight to the sales queue
    b = await _to_main_menu(pbx, "01011110002")
    await press_when_listening(b, "1")
    await b.wait_for_queue("sales", timeout=10)

    sa = await s.api("GET", f"/api/ivr/sessions/{a.uniqueid}", expect=200)
    sb = await s.api("GET", f"/api/ivr/sessions/{b.uniqueid}", expect=200)
    assert sa["version_hash"] == v1 and sb["version_hash"] == v2

    # a broken edit is rejected with file:line:column errors; version 2 keeps serving
    _edit(main_yaml, '      "3": set_sales\n', '      "3": set_salez\n')
    reload = await s.http.post("/api/dialplans/reload", headers={"Authorization": "Bearer e2e-admin-token"})
    assert reload.status_code == 422
    errors = reload.json()["errors"]
    assert any(e.startswith(f"{main_yaml}:") and "'set_salez'" in e for e in errors), errors
    line, col = next(e for e in errors if "'set_salez'" in e).split(":")[1:3]
    assert main_yaml.read_text(encoding="utf-8").splitlines()[int(line) - 1][int(col) - 1 :].startswith("set_salez")
    assert await active_main() == v2
    c = await _to_main_menu(pbx, "01011110003")
    await press_when_listening(c, "1")
    await c.wait_for_queue("sales", timeout=10)

    # rollback to version 1 through the API (as `callcore dialplan rollback main <hash>` does)
    await s.api("POST", "/api/dialplans/main/rollback", json={"hash": v1[:12]}, expect=200)
    assert await active_main() == v1
    d = await _to_main_menu(pbx, "01011110004")
    await press_when_listening(d, "1")
    await expect_prompt(d, "billing_menu")
    sd = await s.api("GET", f"/api/ivr/sessions/{d.uniqueid}", expect=200)
    assert sd["version_hash"] == v1
    for call in (a, b, c, d):
        await call.hangup()
    await eventually(lambda: not pbx.channels, 10, "all channels gone")


async def test_caller_hangs_up_in_the_ivr(server):
    """The drop-out point is recorded: the step log ends where the caller left."""
    s = server
    call = await _to_main_menu(s.pbx, "01011110005")
    await call.hangup()

    async def dropped():
        r = await s.http.get(f"/api/ivr/sessions/{call.uniqueid}", headers={"Authorization": "Bearer e2e-admin-token"})
        return r.json() if r.status_code == 200 and r.json().get("outcome") else None

    session = None
    for _ in range(300):
        session = await dropped()
        if session:
            break
        await call.wait(0.5)
    assert session["outcome"] == "caller_hangup"
    assert session["end_node"] == "main:main_menu"
    stats = await s.api("GET", "/api/ivr/stats", expect=200)
    assert {"node": "main:main_menu", "calls": 1} in stats["drop_off"]
