"""Hot reload, versions, rollback, file watch and SIGHUP."""

from __future__ import annotations

import asyncio
import time

import pytest

from ivr.console import ConsoleChannel
from ivr.engine import Engine
from ivr.registry import FlowRegistry, content_hash
from ivr.repository import MemoryIvrRepository

from .helpers import TUESDAY_10, call_info, heard

V1 = """languages: [ko]
start: m
nodes:
  m: {type: menu, prompt: menu_v1, options: {"1": q}, on_fail: q}
  q: {type: queue, queue: sales, prompt: connecting_v1}
"""
V2 = V1.replace("_v1", "_v2")
BROKEN = V1.replace("on_fail: q", "on_fail: qq")


async def poll(predicate, timeout=5.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def plans(tmp_path):
    d = tmp_path / "plans"
    d.mkdir()
    (d / "main.yaml").write_text(V1, encoding="utf-8")
    return d


def registry(plans, **kw):
    return FlowRegistry(plans, check_sounds=False, store=MemoryIvrRepository(), **kw)


async def test_reload_swaps_and_stores_versions(plans):
    reg = registry(plans)
    r1 = await reg.reload()
    assert r1.ok and r1.changed == {"main": content_hash(V1, {})}
    (plans / "main.yaml").write_text(V2, encoding="utf-8")
    r2 = await reg.reload()
    assert r2.ok and r2.changed == {"main": content_hash(V2, {})}
    versions = await reg.versions("main")
    assert [(v.hash, v.active) for v in versions] == [(content_hash(V1, {}), False), (content_hash(V2, {}), True)]
    r3 = await reg.reload()
    assert r3.ok and r3.changed == {}


async def test_rejected_reload_keeps_previous_version(plans):
    reg = registry(plans)
    await reg.reload()
    before = reg.current
    (plans / "main.yaml").write_text(BROKEN, encoding="utf-8")
    result = await reg.reload("test")
    assert not result.ok
    assert result.errors == [f"{plans}/main.yaml:4:64: menu 'm': after last try goes to 'qq' which is not defined (did you mean 'q'?)"]
    assert reg.current is before
    assert result.versions == {"main": content_hash(V1, {})}


class ScriptedCaller:
    """An interactive console caller whose key presses the test feeds one by one."""

    def __init__(self):
        self.keys: asyncio.Queue[str] = asyncio.Queue()
        self.waiting = 0

    async def reader(self, prompt: str) -> str:
        self.waiting += 1
        return await self.keys.get()


async def test_call_in_progress_keeps_its_version_across_hot_reload(plans):
    reg = registry(plans)
    await reg.reload()
    caller = ScriptedCaller()
    ch = ConsoleChannel(call_info(), interactive=True, reader=caller.reader)
    flowset = reg.current
    engine = Engine(flowset.flows, versions=flowset.versions, clock=lambda: TUESDAY_10)
    task = asyncio.create_task(engine.run(ch, "main"))
    try:
        await poll(lambda: caller.waiting == 1, what="the call to wait in the menu")
        (plans / "main.yaml").write_text(V2, encoding="utf-8")
        assert (await reg.reload("edit during call")).ok
        # a new call gets v2
        ch2 = ConsoleChannel(call_info(), ["1"])
        new = await Engine(reg.current.flows, versions=reg.current.versions, clock=lambda: TUESDAY_10).run(ch2, "main")
        assert heard(ch2) == ["ko/menu_v2", "ko/connecting_v2"]
        assert new.version == content_hash(V2, {})
        caller.keys.put_nowait("1")
        old = await asyncio.wait_for(task, 5)
    finally:
        task.cancel()
    assert heard(ch) == ["ko/menu_v1", "ko/connecting_v1"]
    assert old.version == content_hash(V1, {}) and old.context["version"] == content_hash(V1, {})


async def test_rollback_by_hash_prefix_and_pin_until_file_changes(plans):
    reg = registry(plans)
    await reg.reload()
    h1 = content_hash(V1, {})
    (plans / "main.yaml").write_text(V2, encoding="utf-8")
    await reg.reload()
    result = await reg.rollback("main", h1[:8])
    assert result.ok and reg.current.versions["main"] == h1
    # a reload with the file unchanged keeps the rollback
    assert (await reg.reload("other file touched")).ok
    assert reg.current.versions["main"] == h1
    # editing the file again takes the new content
    v3 = V2.replace("_v2", "_v3")
    (plans / "main.yaml").write_text(v3, encoding="utf-8")
    await reg.reload()
    assert reg.current.versions["main"] == content_hash(v3, {})
    bad = await reg.rollback("main", "abcdef")
    assert not bad.ok and "no stored version" in bad.errors[0]


async def test_rollback_from_store_after_restart(plans):
    store = MemoryIvrRepository()
    reg = FlowRegistry(plans, check_sounds=False, store=store)
    await reg.reload()
    (plans / "main.yaml").write_text(V2, encoding="utf-8")
    await reg.reload()
    restarted = FlowRegistry(plans, check_sounds=False, store=store)
    await restarted.reload()
    assert restarted.current.versions["main"] == content_hash(V2, {})
    result = await restarted.rollback("main", content_hash(V1, {}))
    assert result.ok
    assert restarted.current.flows["main"].nodes["m"].args["prompt"].by_lang["*"] == ("menu_v1",)


async def test_holiday_file_change_is_a_new_version(tmp_path):
    d = tmp_path / "plans"
    (d / "holidays").mkdir(parents=True)
    (d / "holidays" / "h.yaml").write_text("holidays:\n  - {date: 2026-12-25, name: X}\n")
    (d / "main.yaml").write_text(
        "start: h\nschedules:\n  s: {timezone: Asia/Seoul, weekly: {mon-fri: '09:00-18:00'}, holidays: [holidays/h.yaml]}\n"
        "nodes:\n  h: {type: hours, schedule: s, open: x, closed: x}\n  x: {type: hangup}\n"
    )
    reg = FlowRegistry(d, check_sounds=False)
    await reg.reload()
    h1 = reg.current.versions["main"]
    (d / "holidays" / "h.yaml").write_text("holidays:\n  - {date: 2026-12-24, name: Y}\n")
    result = await reg.reload()
    assert result.ok and result.changed["main"] != h1
    (d / "holidays" / "h.yaml").write_text("holidays: nope\n")
    bad = await reg.reload()
    assert not bad.ok and "a holiday file is a mapping with a 'holidays' list" in bad.errors[0]
    assert reg.current.versions["main"] == result.changed["main"]


async def test_file_watch_reloads_and_rejects(plans):
    reg = registry(plans, watch=True, watch_debounce_ms=50)
    await reg.start()
    try:
        assert reg.reloads == 1
        await asyncio.sleep(0.2)  # let the watcher arm (awatch starts asynchronously)
        (plans / "main.yaml").write_text(V2, encoding="utf-8")
        await poll(lambda: reg.current.versions["main"] == content_hash(V2, {}), what="watch reload")
        (plans / "main.yaml").write_text(BROKEN, encoding="utf-8")
        await poll(lambda: reg.last_result is not None and not reg.last_result.ok, what="rejected reload")
        assert reg.current.versions["main"] == content_hash(V2, {})
    finally:
        await reg.stop()
    assert not reg._reloader.watching


async def test_requested_reload_is_an_owned_task(plans):
    """What the server's SIGHUP handler calls (the signal itself: tests/unit/callcore/test_serve.py)."""
    reg = registry(plans)
    await reg.reload()
    try:
        (plans / "main.yaml").write_text(V2, encoding="utf-8")
        task = reg.request_reload("SIGHUP")
        await poll(lambda: reg.current.versions["main"] == content_hash(V2, {}), what="SIGHUP reload")
        assert reg.last_result.reason == "SIGHUP" and task.done()
    finally:
        await reg.stop()
