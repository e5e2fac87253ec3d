"""Schedules: cron expressions fire on the days crontab(5) says; digests at calendar times."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from watcher.schedule import ScheduleError, parse_digest, parse_schedule

SATURDAY = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
"""Saturday noon: every list of days below starts after it."""


def fires(schedule_text: str, count: int, start: datetime = SATURDAY,
          timezone: str = "UTC") -> list[str]:
    schedule, moments, moment = parse_schedule(schedule_text), [], start
    for _ in range(count):
        moment = schedule.next_after(moment, ZoneInfo(timezone))
        moments.append(moment.strftime("%a %H:%M"))
    return moments


def test_weekday_numbers_are_crontabs_monday_to_friday():
    assert fires("0 7 * * 1-5", 6) == ["Mon 07:00", "Tue 07:00", "Wed 07:00", "Thu 07:00",
                                       "Fri 07:00", "Mon 07:00"]


@pytest.mark.parametrize("field, days", [
    ("0", ["Sun"] * 2), ("7", ["Sun"] * 2), ("0-2", ["Sun", "Mon", "Tue", "Sun"]),
    ("5-7", ["Sun", "Fri", "Sat", "Sun"]), ("*/2", ["Sun", "Tue", "Thu", "Sat", "Sun"]),
    ("1,3", ["Mon", "Wed", "Mon"]), ("mon-fri", ["Mon", "Tue", "Wed", "Thu", "Fri"]),
])
def test_every_way_of_writing_the_day_of_week(field, days):
    assert [moment.split()[0] for moment in fires(f"0 9 * * {field}", len(days))] == days


def test_a_day_of_week_out_of_range_is_a_clear_error():
    with pytest.raises(ScheduleError, match="out of range"):
        parse_schedule("0 9 * * 3-9")


def test_digests_go_out_at_calendar_times_in_the_configured_timezone():
    paris = ZoneInfo("Europe/Paris")
    weekly = parse_digest("weekly").next_after(SATURDAY, paris)
    assert weekly.astimezone(paris).strftime("%a %Y-%m-%d %H:%M") == "Mon 2026-11-23 08:00"
    daily = parse_digest("daily").next_after(SATURDAY, paris)
    assert daily.astimezone(paris) - SATURDAY.astimezone(paris) < timedelta(days=1)
    assert daily.astimezone(paris).strftime("%H:%M") == "08:00"
    assert parse_digest("0 17 * * 5").next_after(SATURDAY, paris).astimezone(paris) \
        .strftime("%a %H:%M") == "Fri 17:00"
    with pytest.raises(ScheduleError, match="not a digest time"):
        parse_digest("every 6h")


def test_day_of_month_and_day_of_week_together_mean_either_as_in_crontab():
    schedule, moment, days = parse_schedule("0 7 1 * 1"), SATURDAY, []
    for _ in range(4):
        moment = schedule.next_after(moment, ZoneInfo("UTC"))
        days.append(moment.strftime("%a %d %b %H:%M"))
    assert days == ["Mon 23 Nov 07:00", "Mon 30 Nov 07:00", "Tue 01 Dec 07:00",
                    "Mon 07 Dec 07:00"]
    assert fires("0 7 1 * *", 2) == ["Tue 07:00", "Fri 07:00"]  # 1 Dec, 1 Jan: day alone
