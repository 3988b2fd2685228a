"""Site days: closing registers and daily generation, rebuilt from each scope site's anchor reading on.

The scope (temporary table `compute_scope`, see engine.py) gives each site a `from_day`. The
anchor is the site's last reading before that day; its own site-day row is kept and its
`flat_since` continues the flat run. Days after the anchor are rebuilt from the readings, so a
late reading also corrects the estimated days before it. A site without an anchor row is
rebuilt from its first reading.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

# Anchor of every site with a from_day; sites whose anchor has no site-day row are rebuilt whole.
ANCHOR = text("""
    UPDATE compute_scope sc
       SET anchor_day = x.anchor_day, anchor_flat = x.flat_since, from_day = x.anchor_day + 1
      FROM (SELECT s.site_pk, CASE WHEN sd.flat_since IS NOT NULL THEN a.day END AS anchor_day, sd.flat_since
              FROM compute_scope s
              LEFT JOIN LATERAL (
                    SELECT (r.reading_at AT TIME ZONE :timezone)::date AS day
                      FROM readings r
                     WHERE r.site_pk = s.site_pk
                       AND r.reading_at < (s.from_day::timestamp AT TIME ZONE :timezone)
                     ORDER BY r.reading_at DESC LIMIT 1) a ON true
              LEFT JOIN site_days sd ON sd.site_pk = s.site_pk AND sd.day = a.day AND sd.closing_at IS NOT NULL
             WHERE s.from_day IS NOT NULL) x
     WHERE sc.site_pk = x.site_pk
""")

# (OFFSET 0 keeps each LATERAL a per-site index range scan instead of a join over the whole table.)
# Sites rebuilt whole lose their rows first; the others are upserted (readings are never deleted,
# so a site's days after its anchor only ever gain rows).
CLEAR = text("""
    DELETE FROM site_days WHERE site_pk = ANY(ARRAY(SELECT site_pk FROM compute_scope WHERE anchor_day IS NULL))
""")

# One pass over the readings in key order: running counts give each day's totals at its closing
# reading; a second window over closing readings gives deltas and flat runs; days between two
# closing readings more than a day apart are filled in with their share of the delta.
REBUILD = text("""
    WITH scoped AS (
        SELECT r.site_pk, r.reading_at, r.register_kwh, r.signal_level, r.network,
               (r.reading_at AT TIME ZONE :timezone)::date AS day,
               count(*) OVER w AS n_cum,
               coalesce(sum(r.signal_level) OVER w, 0) AS sig_cum,
               count(r.signal_level) OVER w AS sig_n_cum,
               lead(r.reading_at) OVER w AS next_at
          FROM compute_scope sc
          CROSS JOIN LATERAL (
                SELECT * FROM readings r
                 WHERE r.site_pk = sc.site_pk
                   AND r.reading_at >= coalesce(sc.anchor_day::timestamp AT TIME ZONE :timezone, '-infinity')
                 ORDER BY r.reading_at OFFSET 0) r
        WINDOW w AS (PARTITION BY r.site_pk ORDER BY r.reading_at)
    ), closing AS (
        SELECT site_pk, day, reading_at AS closing_at, register_kwh AS closing_kwh, signal_level AS closing_signal,
               network, n_cum, sig_cum, sig_n_cum
          FROM scoped
         WHERE next_at IS NULL OR (next_at AT TIME ZONE :timezone)::date <> day
    ), stepped AS (
        SELECT c.*,
               lag(c.day) OVER w AS prev_day,
               c.closing_kwh - lag(c.closing_kwh) OVER w AS delta,
               c.n_cum - coalesce(lag(c.n_cum) OVER w, 0) AS readings,
               c.sig_cum - coalesce(lag(c.sig_cum) OVER w, 0) AS signal_sum,
               c.sig_n_cum - coalesce(lag(c.sig_n_cum) OVER w, 0) AS signal_n
          FROM closing c
        WINDOW w AS (PARTITION BY c.site_pk ORDER BY c.day)
    ), flat AS (
        SELECT s.*,
               max(CASE WHEN s.day = sc.anchor_day THEN sc.anchor_flat
                        WHEN s.delta IS NULL OR abs(s.delta) > :flat_tolerance_kwh THEN s.day END)
                   OVER (PARTITION BY s.site_pk ORDER BY s.day ROWS UNBOUNDED PRECEDING) AS flat_since,
               s.day - s.prev_day AS k
          FROM stepped s JOIN compute_scope sc ON sc.site_pk = s.site_pk
    ), fresh AS (
        SELECT f.* FROM flat f JOIN compute_scope sc ON sc.site_pk = f.site_pk
         WHERE sc.anchor_day IS NULL OR f.day > sc.anchor_day
    )
    INSERT INTO site_days (site_pk, day, closing_at, closing_kwh, closing_signal, network, readings, signal_sum,
                           signal_n, generation_kwh, estimated, rollback, segment_end, flat_since)
    SELECT site_pk, day, closing_at, closing_kwh, closing_signal, network, readings, signal_sum, signal_n,
           CASE WHEN delta >= 0 THEN delta / k END, coalesce(k > 1 AND delta >= 0, false), coalesce(delta < 0, false),
           day, flat_since
      FROM fresh
    UNION ALL
    SELECT site_pk, d::date, NULL, NULL, NULL, NULL, 0, 0, 0,
           CASE WHEN delta >= 0 THEN delta / k END, delta >= 0, false, day, NULL
      FROM fresh, generate_series(prev_day + 1, day - 1, interval '1 day') AS d
     WHERE k > 1
    ON CONFLICT (site_pk, day) DO UPDATE
       SET closing_at = excluded.closing_at, closing_kwh = excluded.closing_kwh,
           closing_signal = excluded.closing_signal, network = excluded.network,
           readings = excluded.readings, signal_sum = excluded.signal_sum, signal_n = excluded.signal_n,
           generation_kwh = excluded.generation_kwh, estimated = excluded.estimated, rollback = excluded.rollback,
           segment_end = excluded.segment_end, flat_since = excluded.flat_since
""")


def rebuild_site_days(session: Session, timezone: str, flat_tolerance_kwh: float) -> int:
    """Rebuild the site days of every scope site after its anchor; returns rows written."""
    params = {"timezone": timezone, "flat_tolerance_kwh": flat_tolerance_kwh}
    session.execute(ANCHOR, params)
    session.execute(text("ANALYZE compute_scope"))
    session.execute(CLEAR)
    return session.execute(REBUILD, params).rowcount
