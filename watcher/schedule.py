"""Schedules: when each target is checked.

This module owns the schedule syntax of targets.toml — human intervals (`every 30s`,
`every 6h`, `hourly`, `daily`, `weekly`) and 5-field cron expressions — and turns a schedule
into the next planned check after the last one, and into an APScheduler trigger.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

__all__ = ["Schedule", "ScheduleError", "parse_schedule", "parse_timezone"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_EVERY = re.compile(r"^every\s+(\d+)\s*(s|sec|secs|seconds?|m|min|mins|minutes?|h|hours?|"
                    r"d|days?|w|weeks?)$", re.IGNORECASE)
_NAMED = {"hourly": 3600, "daily": 86400, "weekly": 604800}


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
        return CronTrigger.from_crontab(self.cron, timezone=timezone)

    def next_after(self, moment: datetime, timezone: ZoneInfo) -> datetime:
        """The first planned check after a check made at `moment`."""
        if self.interval is not None:
            return moment + self.interval
        fire = CronTrigger.from_crontab(self.cron, timezone=timezone) \
            .get_next_fire_time(None, moment)
        return fire if fire is not None else moment + timedelta(days=1)

    @property
    def period(self) -> timedelta:
        """Roughly how long between two checks (caps the retry backoff)."""
        if self.interval is not None:
            return self.interval
        trigger = CronTrigger.from_crontab(self.cron)
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
            CronTrigger.from_crontab(spec)
        except ValueError as error:
            raise ScheduleError(f"{text!r} is not a valid cron expression ({error})") from None
        return Schedule(text, cron=spec)
    raise ScheduleError(f"{text!r} is not a schedule; use e.g. \"every 6h\", \"every 30m\", "
                        "\"daily\", \"hourly\", \"weekly\", or a cron expression \"0 7 * * 1-5\"")


def parse_timezone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"unknown timezone {name!r}; use an IANA name such as "
                            "\"Europe/Paris\" or \"UTC\"") from None
