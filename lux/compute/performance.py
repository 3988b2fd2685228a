"""Monthly performance of the scope sites against their expected (PVGIS) generation."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from lux.compute.sqlparts import days_in_month_sql

CLEAR = text("""
    DELETE FROM monthly_performance mp USING compute_scope sc
     WHERE mp.site_pk = sc.site_pk
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
                   (SELECT eg.expected_kwh * d.covered_days / {days_in_month_sql("d.month")}
                      FROM expected_generation eg
                     WHERE eg.site_pk = sc.site_pk AND eg.month = CAST(extract(month FROM d.month) AS int))
                       AS expected_kwh
              FROM (SELECT date_trunc('month', sd.day::timestamp)::date AS month,
                           sum(sd.generation_kwh ORDER BY sd.day) AS actual_kwh, count(*) AS covered_days
                      FROM site_days sd
                     WHERE sd.site_pk = sc.site_pk AND sd.generation_kwh IS NOT NULL
                       AND sd.day <= :as_of AND sd.segment_end <= :as_of
                       AND sd.day >= coalesce(date_trunc('month', sc.from_day::timestamp)::date, '-infinity')
                     GROUP BY 1) d
             OFFSET 0) m
""")


def rebuild_performance(session: Session, as_of: object) -> int:
    """Rebuild the monthly performance of the scope sites as of `as_of`; returns rows written."""
    session.execute(CLEAR, {"as_of": as_of})
    return session.execute(REBUILD, {"as_of": as_of}).rowcount
