"""Anomaly episodes of the scope sites, rebuilt only from where new data can change them.

For a site rebuilt from day `f` (its anchor reading day + 1), days up to `cut = min(f − 1, last
reading day)` keep their values, so episodes ending before `cut` cannot change. The rest (running
ones included) are deleted and recomputed from a window starting at `cut`, or earlier when a
deleted spike or low-signal episode started earlier. A spike or low-signal episode whose days all
lie on or before `cut` and that reaches `cut` is *continued* instead: it is kept, and the
recomputed run starting at `cut` extends it (end, running, and the min or max of its details),
so a long running episode is not re-read from its first day every night. That is the case of an
episode ending on `cut`, and of a running one of the previous run when `cut` is that run's as-of
day and the site's latest reading day (a spike also needs `cut` itself over the limit). A
recomputed run that continues a kept episode (it starts the day after one ends, or inside it) is
written into that episode. Low-signal days read six days of context before the window. A site
without a `from_day` is recomputed from its first day. Underperformance is recomputed from the
site's monthly performance rows, which are few, unless the site's months were only extended and
their latest neither was nor is below the threshold (see UNDERPERFORMANCE).
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from lux.compute.sqlparts import latest_closing_sql

# Each scope site's last reading day (`last_day`), which its episodes run to, and its cut. The last reading day is
# that of the status stored once this run has written its own, which it does last (see engine.py): the run's own
# (its tail's last day, or when the tail ends after the as-of day the latest site day on or before it, as
# status.COMPUTED finds them), unless the stored status is as of a later day or from a later reading (status.NOT_OLDER:
# then the run does not replace it). But never past the run's own tail: a follow may have written the status from a
# reading committed after the run read the readings, and its days are not built yet. (Not `least`, which ignores a
# null: a status without a reading day as of its day has none.)
WINDOW = text(f"""
    WITH last AS (
        SELECT sc.site_pk, CASE WHEN t.last_day < kept.day THEN t.last_day ELSE kept.day END AS day
          FROM compute_scope sc
          LEFT JOIN site_tails t ON t.site_pk = sc.site_pk
          LEFT JOIN site_status st ON st.site_pk = sc.site_pk
          LEFT JOIN LATERAL (  -- the site days are read only for a tail that ends after the as-of day
                SELECT t.last_day AS day, t.closing_at WHERE t.last_day <= :as_of
                UNION ALL
                SELECT p.day, p.closing_at
                  FROM ({latest_closing_sql("sc.site_pk", ":as_of", "NOT coalesce(t.last_day <= :as_of, false)")}) p
          ) run ON true
         CROSS JOIN LATERAL (
                SELECT CASE WHEN st.as_of > :as_of OR st.last_reading_at > run.closing_at THEN st.last_day
                            ELSE run.day END AS day) kept
    )
    UPDATE compute_scope sc
       SET last_day = l.day,
           cut = CASE WHEN sc.from_day IS NULL OR l.day IS NULL THEN NULL ELSE least(sc.from_day - 1, l.day) END
      FROM last l
     WHERE l.site_pk = sc.site_pk
""")

# A kept episode is continued only when every day of it is on or before the cut, so its details stand.
CONTINUED = """
    a.type IN ('spike', 'low_signal') AND a.start_day < sc.cut
    AND (a.end_day = sc.cut
         OR a.end_day IS NULL AND a.as_of = sc.cut AND sc.prior_last = sc.cut
            AND (a.type = 'low_signal'
                 OR EXISTS (SELECT 1 FROM site_days v JOIN sites s ON s.id = v.site_pk
                             WHERE v.site_pk = a.site_pk AND v.day = sc.cut
                               AND v.generation_kwh > s.capacity_kwp * :max_daily_yield)))"""

# An episode found again (same site, type and first day) is rewritten in place.
REWRITE = """ON CONFLICT (site_pk, type, start_day) DO UPDATE
       SET end_day = excluded.end_day, details = excluded.details, as_of = excluded.as_of,
           computed_at = excluded.computed_at"""

CLEAR = text(f"""
    WITH deleted AS (
        DELETE FROM anomalies a USING compute_scope sc
         WHERE a.site_pk = sc.site_pk
           AND (sc.cut IS NULL
                OR a.type = 'underperformance' AND (NOT sc.month_append OR a.end_day IS NULL)
                OR a.type <> 'underperformance' AND (a.end_day IS NULL OR a.end_day >= sc.cut)
                   AND NOT coalesce({CONTINUED}, false))
        RETURNING a.site_pk, a.type, a.start_day
    ), earliest AS (
        SELECT site_pk, min(start_day) FILTER (WHERE type IN ('spike', 'low_signal')) AS start_day,
               bool_or(type = 'underperformance') AS underperformed
          FROM deleted GROUP BY site_pk
    )
    UPDATE compute_scope sc SET window_from = CASE WHEN sc.cut IS NOT NULL THEN least(sc.cut, e.start_day) END,
                                rate_months = NOT sc.month_append OR coalesce(e.underperformed, false)
      FROM compute_scope s LEFT JOIN earliest e ON e.site_pk = s.site_pk
     WHERE sc.site_pk = s.site_pk
""")

# What each day-based episode reads of a day (unqualified columns of the episode statement's days): the branches
# below and the filter that keeps only the days some branch reads share them.
IN_WINDOW = "(window_from IS NULL OR day >= window_from)"
LOW_SIGNAL = f"(n7 > 0 AND s7::float8 / n7 < :low_signal_csq AND {IN_WINDOW})"
SPIKE = f"(generation_kwh > capacity_kwp * :max_daily_yield AND {IN_WINDOW})"
ROLLBACK = f"(rollback AND {IN_WINDOW})"
# only days at least zero_read_days into their flat run: a long enough run's last day is one of them
STUCK = f"(reading_day AND day - flat_since >= :zero_read_days AND {IN_WINDOW})"
GAP = "(NOT reading_day AND NOT after_last)"

# Day-based episodes: rows of the window (as of the run's day) plus up to six days after the last
# reading, over which the seven-day signal mean still runs. Each site's days, those days included, and their
# seven-day signal sums come out of its own key range in day order, so no step sorts every day of the scope.
# Only the days some episode reads are kept (`base`): a site's history is mostly none of them.
DAY_EPISODES = text(f"""
    WITH days AS (
        SELECT sc.site_pk, sd.day, sd.reading_day, sd.after_last, sd.closing_kwh, sd.generation_kwh, sd.rollback,
               sd.flat_since, sd.s7, sd.n7, s.capacity_kwp, sc.window_from, sc.last_day
          FROM compute_scope sc
          JOIN sites s ON s.id = sc.site_pk
          CROSS JOIN LATERAL (
                SELECT d.*, sum(d.signal_sum) OVER w AS s7, sum(d.signal_n) OVER w AS n7
                  FROM (SELECT sd.day, sd.closing_at IS NOT NULL AS reading_day, false AS after_last, sd.closing_kwh,
                               sd.generation_kwh, sd.rollback, sd.flat_since, sd.signal_sum, sd.signal_n
                          FROM site_days sd
                         WHERE sd.site_pk = sc.site_pk AND sd.day <= sc.last_day
                           AND sd.day >= coalesce(sc.window_from - 6, '-infinity')
                        UNION ALL
                        SELECT g::date, false, true, NULL, NULL, false, NULL, 0, 0
                          FROM generate_series(sc.last_day + 1, least(CAST(:as_of AS date), sc.last_day + 6),
                                               interval '1 day') g) d
                WINDOW w AS (ORDER BY d.day ROWS 6 PRECEDING)) sd
    ), base AS (
        SELECT * FROM days WHERE {LOW_SIGNAL} OR {SPIKE} OR {ROLLBACK} OR {STUCK} OR {GAP}
    ), flagged AS (
        SELECT site_pk, 'low_signal' AS type, day, s7::float8 / n7 AS value,
               day = CAST(:as_of AS date) AS at_end
          FROM base
         WHERE {LOW_SIGNAL}
        UNION ALL
        SELECT b.site_pk, 'spike', b.day, b.generation_kwh,
               b.day = (SELECT max(v.day) FROM site_days v
                         WHERE v.site_pk = b.site_pk AND v.day <= b.last_day AND v.generation_kwh IS NOT NULL)
          FROM base b
         WHERE {SPIKE}
        UNION ALL
        SELECT site_pk, 'gap', day, NULL, false
          FROM base WHERE {GAP}
    ), islands AS (
        SELECT site_pk, type, min(day) AS start_day, max(day) AS end_day, bool_or(at_end) AS running,
               min(value) AS min_value, max(value) AS max_value, count(*) AS days
          FROM (SELECT f.*, f.day - CAST(row_number() OVER (PARTITION BY site_pk, type ORDER BY day) AS int) AS grp
                  FROM flagged f) g
         GROUP BY site_pk, type, grp
    ), episodes AS (  -- prev_start: the start of the site's previous new episode of the type (see kept below)
        SELECT i.site_pk, i.type, i.start_day, CASE WHEN i.running THEN NULL ELSE i.end_day END AS end_day,
               CASE i.type WHEN 'low_signal' THEN jsonb_build_object('min_mean_csq', round(i.min_value::numeric, 3))
                           WHEN 'spike' THEN jsonb_build_object(
                               'max_kwh', round(i.max_value::numeric, 3),
                               'limit_kwh', round((s.capacity_kwp * :max_daily_yield)::numeric, 3))
                           ELSE jsonb_build_object('days', i.days) END AS details,
               lag(i.start_day) OVER (PARTITION BY i.site_pk, i.type ORDER BY i.start_day) AS prev_start
          FROM islands i JOIN sites s ON s.id = i.site_pk
         WHERE i.type <> 'gap' OR i.days >= 2
        UNION ALL
        SELECT b.site_pk, 'register_rollback', b.day, b.day,
               jsonb_build_object('from_kwh', p.closing_kwh, 'to_kwh', b.closing_kwh), NULL
          FROM base b
          JOIN LATERAL (SELECT v.closing_kwh FROM site_days v
                         WHERE v.site_pk = b.site_pk AND v.day < b.day AND v.closing_at IS NOT NULL
                         ORDER BY v.day DESC LIMIT 1) p ON true
         WHERE {ROLLBACK}
        UNION ALL
        SELECT site_pk, 'stuck_register', flat_since,
               CASE WHEN max(day) = max(last_day) THEN NULL ELSE max(day) END,
               jsonb_build_object('register_kwh', (array_agg(closing_kwh ORDER BY day DESC))[1],
                                  'days', max(day) - flat_since), NULL
          FROM base
         WHERE {STUCK}
         GROUP BY site_pk, flat_since
    )
    INSERT INTO anomalies AS a (site_pk, type, start_day, end_day, details, as_of, computed_at)
    SELECT e.site_pk, e.type, coalesce(kept.start_day, e.start_day), e.end_day,
           CASE WHEN kept.start_day IS NULL THEN e.details
                WHEN e.type = 'low_signal' THEN jsonb_build_object('min_mean_csq', least(
                    CAST(kept.details ->> 'min_mean_csq' AS numeric), CAST(e.details ->> 'min_mean_csq' AS numeric)))
                ELSE e.details || jsonb_build_object('max_kwh', greatest(
                    CAST(kept.details ->> 'max_kwh' AS numeric), CAST(e.details ->> 'max_kwh' AS numeric))) END,
           :as_of, now()
      FROM episodes e
      -- a kept episode's last day: its end, or for a continued running one its as-of day (the cut). It continues
      -- only the first new episode after its start: with the parameters it was found with, no later one reaches it;
      -- found with other thresholds (changed between runs), it may reach several, which must not all become it.
      LEFT JOIN LATERAL (
            SELECT k.start_day, k.details FROM anomalies k
             WHERE e.type IN ('spike', 'low_signal', 'gap') AND k.site_pk = e.site_pk AND k.type = e.type
               AND k.start_day < e.start_day AND coalesce(k.end_day, k.as_of) >= e.start_day - 1
               AND (e.prev_start IS NULL OR k.start_day > e.prev_start)
             ORDER BY k.start_day DESC LIMIT 1) kept ON true
     WHERE e.type <> 'gap' OR kept.start_day IS NULL
    {REWRITE}
""")

# The months of a site whose months were extended (performance.APPEND) changed from its anchor's month on, the
# latest: only an episode running into them, or one they now join (below the threshold), can change. Those sites'
# running episodes were cleared (rate_months), so they are rated again with the others, and the episodes they
# had are rewritten in place; every other extended site keeps its episodes. The rated sites' months are read through
# the key, site by site (OFFSET 0): a night rates a few sites in twenty, and a join would scan every site's months.
UNDERPERFORMANCE = text(f"""
    WITH rated AS (
        SELECT mp.site_pk, mp.month, mp.actual_kwh, mp.expected_kwh, mp.ratio_pct,
               max(mp.month) OVER (PARTITION BY mp.site_pk) AS latest,
               (extract(year FROM mp.month) * 12 + extract(month FROM mp.month))::int AS ordinal
          FROM compute_scope sc
         CROSS JOIN LATERAL (SELECT m.* FROM monthly_performance m
                              WHERE m.site_pk = sc.site_pk AND m.ratio_pct IS NOT NULL OFFSET 0) mp
         WHERE sc.rate_months
            OR EXISTS (SELECT 1 FROM monthly_performance m
                        WHERE m.site_pk = sc.site_pk AND m.month >= date_trunc('month', sc.anchor_day::timestamp)
                          AND m.ratio_pct < :performance_threshold)
    ), islands AS (
        SELECT site_pk, min(month) AS first_month, max(month) AS last_month, bool_or(month = latest) AS running,
               count(*) AS months, sum(actual_kwh) AS actual_kwh, sum(expected_kwh) AS expected_kwh
          FROM (SELECT r.*, r.ordinal - row_number() OVER (PARTITION BY site_pk ORDER BY month) AS grp
                  FROM rated r WHERE r.ratio_pct < :performance_threshold) g
         GROUP BY site_pk, grp
    )
    INSERT INTO anomalies (site_pk, type, start_day, end_day, details, as_of, computed_at)
    SELECT site_pk, 'underperformance', first_month,
           CASE WHEN running THEN NULL ELSE (last_month + interval '1 month' - interval '1 day')::date END,
           jsonb_build_object('months', months, 'ratio_pct', round((100 * actual_kwh / expected_kwh)::numeric, 2)),
           :as_of, now()
      FROM islands
    {REWRITE}
""")


def rebuild_anomalies(session: Session, params: dict, as_of: object) -> int:
    """Rebuild the anomaly episodes of the scope sites as of `as_of`; returns rows written."""
    bound = {**params, "as_of": as_of}
    session.execute(WINDOW, bound)
    session.execute(CLEAR, bound)
    return session.execute(DAY_EPISODES, bound).rowcount + session.execute(UNDERPERFORMANCE, bound).rowcount
