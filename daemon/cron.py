"""Cron lines as the sweep's schedule: read once by the config check and once by the sweep."""

from __future__ import annotations

import re
from datetime import UTC

from apscheduler.triggers.cron import CronTrigger

# A number in cron's day-of-week field that is not a step ("*/2"): cron counts from Sunday.
_WEEKDAY_NUMBER = re.compile(r"(?<![/\d])\d+")
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


def crontab_trigger(expr: str) -> CronTrigger:
    """A UTC trigger for a standard five-field crontab line.

    Weekday numbers are translated to names, since APScheduler 3 counts 0 as Monday where
    cron counts 0 (and 7) as Sunday.

    Raises:
        ValueError: not five fields, or a field APScheduler refuses.
    """
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(
            "expected 5 cron fields (minute hour day month weekday), "
            f"but got {len(fields)} in {expr!r}"
        )

    def weekday_name(match: re.Match[str]) -> str:
        number = int(match.group())
        if number > 7:
            raise ValueError(f"expected a weekday 0-7 in {expr!r}, but got {number}")
        return _WEEKDAYS[number]

    weekday = _WEEKDAY_NUMBER.sub(weekday_name, fields[4])
    minute, hour, day, month = fields[:4]
    return CronTrigger(
        minute=minute, hour=hour, day=day, month=month, day_of_week=weekday, timezone=UTC
    )
