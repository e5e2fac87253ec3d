"""Schedules: when each target is checked.

This module owns the schedule syntax of targets.toml — human intervals (`every 30s`,
`every 6h`, `hourly`, `daily`, `weekly`) and 5-field cron expressions — and turns a schedule
into the next planned check after the last one, and into an APScheduler trigger; and the
sending times of digest routes. Cron expressions mean what crontab(5) says: 0 and 7 are
Sunday (APScheduler 3's `from_crontab` counts weekdays from Monday, so the day-of-week field
is translated to names first), and a restricted day of month and day of week are either/or.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

__all__ = ["Schedule", "ScheduleError", "cron_trigger", "parse_digest", "parse_schedule",
           "parse_timezone"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_EVERY = re.compile(r"^every\s+(\d+)\s*(s|sec|secs|seconds?|m|min|mins|minutes?|h|hours?|"
                    r"d|days?|w|weeks?)$", re.IGNORECASE)
_NAMED = {"hourly": 3600, "daily": 86400, "weekly": 604800}
_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_PART = re.compile(r"^(\*|\d)(?:-(\d))?(?:/(\d+))?$")


class ScheduleError(ValueError):
    """A schedule string that is neither an interval nor a cron expression."""


@dataclass(frozen=True)
class Schedule:
    text: str
    interval: timedelta | None = None
    cron: str | None = None

    def trigger(self, timezone: ZoneInfo, jitter: float) -> BaseTrigger:
        if self.interval is not None:
            return IntervalTrigger(seconds=self.interval.total_seconds(), timezone=timezone,
                                   jitter=int(jitter) or None)
        return cron_trigger(self.cron, timezone)

    def next_after(self, moment: datetime, timezone: ZoneInfo) -> datetime:
        """The first planned check after a check made at `moment`."""
        if self.interval is not None:
            return moment + self.interval
        fire = cron_trigger(self.cron, timezone).get_next_fire_time(
            None, moment + timedelta(microseconds=1))
        return fire if fire is not None else moment + timedelta(days=1)

    @property
    def period(self) -> timedelta:
        """Roughly how long between two checks (caps the retry backoff)."""
        if self.interval is not None:
            return self.interval
        trigger = cron_trigger(self.cron)
        first = trigger.get_next_fire_time(None, datetime.now().astimezone())
        second = trigger.get_next_fire_time(first, first + timedelta(seconds=1))
        return (second - first) if first and second else timedelta(days=1)


def parse_schedule(text: str) -> Schedule:
    spec = text.strip()
    if spec.lower() in _NAMED:
        return Schedule(text, interval=timedelta(seconds=_NAMED[spec.lower()]))
    match = _EVERY.match(spec)
    if match:
        seconds = int(match.group(1)) * _UNITS[match.group(2)[0].lower()]
        if seconds <= 0:
            raise ScheduleError(f"{text!r}: the interval must be positive")
        return Schedule(text, interval=timedelta(seconds=seconds))
    if len(spec.split()) == 5:
        try:
            cron_trigger(spec)
        except ValueError as error:
            raise ScheduleError(f"{text!r} is not a valid cron expression ({error})") from None
        return Schedule(text, cron=spec)
    raise ScheduleError(f"{text!r} is not a schedule; use e.g. \"every 6h\", \"every 30m\", "
                        "\"daily\", \"hourly\", \"weekly\", or a cron expression \"0 7 * * 1-5\"")


DIGEST_NAMED = {"daily": "0 8 * * *", "weekly": "0 8 * * 1"}


def parse_digest(text: str) -> Schedule:
    """When a digest route sends: `daily` (08:00), `weekly` (Monday 08:00) or a cron expression.

    Intervals are refused: a digest gathers the alerts of a calendar period, so its sending
    times must not depend on when each alert was queued.
    """
    spec = text.strip()
    cron = DIGEST_NAMED.get(spec.lower(), spec)
    if len(cron.split()) != 5:
        raise ScheduleError(f"{text!r} is not a digest time; use \"daily\" (08:00), "
                            "\"weekly\" (Monday 08:00) or a cron expression such as "
                            "\"0 17 * * 5\"")
    return parse_schedule(cron)


def cron_trigger(cron: str, timezone: ZoneInfo | None = None) -> BaseTrigger:
    """A crontab(5) expression as an APScheduler trigger, weekdays numbered as cron does.

    As in crontab(5), when both the day of month and the day of week are restricted (neither
    starts with `*`), a day matching either one fires: `0 7 1 * 1` is the 1st and every
    Monday (APScheduler alone would require both).
    """
    minute, hour, day, month, weekday = cron.split()

    def one(day: str, weekday: str) -> CronTrigger:
        return CronTrigger.from_crontab(
            " ".join([minute, hour, day, month, _weekday_names(weekday)]), timezone=timezone)

    if day.startswith("*") or weekday.startswith("*"):
        return one(day, weekday)
    return OrTrigger([one(day, "*"), one("*", weekday)])


def _weekday_names(field: str) -> str:
    """`1-5` → `mon,tue,wed,thu,fri`; `0`, `7` → `sun`; `*/2` → `sun,tue,thu,sat`."""
    if field == "*":
        return field
    names: list[str] = []
    for part in field.split(","):
        match = _DAY_PART.match(part)
        if match is None:
            names.append(part)
            continue
        first, last, step = match.groups()
        start = 0 if first == "*" else int(first)
        stop = 6 if first == "*" or (step and last is None) else int(last or first)
        if start > 7 or stop > 7 or start > stop:
            raise ValueError(f"day of week {part!r} is out of range (0-7, 0 and 7 are Sunday)")
        names += [_CRON_DAYS[day] for day in range(start, stop + 1, int(step or 1))]
    return ",".join(dict.fromkeys(names))


def parse_timezone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"unknown timezone {name!r}; use an IANA name such as "
                            "\"Europe/Paris\" or \"UTC\"") from None
