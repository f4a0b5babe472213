"""Business hours: weekly ranges in a time zone, holidays and one-off exceptions.

Pure: :meth:`Schedule.status` takes an aware ``datetime`` and answers
``open`` / ``closed`` / ``holiday`` with a human reason. Precedence, first
match wins: a one-off exception for that local date, then a holiday listed in
the YAML (company days), then a public holiday of ``public_holidays`` (a
country code such as ``KR``: the maintained ``holidays`` package computes every
year, lunar holidays and substitute days included), then the weekly hours.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import holidays as holidays_lib

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


class ScheduleError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class TimeRange:
    start: time
    end: time  # exclusive; 24:00 is stored as time.max

    def contains(self, t: time) -> bool:
        return self.start <= t < self.end or (self.end == time.max and t >= self.start)

    def __str__(self) -> str:
        end = "24:00" if self.end == time.max else self.end.strftime("%H:%M")
        return f"{self.start.strftime('%H:%M')}-{end}"


def parse_range(text: str) -> TimeRange:
    m = _RANGE.match(str(text))
    if not m:
        raise ScheduleError(f"time range {text!r} must look like '09:00-18:00'")
    h1, m1, h2, m2 = (int(x) for x in m.groups())
    if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2 != 0):
        raise ScheduleError(f"time range {text!r} has an impossible time")
    start = time(h1, m1)
    end = time.max if h2 == 24 else time(h2, m2)
    if end <= start:
        raise ScheduleError(
            f"time range {text!r} ends before it starts; split a range across midnight "
            f"into two days (e.g. '22:00-24:00' and next day '00:00-02:00')"
        )
    return TimeRange(start, end)


def parse_days(spec: str) -> list[str]:
    """``mon``, ``mon-fri``, ``sat,sun`` → weekday keys."""
    days: list[str] = []
    for part in str(spec).lower().split(","):
        part = part.strip()
        if "-" in part:
            a, b = (p.strip() for p in part.split("-", 1))
            if a not in WEEKDAYS or b not in WEEKDAYS:
                raise ScheduleError(f"unknown weekday range {part!r} (use mon, tue, wed, thu, fri, sat, sun)")
            i, j = WEEKDAYS.index(a), WEEKDAYS.index(b)
            if j < i:
                raise ScheduleError(f"weekday range {part!r} goes backwards")
            days.extend(WEEKDAYS[i : j + 1])
        elif part in WEEKDAYS:
            days.append(part)
        else:
            raise ScheduleError(f"unknown weekday {part!r} (use mon, tue, wed, thu, fri, sat, sun)")
    return days


@dataclass(frozen=True, slots=True)
class Holiday:
    day: date
    name: str


@dataclass(frozen=True, slots=True)
class Exception_:
    day: date
    ranges: tuple[TimeRange, ...]  # empty = closed all day
    name: str = ""


@dataclass(frozen=True, slots=True)
class Status:
    state: str  # open | closed | holiday
    reason: str
    local_time: datetime


@dataclass(frozen=True)
class Schedule:
    name: str
    tz: ZoneInfo
    weekly: dict[str, tuple[TimeRange, ...]] = field(default_factory=dict)
    holidays: dict[date, Holiday] = field(default_factory=dict)
    exceptions: dict[date, Exception_] = field(default_factory=dict)
    public_holidays: str | None = None  # a country code of the ``holidays`` package, e.g. "KR"
    pos: Any = field(default=None, compare=False)  # where the schedule is defined (for the checker)

    def public_holiday(self, d: date) -> str | None:
        """The public holiday on local date ``d`` (any year), named in Korean and English."""
        if self.public_holidays is None:
            return None
        return public_holiday_name(self.public_holidays, d)

    def holiday_data_until(self) -> date | None:
        """The last day holidays are known for; ``date.max`` with a public calendar."""
        if self.public_holidays is not None:
            return date.max
        return max(self.holidays, default=None)

    def status(self, when: datetime) -> Status:
        if when.tzinfo is None:
            raise ScheduleError("schedule times must be timezone-aware")
        local = when.astimezone(self.tz)
        d, t = local.date(), local.time()
        stamp = local.strftime("%a %Y-%m-%d %H:%M %Z")
        exc = self.exceptions.get(d)
        if exc is not None:
            label = f" ({exc.name})" if exc.name else ""
            if any(r.contains(t) for r in exc.ranges):
                hours = ", ".join(str(r) for r in exc.ranges)
                return Status("open", f"{stamp}: exception{label}: open {hours}", local)
            return Status("closed", f"{stamp}: exception{label}: closed", local)
        hol = self.holidays.get(d)
        if hol is not None:
            return Status("holiday", f"{stamp}: holiday {hol.name}", local)
        public = self.public_holiday(d)
        if public is not None:
            return Status("holiday", f"{stamp}: holiday {public} (public holiday, {self.public_holidays})", local)
        day = WEEKDAYS[local.weekday()]
        ranges = self.weekly.get(day, ())
        for r in ranges:
            if r.contains(t):
                return Status("open", f"{stamp}: open ({day} {r})", local)
        hours = ", ".join(str(r) for r in ranges) or "closed all day"
        return Status("closed", f"{stamp}: outside hours ({day}: {hours})", local)


def supported_countries() -> set[str]:
    return set(holidays_lib.list_supported_countries())


@functools.lru_cache(maxsize=16)
def _calendar(country: str, language: str | None) -> Any:
    return holidays_lib.country_holidays(country, language=language)


@functools.lru_cache(maxsize=16)
def _languages(country: str) -> tuple[str | None, tuple[str, ...]]:
    cls = type(holidays_lib.country_holidays(country))
    return getattr(cls, "default_language", None), tuple(getattr(cls, "supported_languages", ()) or ())


def public_holiday_name(country: str, d: date) -> str | None:
    """``개천절 National Foundation Day`` for KR on 2028-10-03 (Korean, then English, when
    the country's calendar speaks both); ``None`` on a working day."""
    own, languages = _languages(country)
    native = _calendar(country, own).get(d)
    if native is None:
        return None
    if own != "en_US" and "en_US" in languages:
        english = _calendar(country, "en_US").get(d)
        if english and english != native:
            return f"{native} {english}"
    return native
