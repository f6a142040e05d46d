import math
import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from app.teams.calendar import ALWAYS_OPEN, BusinessHoursSpec, Calendar, Weekday

PARIS = ZoneInfo("Europe/Paris")
WORKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri")
EVERY_DAY: tuple[Weekday, ...] = (*WORKDAYS, "sat", "sun")
OFFICE_HOURS: dict[Weekday, list[str]] = {day: ["09:00-18:00"] for day in WORKDAYS}
LUNCH_BREAK: dict[Weekday, list[str]] = {day: ["09:00-12:30", "13:30-18:00"] for day in WORKDAYS}


def calendar(
    weekly: dict[Weekday, list[str]],
    timezone: str = "Europe/Paris",
    holidays: list[date] | None = None,
) -> Calendar:
    spec = BusinessHoursSpec(timezone=timezone, weekly=weekly, holidays=holidays or [])
    return Calendar.from_spec(spec)


def paris(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=PARIS)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def mondays(first: date, last: date) -> list[date]:
    return [first + timedelta(weeks=n) for n in range((last - first).days // 7 + 1)]


# Example dates: 2026-01-12 is a Monday in winter, Paris is UTC+1 (CET) until 2026-03-29 02:00,
# then UTC+2 (CEST) until 2026-10-25 03:00.


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        # Fri 17:30 CET: 30 min until 18:00, 30 more from Mon 09:00 -> Mon 09:30 CET = 08:30 UTC.
        (paris("2026-01-09 17:30"), utc("2026-01-12 08:30")),
        # Same in summer: Mon 2026-06-15 09:30 CEST = 07:30 UTC.
        (paris("2026-06-12 17:30"), utc("2026-06-15 07:30")),
        # Across the spring-forward weekend: Fri 17:30 CET, Mon 2026-03-30 09:30 CEST = 07:30 UTC.
        (paris("2026-03-27 17:30"), utc("2026-03-30 07:30")),
    ],
)
def test_a_friday_evening_hour_ends_on_monday_morning(start: datetime, expected: datetime) -> None:
    result = calendar(OFFICE_HOURS).add_business_minutes(start, 60)

    assert result == expected
    assert result.tzinfo is UTC


def test_a_holiday_is_skipped() -> None:
    office = calendar(OFFICE_HOURS, holidays=[date(2026, 5, 1)])

    # Thu 17:00: 60 min on Thursday, Friday 1 May closed, 60 min from Mon 4 May 09:00 CEST
    # -> 10:00 CEST = 08:00 UTC.
    assert office.add_business_minutes(paris("2026-04-30 17:00"), 120) == utc("2026-05-04 08:00")
    assert not office.is_open(paris("2026-05-01 11:00"))


def test_the_lunch_break_is_not_counted() -> None:
    office = calendar(LUNCH_BREAK)

    # 12:00 -> 12:30 is 30 min, then 13:30 -> 14:00 CET = 13:00 UTC.
    assert office.add_business_minutes(paris("2026-01-12 12:00"), 60) == utc("2026-01-12 13:00")
    # 3 h 30 in the morning and 4 h 30 in the afternoon fill the day up to 18:00 CET.
    assert office.add_business_minutes(paris("2026-01-12 09:00"), 480) == utc("2026-01-12 17:00")


def test_counting_starts_at_the_opening() -> None:
    # Mon 07:15 is closed: 09:00 + 30 min = 09:30 CET = 08:30 UTC.
    result = calendar(OFFICE_HOURS).add_business_minutes(paris("2026-01-12 07:15"), 30)

    assert result == utc("2026-01-12 08:30")


def test_a_start_at_closing_time_counts_from_the_next_opening() -> None:
    # 18:00 is already closed, so the first minute is Tue 09:00-09:01 CET -> 08:01 UTC.
    result = calendar(OFFICE_HOURS).add_business_minutes(paris("2026-01-12 18:00"), 1)

    assert result == utc("2026-01-13 08:01")


def test_a_deadline_can_fall_exactly_at_closing_time() -> None:
    result = calendar(OFFICE_HOURS).add_business_minutes(paris("2026-01-12 17:00"), 60)

    assert result == utc("2026-01-12 17:00")  # Mon 18:00 CET, not Tue 09:00


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        # Five 9-hour days from Monday's opening end at Friday's closing, 18:00 CET.
        (paris("2026-01-12 09:00"), utc("2026-01-16 17:00")),
        # From Wednesday noon, the weekend in between: next Wednesday noon CET.
        (paris("2026-01-14 12:00"), utc("2026-01-21 11:00")),
    ],
)
def test_five_business_days(start: datetime, expected: datetime) -> None:
    assert calendar(OFFICE_HOURS).add_business_minutes(start, 5 * 9 * 60) == expected


def test_zero_minutes_is_the_start_if_open_else_the_next_opening() -> None:
    office = calendar(OFFICE_HOURS)

    assert office.add_business_minutes(paris("2026-01-12 10:15:30.123456"), 0) == utc(
        "2026-01-12 09:15:30.123456"
    )
    assert office.add_business_minutes(paris("2026-01-10 10:00"), 0) == utc("2026-01-12 08:00")


def test_fractions_of_a_minute_keep_microseconds() -> None:
    result = calendar(OFFICE_HOURS).add_business_minutes(paris("2026-01-12 10:00:00.000123"), 1.5)

    assert result == utc("2026-01-12 09:01:30.000123")


@pytest.mark.parametrize(
    ("sunday", "opening_utc", "closing_utc"),
    [
        # Spring forward (02:00 CET -> 03:00 CEST): 09:00-18:00 CEST is 07:00-16:00 UTC.
        ("2026-03-29", "2026-03-29 07:00", "2026-03-29 16:00"),
        # Fall back (03:00 CEST -> 02:00 CET): 09:00-18:00 CET is 08:00-17:00 UTC.
        ("2026-10-25", "2026-10-25 08:00", "2026-10-25 17:00"),
    ],
)
def test_a_nine_to_six_day_is_nine_hours_on_dst_sundays(
    sunday: str, opening_utc: str, closing_utc: str
) -> None:
    every_day = calendar({day: ["09:00-18:00"] for day in EVERY_DAY})
    opening = paris(f"{sunday} 09:00")

    assert every_day.next_open(opening) == utc(opening_utc)
    assert every_day.add_business_minutes(opening, 9 * 60) == utc(closing_utc)
    # One more minute is Monday 09:01, where the offset is the same as on Sunday afternoon.
    monday = utc(opening_utc) + timedelta(days=1, minutes=1)
    assert every_day.add_business_minutes(opening, 9 * 60 + 1) == monday


def test_a_night_shift_over_spring_forward_is_an_hour_shorter() -> None:
    nights = calendar({"sun": ["01:00-04:00"]})

    # 01:00 CET = 00:00 UTC to 04:00 CEST = 02:00 UTC: 2 hours, not 3.
    assert nights.add_business_minutes(paris("2026-03-29 01:00"), 120) == utc("2026-03-29 02:00")
    # The 30 min left go to the next Sunday: 01:00 CEST = Sat 23:00 UTC, + 30 min.
    assert nights.add_business_minutes(paris("2026-03-29 01:00"), 150) == utc("2026-04-04 23:30")


def test_a_night_shift_over_fall_back_is_an_hour_longer() -> None:
    nights = calendar({"sun": ["01:00-04:00"]})

    # 01:00 CEST = Sat 23:00 UTC to 04:00 CET = 03:00 UTC: 4 hours.
    assert nights.add_business_minutes(paris("2026-10-25 01:00"), 240) == utc("2026-10-25 03:00")
    assert nights.is_open(utc("2026-10-25 02:30"))  # 03:30 CET, after the repeated hour


def test_an_hour_that_does_not_exist_is_closed() -> None:
    skipped = calendar({"sun": ["02:00-03:00"]})

    # On 2026-03-29 clocks jump from 02:00 to 03:00: the span collapses, and the next one is
    # Sun 5 April 02:00 CEST = 00:00 UTC.
    assert not skipped.is_open(utc("2026-03-29 01:00"))
    assert skipped.next_open(paris("2026-03-28 12:00")) == utc("2026-04-05 00:00")


def test_spans_ending_in_the_spring_forward_gap_are_not_counted_twice() -> None:
    # 01:00-02:30 reads 02:30 with the winter offset (01:30 UTC), and 03:00-05:00 CEST starts at
    # 01:00 UTC: together they cover 00:00-03:00 UTC, so 180 min, once.
    nights = calendar({"sun": ["01:00-02:30", "03:00-05:00"]})
    start = paris("2026-03-29 01:00")

    assert nights.add_business_minutes(start, 180) == utc("2026-03-29 03:00")
    # The 181st minute is the first of Sun 5 April, 01:00 CEST = Sat 23:00 UTC.
    assert nights.add_business_minutes(start, 181) == utc("2026-04-04 23:01")


def test_a_calendar_in_new_york() -> None:
    new_york = calendar({day: ["09:00-17:00"] for day in WORKDAYS}, timezone="America/New_York")

    # Fri 2026-03-06 16:00 EST (21:00 UTC): 60 min on Friday; clocks go forward on Sun 8 March;
    # Mon 09:00 EDT + 60 min = 10:00 EDT = 14:00 UTC.
    friday = datetime(2026, 3, 6, 16, tzinfo=ZoneInfo("America/New_York"))
    assert new_york.add_business_minutes(friday, 120) == utc("2026-03-09 14:00")
    # Moments in any zone: 15:30 Paris = 14:30 UTC = 09:30 EST, open; 14:59 Paris = 08:59 EST.
    assert new_york.is_open(paris("2026-01-12 15:30"))
    assert not new_york.is_open(paris("2026-01-12 14:59"))
    assert new_york.add_business_minutes(paris("2026-01-12 15:30"), 30) == utc("2026-01-12 15:00")


@pytest.mark.parametrize(
    "start",
    [
        utc("2026-01-12 09:00"),
        utc("2026-03-28 23:59:59.999999"),
        paris("2026-03-28 23:00"),  # elapsed time, not wall-clock time, across spring forward
        paris("2026-10-24 22:30:15"),
    ],
)
@pytest.mark.parametrize("minutes", [0, 0.5, 1 / 3, 59, 40 * 24 * 60 + 7])
def test_always_open_is_plain_timedelta_addition(start: datetime, minutes: float) -> None:
    result = ALWAYS_OPEN.add_business_minutes(start, minutes)

    assert result == start.astimezone(UTC) + timedelta(minutes=minutes)
    assert result.tzinfo is UTC
    assert ALWAYS_OPEN.is_open(start)
    assert ALWAYS_OPEN.next_open(start) == start


@pytest.mark.parametrize(
    ("moment", "is_open"),
    [
        (paris("2026-01-12 08:59:59.999999"), False),
        (paris("2026-01-12 09:00"), True),
        (paris("2026-01-12 17:59:59.999999"), True),
        (paris("2026-01-12 18:00"), False),
        (paris("2026-01-12 12:30"), False),  # the lunch break starts
        (paris("2026-01-12 13:30"), True),  # and ends
        (paris("2026-01-10 11:00"), False),  # Saturday
        (paris("2026-05-01 11:00"), False),  # holiday
        (utc("2026-06-15 07:00"), True),  # 09:00 CEST
        (utc("2026-01-12 07:30"), False),  # 08:30 CET
    ],
)
def test_is_open_at_boundaries(moment: datetime, is_open: bool) -> None:
    assert calendar(LUNCH_BREAK, holidays=[date(2026, 5, 1)]).is_open(moment) is is_open


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (paris("2026-01-12 10:15:00.5"), utc("2026-01-12 09:15:00.5")),  # open: itself
        (paris("2026-01-12 07:00"), utc("2026-01-12 08:00")),  # before opening
        (paris("2026-01-12 12:45"), utc("2026-01-12 12:30")),  # lunch: 13:30 CET
        (paris("2026-01-12 18:00"), utc("2026-01-13 08:00")),  # at closing
        (paris("2026-01-09 20:00"), utc("2026-01-12 08:00")),  # Friday evening
        (paris("2026-04-30 18:30"), utc("2026-05-04 07:00")),  # before the 1 May holiday
    ],
)
def test_next_open(moment: datetime, expected: datetime) -> None:
    result = calendar(LUNCH_BREAK, holidays=[date(2026, 5, 1)]).next_open(moment)

    assert result == expected
    assert result.tzinfo is UTC


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "unknown timezone 'Mars/Olympus'"),
        ({"timezone": "../etc/passwd"}, "unknown timezone '../etc/passwd'"),
        ({"weekly": {"mon": ["9-18"]}}, "mon: '9-18' is not an interval HH:MM-HH:MM"),
        ({"weekly": {"tue": ["18:00-09:00"]}}, "tue: '18:00-09:00' does not end after it starts"),
        ({"weekly": {"tue": ["09:00-09:00"]}}, "tue: '09:00-09:00' does not end after it starts"),
        (
            {"weekly": {"wed": ["11:00-14:00", "09:00-12:00"]}},
            "wed: '09:00-12:00' and '11:00-14:00' overlap",
        ),
        (
            {"weekly": {"thu": ["09:00-18:00", "09:00-18:00"]}},
            "thu: '09:00-18:00' and '09:00-18:00' overlap",
        ),
        (
            {"weekly": {"fri": ["22:00-24:30"]}},
            "fri: '22:00-24:30': 24:30 is not a time from 00:00 to 24:00",
        ),
        (
            {"weekly": {"sat": ["09:60-10:00"]}},
            "sat: '09:60-10:00': 09:60 is not a time from 00:00 to 24:00",
        ),
        ({"weekly": {"sun": ["24:00-24:00"]}}, "sun: '24:00-24:00': 24:00 can only end"),
        ({"weekly": {}}, "the week has no open hours"),
        ({"weekly": {"mon": [], "sun": []}}, "the week has no open hours"),
        ({"weekly": {"monday": ["09:00-18:00"]}}, "monday"),
        ({"hours": "9-18"}, "hours"),
    ],
)
def test_invalid_specs_are_refused_with_the_day_and_value(
    spec: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        BusinessHoursSpec.model_validate({"weekly": OFFICE_HOURS} | spec)


def test_a_valid_spec_is_sorted_and_may_touch_midnight_and_itself() -> None:
    spec = BusinessHoursSpec.model_validate(
        {"weekly": {"mon": ["12:00-18:00", "09:00-12:00"], "sat": ["00:00-24:00"]}}
    )
    continuous = Calendar.from_spec(spec)

    assert spec.weekly["mon"] == ["09:00-12:00", "12:00-18:00"]
    assert continuous.is_open(utc("2026-01-12 12:00"))
    assert continuous.add_business_minutes(utc("2026-01-12 11:00"), 120) == utc("2026-01-12 13:00")
    # Saturday 00:00-24:00 UTC is 1440 min without a gap.
    assert continuous.add_business_minutes(utc("2026-01-10 00:00"), 1440) == utc("2026-01-11")


def test_a_calendar_that_is_never_open_is_refused_instead_of_looping() -> None:
    only_on_holidays = calendar(
        {"mon": ["09:00-18:00"]}, holidays=mondays(date(2026, 1, 5), date(2029, 12, 31))
    )

    with pytest.raises(ValueError, match="the calendar has no open hours"):
        only_on_holidays.add_business_minutes(paris("2026-01-01 12:00"), 60)
    with pytest.raises(ValueError, match="the calendar has no open hours"):
        only_on_holidays.next_open(paris("2026-01-01 12:00"))
    assert not only_on_holidays.is_open(paris("2026-01-05 12:00"))


def test_a_long_closure_shorter_than_the_guard_is_waited_out() -> None:
    rarely_open = calendar(
        {"mon": ["09:00-18:00"]}, holidays=mondays(date(2026, 1, 5), date(2027, 12, 27))
    )

    # 2028-01-03 is the first Monday of 2028: 09:00 CET = 08:00 UTC.
    assert rarely_open.next_open(paris("2026-01-01 12:00")) == utc("2028-01-03 08:00")


@pytest.mark.parametrize("minutes", [-1, -0.001, math.nan, math.inf])
def test_minutes_must_be_finite_and_not_negative(minutes: float) -> None:
    with pytest.raises(ValueError, match="business minutes must be"):
        calendar(OFFICE_HOURS).add_business_minutes(paris("2026-01-12 10:00"), minutes)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="has no timezone"):
        calendar(OFFICE_HOURS).is_open(datetime(2026, 1, 12, 10))


PROPERTY_CALENDARS = [
    calendar(LUNCH_BREAK, holidays=[date(2026, 3, 25)]),
    calendar({day: ["09:00-17:00"] for day in WORKDAYS}, timezone="America/New_York"),
    calendar({"sat": ["22:00-24:00"], "sun": ["00:00-02:30", "03:00-05:00"]}),
]
# Every 5 h 17 min over two weeks around the spring-forward Sundays of Paris and New York.
PROPERTY_STARTS = [utc("2026-03-02 00:00") + timedelta(minutes=317 * n) for n in range(130)]


@pytest.mark.parametrize("calendar_under_test", PROPERTY_CALENDARS)
def test_results_follow_open_time_and_add_up(calendar_under_test: Calendar) -> None:
    for start in PROPERTY_STARTS:
        earlier: datetime | None = None
        for minutes in (1, 45, 600, 2701.5):
            result = calendar_under_test.add_business_minutes(start, minutes)
            assert result > start
            assert calendar_under_test.is_open(result - timedelta(microseconds=1))
            assert earlier is None or result > earlier
            earlier = result
        in_two_steps = calendar_under_test.add_business_minutes(
            calendar_under_test.add_business_minutes(start, 45), 555
        )
        assert in_two_steps == calendar_under_test.add_business_minutes(start, 600)


def count_open_minutes_one_by_one(calendar: Calendar, start: datetime, minutes: int) -> datetime:
    moment, counted = start, 0
    while counted < minutes:
        counted += calendar.is_open(moment)
        moment += timedelta(minutes=1)
    return moment


@pytest.mark.parametrize("calendar_under_test", PROPERTY_CALENDARS)
def test_adding_agrees_with_counting_minute_by_minute(calendar_under_test: Calendar) -> None:
    for start in PROPERTY_STARTS[::6]:
        expected = count_open_minutes_one_by_one(calendar_under_test, start, 300)

        assert calendar_under_test.add_business_minutes(start, 300) == expected


# The strangest clock changes on record: Samoa skipped Friday 30 December 2011, Casey station went
# back three hours across midnight on 5 March 2010, Santiago changes its clocks at midnight.
SANTIAGO_NIGHTS: dict[Weekday, list[str]] = {
    day: ["00:00-01:30", "23:00-24:00"] for day in EVERY_DAY
}
EXTREME_CLOCK_CHANGES = [
    ("Pacific/Apia", OFFICE_HOURS, "2011-12-28"),
    ("Antarctica/Casey", {day: ["00:00-03:00", "22:00-24:00"] for day in EVERY_DAY}, "2010-03-03"),
    ("America/Santiago", SANTIAGO_NIGHTS, "2026-04-03"),
    ("America/Santiago", SANTIAGO_NIGHTS, "2026-09-04"),
]


@pytest.mark.parametrize(("timezone", "weekly", "first_day"), EXTREME_CLOCK_CHANGES)
def test_is_open_agrees_with_next_open_across_extreme_clock_changes(
    timezone: str, weekly: dict[Weekday, list[str]], first_day: str
) -> None:
    hours = calendar(weekly, timezone=timezone)
    for step in range(4 * 24 * 6):
        moment = utc(first_day) + timedelta(minutes=10 * step)

        assert hours.is_open(moment) is (hours.next_open(moment) == moment)


@pytest.mark.parametrize(("timezone", "weekly", "first_day"), EXTREME_CLOCK_CHANGES)
def test_adding_agrees_with_counting_across_extreme_clock_changes(
    timezone: str, weekly: dict[Weekday, list[str]], first_day: str
) -> None:
    hours = calendar(weekly, timezone=timezone)
    for step in range(16):
        start = utc(first_day) + timedelta(hours=6 * step)

        assert hours.add_business_minutes(start, 200) == count_open_minutes_one_by_one(
            hours, start, 200
        )
