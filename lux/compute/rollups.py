"""Per-day totals of the active sites of the fleet and of each region, from the site days known as of the
run's day; with the expected share of their valued days, so any window's performance ratio is a sum.

Two steps: the site days are summed per stored region and day into a temporary table (a plain
`CREATE TABLE AS`, so PostgreSQL may spread a long range over parallel workers, which it never does
for an `INSERT … SELECT`), then those few rows are summed into display regions and the fleet.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import text
from sqlalchemy.orm import Session

from lux.compute.sqlparts import days_in_month_sql, month_number_sql, region_sql

REGION = region_sql("r.region")
DAYS_IN_MONTH = days_in_month_sql("sd.day")

# Ranges of fewer days than this read each site's rows through the site_days key. So does a longer range holding
# few site days (a site back after months of silence fills them in for itself alone): up to PROBE_SHARE of the
# table's rows, as bounded from the site tails (RANGE_ROWS). Other ranges scan the table, in parallel.
PROBE_DAYS = 31
PROBE_SHARE = 0.2
# An upper bound of the site days in a range: a site's days run up to its last reading day (its tail's), and from
# its first, which is taken to be on or before the range's first day. The table's size is the planner's estimate
# (negative, so never probed, before the table was first analysed).
RANGE_ROWS = text("""
    SELECT coalesce(sum(least(t.last_day, CAST(:to_day AS date)) - CAST(:from_day AS date) + 1), 0),
           (SELECT c.reltuples FROM pg_class c WHERE c.oid = 'site_days'::regclass)
      FROM site_tails t
     WHERE t.last_day >= :from_day
""")

CLEAR = text("""
    DELETE FROM daily_rollups
     WHERE day <= least(:as_of, :to_day) AND (CAST(:from_day AS date) IS NULL OR day >= :from_day)
""")

DAY_RANGE = """sd.day <= least(CAST(:as_of AS date), :to_day) AND sd.segment_end <= :as_of
               AND (CAST(:from_day AS date) IS NULL OR sd.day >= :from_day)"""

EXPECTED = f"LEFT JOIN expected_generation eg ON eg.site_pk = s.id AND eg.month = {month_number_sql('sd.day')}"

# The site days of the range, with their active site and its expected generation of the month: a scan of
# site_days, or per active site a range of the site_days key. A short range hashes only the expected generation
# of its months (`:months`), not every site's twelve.
SCANNED = f"site_days sd JOIN sites s ON s.id = sd.site_pk AND s.active {EXPECTED} WHERE {DAY_RANGE}"
PROBED = f"""sites s CROSS JOIN LATERAL (SELECT * FROM site_days sd WHERE sd.site_pk = s.id AND {DAY_RANGE}
                                           OFFSET 0) sd
             {EXPECTED} AND eg.month = ANY(CAST(:months AS int[]))
             WHERE s.active"""

# A valued day's expected share is its month's expected generation over the days of that month, the same for
# every row of a (region, day) group: the group divides its sum once.
PER_REGION = """
    CREATE TEMP TABLE rollup_regions ON COMMIT DROP AS
    SELECT s.region, sd.day,
           count(*) FILTER (WHERE sd.closing_at IS NOT NULL) AS reporting_sites,
           count(sd.generation_kwh) AS valued_sites,
           count(*) FILTER (WHERE sd.estimated AND sd.generation_kwh IS NOT NULL) AS estimated_sites,
           sum(sd.readings) AS readings,
           coalesce(sum(sd.generation_kwh), 0) AS generation_kwh,
           coalesce(sum(sd.generation_kwh) FILTER (WHERE eg.expected_kwh IS NOT NULL), 0) AS rated_generation_kwh,
           coalesce(sum(eg.expected_kwh) FILTER (WHERE sd.generation_kwh IS NOT NULL), 0) / {days_in_month}
               AS expected_kwh
      FROM {source}
     GROUP BY s.region, sd.day
"""

REBUILD = text(f"""
    WITH per_area AS (
        SELECT {REGION} AS region, r.day, sum(r.reporting_sites) AS reporting_sites,
               sum(r.valued_sites) AS valued_sites,
               sum(r.estimated_sites) AS estimated_sites, sum(r.readings) AS readings,
               sum(r.generation_kwh) AS generation_kwh, sum(r.rated_generation_kwh) AS rated_generation_kwh,
               sum(r.expected_kwh) AS expected_kwh
          FROM rollup_regions r
         GROUP BY GROUPING SETS (({REGION}, r.day), (r.day))
    ), active AS (
        SELECT {region_sql("s.region")} AS region, count(*) AS sites FROM sites s WHERE s.active
         GROUP BY GROUPING SETS (({region_sql("s.region")}), ())
    )
    INSERT INTO daily_rollups (area, day, sites, reporting_sites, valued_sites, estimated_sites, readings,
                               generation_kwh, rated_generation_kwh, expected_kwh, computed_at)
    SELECT coalesce(p.region, 'fleet'), p.day, coalesce(a.sites, 0), p.reporting_sites, p.valued_sites,
           p.estimated_sites, p.readings, p.generation_kwh, p.rated_generation_kwh, p.expected_kwh, now()
      FROM per_area p LEFT JOIN active a ON a.region IS NOT DISTINCT FROM p.region
""")


PER_REGION_SCANNED = text(PER_REGION.format(days_in_month=DAYS_IN_MONTH, source=SCANNED))
PER_REGION_PROBED = text(PER_REGION.format(days_in_month=DAYS_IN_MONTH, source=PROBED))


def rebuild_rollups(session: Session, as_of: dt.date, from_day: dt.date | None, to_day: dt.date | None) -> int:
    """Rebuild the rollups of days `from_day` … `to_day` (defaults: the first day, `as_of`) as of `as_of`."""
    to_day = min(to_day or as_of, as_of)
    bound = {"as_of": as_of, "from_day": from_day, "to_day": to_day}
    session.execute(CLEAR, bound)
    session.execute(text("DROP TABLE IF EXISTS rollup_regions"))
    if from_day is not None and probes_range(session, from_day, to_day):
        months = sorted({(from_day + dt.timedelta(days=n)).month for n in range((to_day - from_day).days + 1)})
        session.execute(PER_REGION_PROBED, {**bound, "months": months})
    else:
        session.execute(PER_REGION_SCANNED, bound)
    written = session.execute(REBUILD).rowcount
    session.execute(text("DROP TABLE rollup_regions"))
    return written


def probes_range(session: Session, from_day: dt.date, to_day: dt.date) -> bool:
    """Whether the rollups of `from_day` … `to_day` read each site's days through the key rather than scan the
    table: a short range, or one holding few site days (see PROBE_SHARE)."""
    if (to_day - from_day).days < PROBE_DAYS:
        return True
    in_range, table_rows = session.execute(RANGE_ROWS, {"from_day": from_day, "to_day": to_day}).one()
    return in_range <= PROBE_SHARE * table_rows
