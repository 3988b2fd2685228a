"""Fleet-day arithmetic: the local calendar day of an instant, fast enough for every row of a batch."""

from __future__ import annotations

import datetime as dt
from functools import cache
from zoneinfo import ZoneInfo

EPOCH_DAY = dt.date(1970, 1, 1)
BUCKET_S = 900  # every UTC offset change in the tz database happens on a quarter hour


class LocalDays:
    """Local day numbers (days since 1970-01-01 in the zone) of aware datetimes."""

    def __init__(self, timezone: str) -> None:
        self.zone = ZoneInfo(timezone)
        self._offsets: dict[int, float] = {}  # quarter-hour bucket of the instant → UTC offset, seconds

    def number(self, at: dt.datetime) -> int:
        """The local day of `at`, as days since 1970-01-01."""
        ts = at.timestamp()
        bucket = int(ts // BUCKET_S)
        offset = self._offsets.get(bucket)
        if offset is None:
            instant = dt.datetime.fromtimestamp(bucket * BUCKET_S, dt.UTC)
            offset = self._offsets[bucket] = instant.astimezone(self.zone).utcoffset().total_seconds()
        return int((ts + offset) // 86400)

    @staticmethod
    def date(number: int) -> dt.date:
        """The calendar date of a day number."""
        return EPOCH_DAY + dt.timedelta(days=number)


@cache
def local_days(timezone: str) -> LocalDays:
    """The shared LocalDays of a time zone."""
    return LocalDays(timezone)


def fleet_today(timezone: str) -> dt.date:
    """Today's date in the fleet time zone: the default as-of day of every computation."""
    return dt.datetime.now(ZoneInfo(timezone)).date()
