"""Per-day totals of the active sites of the fleet and of each region, from the site days known as of the
run's day; with the expected share of their valued days, so any window's performance ratio is a sum."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import text
from sqlalchemy.orm import Session

from lux.compute.sqlparts import days_in_month_sql, region_sql

REGION = region_sql("s.region")
DAYS_IN_MONTH = days_in_month_sql("sd.day")

CLEAR = text("""
    DELETE FROM daily_rollups
     WHERE day <= least(:as_of, :to_day) AND (CAST(:from_day AS date) IS NULL OR day >= :from_day)
""")

# Driven from the sites so that a short day range reads each site's rows through the site_days key.
REBUILD = text(f"""
    WITH per_area AS (
        SELECT {REGION} AS region, sd.day,
               count(*) FILTER (WHERE sd.closing_at IS NOT NULL) AS reporting_sites,
               count(sd.generation_kwh) AS valued_sites,
               count(*) FILTER (WHERE sd.estimated AND sd.generation_kwh IS NOT NULL) AS estimated_sites,
               sum(sd.readings) AS readings,
               coalesce(sum(sd.generation_kwh), 0) AS generation_kwh,
               coalesce(sum(sd.generation_kwh) FILTER (WHERE eg.expected_kwh IS NOT NULL), 0) AS rated_generation_kwh,
               coalesce(sum(eg.expected_kwh / {DAYS_IN_MONTH}) FILTER (WHERE sd.generation_kwh IS NOT NULL), 0)
                   AS expected_kwh
          FROM sites s
          JOIN site_days sd ON sd.site_pk = s.id AND sd.day <= least(:as_of, :to_day) AND sd.segment_end <= :as_of
           AND (CAST(:from_day AS date) IS NULL OR sd.day >= :from_day)
          LEFT JOIN expected_generation eg ON eg.site_pk = s.id AND eg.month = CAST(extract(month FROM sd.day) AS int)
         WHERE s.active
         GROUP BY GROUPING SETS (({REGION}, sd.day), (sd.day))
    ), active AS (
        SELECT {REGION} AS region, count(*) AS sites FROM sites s WHERE s.active GROUP BY GROUPING SETS (({REGION}), ())
    )
    INSERT INTO daily_rollups (area, day, sites, reporting_sites, valued_sites, estimated_sites, readings,
                               generation_kwh, rated_generation_kwh, expected_kwh, computed_at)
    SELECT coalesce(p.region, 'fleet'), p.day, coalesce(a.sites, 0), p.reporting_sites, p.valued_sites,
           p.estimated_sites, p.readings, p.generation_kwh, p.rated_generation_kwh, p.expected_kwh, now()
      FROM per_area p LEFT JOIN active a ON a.region IS NOT DISTINCT FROM p.region
""")


def rebuild_rollups(session: Session, as_of: dt.date, from_day: dt.date | None, to_day: dt.date | None) -> int:
    """Rebuild the rollups of days `from_day` … `to_day` (defaults: the first day, `as_of`) as of `as_of`."""
    bound = {"as_of": as_of, "from_day": from_day, "to_day": to_day or as_of}
    session.execute(CLEAR, bound)
    return session.execute(REBUILD, bound).rowcount
