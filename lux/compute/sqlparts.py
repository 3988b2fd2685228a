"""SQL expressions every stage shares, so the rollups, snapshots and result queries agree on them."""

from __future__ import annotations

UNKNOWN = "Unknown"


def region_sql(column: str) -> str:
    """The display region of a `sites.region` column: `Unknown` for null, empty or `TBC`."""
    return f"COALESCE(NULLIF(NULLIF(btrim({column}), 'TBC'), ''), '{UNKNOWN}')"


def days_in_month_sql(day: str) -> str:
    """The number of days in the month of a date column."""
    return f"extract(day FROM date_trunc('month', {day}) + interval '1 month - 1 day')"
