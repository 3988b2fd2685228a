"""Fleet-day arithmetic: the local calendar day of an instant, fast enough for every row of a batch."""

from __future__ import annotations

import datetime as dt
from functools import cache
from zoneinfo import ZoneInfo

EPOCH_DAY = dt.date(1970, 1, 1)
BUCKET_S = 900  # most UTC offset changes fall on a quarter hour; a bucket holding one that does not is not cached


class LocalDays:
    """Local day numbers (days since 1970-01-01 in the zone) of aware datetimes."""

    def __init__(self, timezone: str) -> None:
        self.zone = ZoneInfo(timezone)
        # quarter-hour bucket of the instant → its UTC offset in seconds, or None when the offset changes inside it
        self._offsets: dict[int, float | None] = {}

    def number(self, at: dt.datetime) -> int:
        """The local day of `at`, as days since 1970-01-01."""
        ts = at.timestamp()
        bucket = int(ts // BUCKET_S)
        if bucket not in self._offsets:
            first, last = (self._offset(bucket * BUCKET_S + s) for s in (0, BUCKET_S - 1))
            self._offsets[bucket] = first if first == last else None
        offset = self._offsets[bucket]
        if offset is None:  # a change off the quarter hour (St John's at 00:01 until 2011, say): this instant's own
            offset = self._offset(ts)
        return int((ts + offset) // 86400)

    def _offset(self, ts: float) -> float:
        return dt.datetime.fromtimestamp(ts, dt.UTC).astimezone(self.zone).utcoffset().total_seconds()

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
