"""Monthly performance of the scope sites against their expected (PVGIS) generation.

A site whose new site days all follow its latest known reading day (its anchor), and whose stored
months were computed as of that day or later, has its months extended by the days this run wrote
(`rebuilt_days`): each sum continues from the stored one in day order, which is the very sum a
rebuild computes. Every other site has its months from the one holding its from-day re-summed.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from lux.compute.daily import APPENDED
from lux.compute.sqlparts import days_in_month_sql, month_number_sql

# The stored months hold every valued day up to the anchor when the anchor's month was computed as of the anchor
# or later, or when that month has no row and no valued day up to the anchor (the probe runs for those only).
# No month after the anchor's has a row: no site day follows the anchor.
MARK_APPEND = text(f"""
    UPDATE compute_scope sc SET month_append = true
     WHERE {APPENDED} AND sc.anchor_day <= :as_of
       AND coalesce((SELECT mp.as_of >= sc.anchor_day FROM monthly_performance mp
                      WHERE mp.site_pk = sc.site_pk AND mp.month = date_trunc('month', sc.anchor_day::timestamp)),
                    NOT EXISTS (SELECT 1 FROM site_days sd
                                 WHERE sd.site_pk = sc.site_pk AND sd.generation_kwh IS NOT NULL
                                   AND sd.day BETWEEN date_trunc('month', sc.anchor_day::timestamp) AND sc.anchor_day))
""")


def scaled_expected_sql(month_kwh: str, covered: str, month: str) -> str:
    """A month's expected generation scaled to its covered days (one formula, so every path writes the same bits)."""
    return f"{month_kwh} * {covered} / {days_in_month_sql(month)}"


# The new valued days of each month, in day order, continue its stored sum (float8 `sum` adds left to right).
APPEND = text(f"""
    WITH added AS (
        SELECT d.site_pk, date_trunc('month', d.day::timestamp)::date AS month,
               array_agg(d.generation_kwh ORDER BY d.day) AS generation
          FROM rebuilt_days d JOIN compute_scope sc ON sc.site_pk = d.site_pk AND sc.month_append
         WHERE d.generation_kwh IS NOT NULL AND d.day <= :as_of AND d.segment_end <= :as_of
         GROUP BY 1, 2
    ), summed AS MATERIALIZED (
        SELECT a.site_pk, a.month,
               (SELECT sum(u.kwh ORDER BY u.n)
                  FROM unnest(CASE WHEN mp.site_pk IS NULL THEN a.generation ELSE mp.actual_kwh || a.generation END)
                       WITH ORDINALITY u(kwh, n)) AS actual_kwh,
               coalesce(mp.covered_days, 0) + cardinality(a.generation) AS covered_days,
               eg.expected_kwh AS month_expected_kwh
          FROM added a
          LEFT JOIN monthly_performance mp ON mp.site_pk = a.site_pk AND mp.month = a.month
          LEFT JOIN expected_generation eg
                 ON eg.site_pk = a.site_pk AND eg.month = {month_number_sql('a.month')}
    ), rated AS MATERIALIZED (
        SELECT s.site_pk, s.month, s.actual_kwh, s.covered_days,
               {scaled_expected_sql("s.month_expected_kwh", "s.covered_days", "s.month")} AS expected_kwh
          FROM summed s
    )
    INSERT INTO monthly_performance AS mp (site_pk, month, actual_kwh, covered_days, expected_kwh, ratio_pct, as_of,
                                           computed_at)
    SELECT r.site_pk, r.month, r.actual_kwh, r.covered_days, r.expected_kwh,
           CASE WHEN r.expected_kwh > 0 THEN 100 * r.actual_kwh / r.expected_kwh END, :as_of, now()
      FROM rated r
    ON CONFLICT (site_pk, month) DO UPDATE
       SET actual_kwh = excluded.actual_kwh, covered_days = excluded.covered_days,
           expected_kwh = excluded.expected_kwh, ratio_pct = excluded.ratio_pct, as_of = excluded.as_of,
           computed_at = excluded.computed_at
""")

CLEAR = text("""
    DELETE FROM monthly_performance mp USING compute_scope sc
     WHERE mp.site_pk = sc.site_pk AND NOT sc.month_append
       AND (sc.from_day IS NULL OR mp.month >= date_trunc('month', sc.from_day)
            OR mp.month > date_trunc('month', CAST(:as_of AS date)))
""")

# Months from the one holding the site's from_day (all months without one), valued days as of the run's day;
# each site's months are summed inside its own index range scan (no sort of every scope row), and each month's
# expected generation is one probe of its key (OFFSET 0: computed once, not once per use).
REBUILD = text(f"""
    INSERT INTO monthly_performance (site_pk, month, actual_kwh, covered_days, expected_kwh, ratio_pct, as_of,
                                     computed_at)
    SELECT sc.site_pk, m.month, m.actual_kwh, m.covered_days, m.expected_kwh,
           CASE WHEN m.expected_kwh > 0 THEN 100 * m.actual_kwh / m.expected_kwh END, :as_of, now()
      FROM compute_scope sc
     CROSS JOIN LATERAL (
            SELECT d.month, d.actual_kwh, d.covered_days,
                   (SELECT {scaled_expected_sql("eg.expected_kwh", "d.covered_days", "d.month")}
                      FROM expected_generation eg
                     WHERE eg.site_pk = sc.site_pk AND eg.month = {month_number_sql('d.month')})
                       AS expected_kwh
              FROM (SELECT date_trunc('month', sd.day::timestamp)::date AS month,
                           sum(sd.generation_kwh ORDER BY sd.day) AS actual_kwh, count(*) AS covered_days
                      FROM site_days sd
                     WHERE sd.site_pk = sc.site_pk AND sd.generation_kwh IS NOT NULL
                       AND sd.day <= :as_of AND sd.segment_end <= :as_of
                       AND sd.day >= coalesce(date_trunc('month', sc.from_day::timestamp)::date, '-infinity')
                     GROUP BY 1) d
             OFFSET 0) m
     WHERE NOT sc.month_append
""")


def rebuild_performance(session: Session, as_of: object) -> int:
    """Rebuild the monthly performance of the scope sites as of `as_of`; returns rows written."""
    bound = {"as_of": as_of}
    session.execute(MARK_APPEND, bound)
    session.execute(CLEAR, bound)
    return session.execute(REBUILD, bound).rowcount + session.execute(APPEND, bound).rowcount
