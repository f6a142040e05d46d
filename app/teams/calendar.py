"""Business hours of a team: when it is open, and when an SLA measured in open time runs out.

Pure logic, no database: a `BusinessHoursSpec` is what people write, a `Calendar` answers questions.
"""

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from itertools import pairwise
from typing import Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

MINUTES_PER_DAY = 24 * 60
# Beyond this many days in a row without an open span, the calendar is taken as never open.
MAX_CLOSED_DAYS = 3 * 366

_INTERVAL = re.compile(r"([0-9]{2}):([0-9]{2})-([0-9]{2}):([0-9]{2})")

# Minutes after local midnight, start inclusive, end exclusive; the end may be 1440 (24:00).
LocalSpan = tuple[int, int]
# Aware UTC datetimes, start inclusive, end exclusive.
Span = tuple[datetime, datetime]


class BusinessHoursSpec(BaseModel):
    """Opening hours as people write them: a timezone, hours per weekday, closed dates."""

    model_config = ConfigDict(extra="forbid")

    timezone: str = "UTC"
    weekly: dict[Weekday, list[str]]
    holidays: list[date] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(
                f"unknown timezone {name!r}: use an IANA name such as 'Europe/Paris'"
            ) from error
        return name

    @field_validator("weekly")
    @classmethod
    def _valid_week(cls, weekly: dict[Weekday, list[str]]) -> dict[Weekday, list[str]]:
        checked = {day: _sorted_day(day, intervals) for day, intervals in weekly.items()}
        if not any(checked.values()):
            raise ValueError("the week has no open hours: give at least one day an interval")
        return checked


def _sorted_day(day: Weekday, intervals: list[str]) -> list[str]:
    """The intervals of one day in order, refusing malformed or overlapping ones."""
    try:
        parsed = sorted((_parse_interval(text), text) for text in intervals)
    except ValueError as error:
        raise ValueError(f"{day}: {error}") from error
    for (previous, previous_text), (current, current_text) in pairwise(parsed):
        if current[0] < previous[1]:
            raise ValueError(f"{day}: {previous_text!r} and {current_text!r} overlap")
    return [text for _, text in parsed]


def _parse_interval(text: str) -> LocalSpan:
    """Minutes after midnight of an interval written "HH:MM-HH:MM", where 24:00 can end a day."""
    match = _INTERVAL.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not an interval HH:MM-HH:MM such as '09:00-18:00'")
    start_hour, start_minute, end_hour, end_minute = (int(group) for group in match.groups())
    start = _minute_of_day(text, start_hour, start_minute)
    end = _minute_of_day(text, end_hour, end_minute)
    if start == MINUTES_PER_DAY:
        raise ValueError(f"{text!r}: 24:00 can only end an interval")
    if end <= start:
        raise ValueError(f"{text!r} does not end after it starts")
    return start, end


def _minute_of_day(text: str, hour: int, minute: int) -> int:
    if minute >= 60 or hour * 60 + minute > MINUTES_PER_DAY:
        raise ValueError(f"{text!r}: {hour:02d}:{minute:02d} is not a time from 00:00 to 24:00")
    return hour * 60 + minute


@dataclass(frozen=True)
class Calendar:
    """When a team is open, in its own timezone; week[0] is Monday, as in `date.weekday()`."""

    zone: ZoneInfo
    week: tuple[tuple[LocalSpan, ...], ...]
    holidays: frozenset[date] = frozenset()

    @classmethod
    def from_spec(cls, spec: BusinessHoursSpec) -> Self:
        """The calendar described by a validated spec."""
        week = tuple(
            tuple(sorted(_parse_interval(text) for text in spec.weekly.get(day, [])))
            for day in WEEKDAYS
        )
        return cls(zone=ZoneInfo(spec.timezone), week=week, holidays=frozenset(spec.holidays))

    def is_open(self, moment: datetime) -> bool:
        """Whether the team is open at this aware moment (opening inclusive, closing exclusive)."""
        instant = _to_utc(moment)
        local_day = instant.astimezone(self.zone).date()
        # Neighbouring days too: around a DST jump at midnight their spans can reach this instant.
        days = (local_day + timedelta(days=offset) for offset in (-1, 0, 1))
        return any(start <= instant < end for day in days for start, end in self._spans_of(day))

    def next_open(self, moment: datetime) -> datetime:
        """The moment itself if open, else the next opening; in UTC."""
        start, _ = next(self._open_spans(_to_utc(moment)))
        return start

    def add_business_minutes(self, start: datetime, minutes: float) -> datetime:
        """The moment, in UTC, when `minutes` of open time have passed since `start`."""
        remaining = _business_duration(minutes)
        spans = self._open_spans(_to_utc(start))
        while True:
            span_start, span_end = next(spans)
            if remaining <= span_end - span_start:
                return span_start + remaining
            remaining -= span_end - span_start

    def _open_spans(self, since: datetime) -> Iterator[Span]:
        """Open spans in order, disjoint, none before `since`; raises if none come for years."""
        # A day early: when clocks skip a midnight (Samoa skipped 30 December 2011), the spans of
        # the previous local date can still be running.
        day = since.astimezone(self.zone).date() - timedelta(days=1)
        last_end = since
        closed_days = 0
        while closed_days <= MAX_CLOSED_DAYS:
            closed_days += 1
            for start, end in self._spans_of(day):
                # Clipping matters when a boundary falls in a spring-forward gap: the UTC spans of
                # one day can then overlap, and open time must not be counted twice. Spans left
                # empty, by clipping or by a DST change, are skipped.
                start = max(start, last_end)
                if start < end:
                    yield start, end
                    last_end, closed_days = end, 0
            day += timedelta(days=1)
        raise ValueError(
            f"the calendar has no open hours in the {MAX_CLOSED_DAYS} days after"
            f" {last_end.isoformat()}: check its weekly hours and holidays"
        )

    def _spans_of(self, day: date) -> tuple[Span, ...]:
        """The spans of one local date in UTC; a DST change can make one empty (end <= start)."""
        return _day_spans(self, day)


# Every ticket a group of posts opens has its deadlines computed, each from a walk over the open
# days ahead, and the same few days come again and again, group after group (and for calendars
# built anew but equal, as those of a reloaded routing table): converting their hours to UTC was
# most of that walk.
@lru_cache(maxsize=4096)
def _day_spans(calendar: Calendar, day: date) -> tuple[Span, ...]:
    if day in calendar.holidays:
        return ()
    return tuple(
        (_wall_clock(day, start, calendar.zone), _wall_clock(day, end, calendar.zone))
        for start, end in calendar.week[day.weekday()]
    )


def _wall_clock(day: date, minute: int, zone: ZoneInfo) -> datetime:
    """The UTC instant when the clocks of `zone` show `minute` after midnight of `day`.

    A time that a DST jump skips is read with the offset from before the jump (PEP 495, fold=0);
    a time shown twice is its first occurrence.
    """
    whole_days, minute = divmod(minute, MINUTES_PER_DAY)
    hour, minute = divmod(minute, 60)
    local = datetime.combine(day + timedelta(days=whole_days), time(hour, minute), tzinfo=zone)
    return local.astimezone(UTC)


def _to_utc(moment: datetime) -> datetime:
    if moment.utcoffset() is None:
        raise ValueError(f"{moment.isoformat()} has no timezone: pass an aware datetime")
    return moment.astimezone(UTC)


def _business_duration(minutes: float) -> timedelta:
    # A timedelta counts whole microseconds, so spans add up exactly once the float is converted.
    if not math.isfinite(minutes) or minutes < 0:
        raise ValueError(f"business minutes must be a finite number >= 0, not {minutes}")
    return timedelta(minutes=minutes)


ALWAYS_OPEN = Calendar.from_spec(
    BusinessHoursSpec(timezone="UTC", weekly={day: ["00:00-24:00"] for day in WEEKDAYS})
)
