"""SQL expressions every stage shares, so the rollups, snapshots and result queries agree on them."""

from __future__ import annotations

UNKNOWN = "Unknown"


def region_sql(column: str) -> str:
    """The display region of a `sites.region` column: `Unknown` for null, empty or `TBC`."""
    return f"COALESCE(NULLIF(NULLIF(btrim({column}), 'TBC'), ''), '{UNKNOWN}')"


def days_in_month_sql(day: str) -> str:
    """The number of days in the month of a date column."""
    return f"extract(day FROM date_trunc('month', {day}) + interval '1 month - 1 day')"


def month_number_sql(day: str) -> str:
    """The calendar month (1–12) of a date column, as `expected_generation.month` keys it (a float `date_part`,
    cheaper per row than a numeric `extract`)."""
    return f"CAST(date_part('month', {day}) AS int)"


def latest_closing_sql(site: str, through: str, condition: str = "true") -> str:
    """The latest reading day of `site` on or before `through` (one row at most, two key probes): its closing
    reading, `flat_since`, and as `ref_kwh` the closing register of the latest reading day
    `:zero_read_days` or more before it (SPEC §4's reference reading). `condition` gates the probes."""
    return f"""
        SELECT sd.day, sd.closing_at, sd.closing_kwh, sd.closing_signal, sd.network, sd.flat_since,
               (SELECT r.closing_kwh FROM site_days r
                 WHERE r.site_pk = sd.site_pk AND r.day <= sd.day - :zero_read_days AND r.closing_at IS NOT NULL
                 ORDER BY r.day DESC LIMIT 1) AS ref_kwh
          FROM site_days sd
         WHERE {condition} AND sd.site_pk = {site} AND sd.day <= {through} AND sd.closing_at IS NOT NULL
         ORDER BY sd.day DESC LIMIT 1"""
