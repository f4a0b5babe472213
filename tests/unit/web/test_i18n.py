"""The one translation table (web/static/core/i18n.js) covers every key the screens use, in
Korean and in English: a missing key would show as its bare name on the page."""

from __future__ import annotations

import re
from pathlib import Path

STATIC = Path(__file__).resolve().parents[3] / "web" / "static"
#: keys built at run time from a prefix + a server value (status, outcome, ...) and the values the server sends
DYNAMIC = {
    "st_": ["logged_out", "ready", "paused", "ringing", "on_call", "wrapup"],
    "out_": ["answered", "abandoned", "ivr_hangup", "unanswered", "lost"],
    "origin_": ["click_to_call", "callback"],
    "cb_": ["open", "taken", "dialing", "done", "cancelled"],
    "role_": ["agent", "supervisor", "admin", "qa", "qa_lead"],
    "nav_": ["agent", "wallboard", "admin", "reports", "qa"],
    "int_": ["15min", "hour", "day", "week", "month"],
    "k_": ["offered", "answered", "service_level_pct", "asa_seconds", "aht_seconds", "abandon_rate_pct", "fcr_repeat_pct",
           "csat_pct", "recorded_pct", "qa_coverage_pct", "qa_avg_score"],
    "spy_": ["listen", "whisper", "barge"],
    "to_": ["agent", "queue", "number"],
    "m_": ["waiting", "longest_wait", "service_level", "service_level_30m", "answered_today", "abandoned_today"],
    "kpi_": ["asa_seconds", "aht_seconds", "abandon_rate_pct", "service_level_pct"],
    "slf_": ["answered", "offered", "abandoned_in_t_positive", "abandoned_after_t"],
    "qs_": ["wrapup_seconds", "service_level_seconds", "overflow_queue", "overflow_after_seconds", "overflow_when_no_agent",
            "callback_after_seconds", "vip_priority", "repeat_priority", "default_handle_seconds"],
    # the QA workspace (web/static/qa/)
    "qa_dir_": ["inbound", "outbound", "click_to_call", "callback"],
    "qa_rs_": ["ready", "pending", "recording", "failed", "discarded", "purged", "deleted"],
    "qa_st_": ["draft", "submitted", "acknowledged", "disputed", "resolved"],
    "qa_yn_": ["yes", "no"],
    "qa_resolution_": ["upheld", "changed"],
}


def table() -> dict[str, set[str]]:
    src = (STATIC / "core" / "i18n.js").read_text(encoding="utf-8")
    ko = src[src.index("  ko: {"):src.index("  en: {")]
    en = src[src.index("  en: {"):src.index("\n};")]
    keys = lambda block: set(re.findall(r"(?<![\w.])([a-z][a-z0-9_]*):\s*\"", block))  # noqa: E731
    return {"ko": keys(ko), "en": keys(en)}


def used_keys() -> set[str]:
    keys: set[str] = set()
    for js in STATIC.rglob("*.js"):
        if "vendor" in js.parts or js.name == "i18n.js":
            continue
        text = js.read_text(encoding="utf-8")
        keys |= set(re.findall(r"""\bt\(\s*["']([a-z][a-z0-9_]*)["']""", text))
        for prefix in re.findall(r"""\bt\(\s*`([a-z][a-z0-9_]*_)\$\{""", text):
            assert prefix in DYNAMIC, f"{js.name}: dynamic key prefix {prefix!r} not listed in this test"
            keys |= {prefix + v for v in DYNAMIC[prefix]}
    return keys


def test_every_key_is_translated_in_korean_and_english():
    tables = table()
    assert tables["ko"] == tables["en"], f"only ko: {tables['ko'] - tables['en']}, only en: {tables['en'] - tables['ko']}"
    missing = used_keys() - tables["ko"]
    assert not missing, f"keys used by the screens but not in the table: {sorted(missing)}"
    assert len(tables["ko"]) > 150
