from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from ivr.flow import parse_flow
from ivr.schedule import ScheduleError, parse_days, parse_range

ROOT = Path(__file__).resolve().parents[3]
SEOUL = ZoneInfo("Asia/Seoul")


def shipped_schedule():
    text = (ROOT / "dialplans" / "main.yaml").read_text(encoding="utf-8")
    flow, problems = parse_flow(text, "main.yaml", read_include=lambda rel: (ROOT / "dialplans" / rel).read_text(encoding="utf-8"))
    assert [p for p in problems if p.severity == "error"] == []
    return flow.schedules["customer_center"]


@pytest.mark.parametrize(
    ("when", "state"),
    [
        (datetime(2026, 12, 22, 10, 0, tzinfo=SEOUL), "open"),  # Tuesday
        (datetime(2026, 12, 22, 8, 59, tzinfo=SEOUL), "closed"),
        (datetime(2026, 12, 22, 18, 0, tzinfo=SEOUL), "closed"),  # end is exclusive
        (datetime(2026, 12, 26, 12, 30, tzinfo=SEOUL), "open"),  # Saturday morning
        (datetime(2026, 12, 26, 13, 0, tzinfo=SEOUL), "closed"),
        (datetime(2026, 12, 27, 11, 0, tzinfo=SEOUL), "closed"),  # Sunday
        (datetime(2026, 12, 25, 10, 0, tzinfo=SEOUL), "holiday"),  # Christmas
        (datetime(2026, 2, 17, 10, 0, tzinfo=SEOUL), "holiday"),  # Seollal
        (datetime(2026, 9, 25, 10, 0, tzinfo=SEOUL), "holiday"),  # Chuseok
        (datetime(2026, 3, 2, 10, 0, tzinfo=SEOUL), "holiday"),  # substitute for 3.1 (Sunday)
        (datetime(2027, 2, 9, 10, 0, tzinfo=SEOUL), "holiday"),  # substitute for Seollal 2027
        (datetime(2026, 11, 10, 10, 0, tzinfo=SEOUL), "holiday"),  # inline company holiday
        (datetime(2026, 5, 1, 10, 0, tzinfo=SEOUL), "closed"),  # one-off exception: closed
        (datetime(2026, 12, 31, 14, 59, tzinfo=SEOUL), "open"),  # short day
        (datetime(2026, 12, 31, 15, 30, tzinfo=SEOUL), "closed"),
    ],
)
def test_shipped_customer_center_hours(when, state):
    assert shipped_schedule().status(when).state == state


def test_time_zone_is_applied_to_utc_input():
    # 2026-12-22 01:00 UTC is 10:00 in Seoul
    status = shipped_schedule().status(datetime(2026, 12, 22, 1, 0, tzinfo=timezone.utc))
    assert status.state == "open"
    assert status.local_time.hour == 10
    assert "KST" in status.reason


def test_naive_times_are_refused():
    with pytest.raises(ScheduleError):
        shipped_schedule().status(datetime(2026, 12, 22, 10, 0))


def test_shipped_schedule_has_lunar_holidays_and_substitutes_of_every_year():
    # the holiday data (issue 10): the holidays package's KR calendar instead of one YAML file per year
    sched = shipped_schedule()
    for year, must in (
        (2026, {date(2026, 2, 16), date(2026, 2, 17), date(2026, 2, 18), date(2026, 9, 24), date(2026, 9, 25),
                date(2026, 9, 26), date(2026, 5, 24), date(2026, 8, 17), date(2026, 10, 5)}),
        (2027, {date(2027, 2, 6), date(2027, 2, 7), date(2027, 2, 8), date(2027, 2, 9), date(2027, 9, 14),
                date(2027, 9, 15), date(2027, 9, 16), date(2027, 5, 13), date(2027, 10, 11), date(2027, 12, 27)}),
        (2028, {date(2028, 1, 26), date(2028, 1, 27), date(2028, 1, 28), date(2028, 10, 2), date(2028, 10, 3),
                date(2028, 10, 4), date(2028, 10, 5), date(2028, 10, 9)}),
        (2035, {date(2035, 2, 7), date(2035, 2, 8), date(2035, 2, 9), date(2035, 10, 3)}),
    ):
        for d in must:
            assert sched.public_holiday(d) is not None, d
            assert sched.status(datetime(d.year, d.month, d.day, 10, 0, tzinfo=SEOUL)).state == "holiday", d
    assert sched.public_holiday(date(2028, 10, 3)).startswith("개천절")  # Korean name first
    assert "National Foundation Day" in sched.public_holiday(date(2028, 10, 3))
    assert sched.public_holiday(date(2028, 10, 10)) is None  # a Tuesday


def test_public_holidays_must_be_a_known_country():
    flow, problems = parse_flow(
        "flow: x\nstart: h\nschedules:\n  s: {timezone: Asia/Seoul, weekly: {mon-fri: '09:00-18:00'}, public_holidays: XX}\n"
        "nodes:\n  h: {type: hangup}\n",
        "x.yaml",
    )
    assert any("public_holidays 'XX' is not a country code of the holidays package" in p.message for p in problems)


def test_parse_ranges_and_days():
    assert str(parse_range("09:00-24:00")) == "09:00-24:00"
    assert parse_range("09:00-24:00").contains(datetime(2026, 1, 1, 23, 59).time())
    assert parse_days("mon-wed,sat") == ["mon", "tue", "wed", "sat"]
    for bad in ("18:00-09:00", "9-18", "25:00-26:00"):
        with pytest.raises(ScheduleError):
            parse_range(bad)
    with pytest.raises(ScheduleError):
        parse_days("fri-mon")
