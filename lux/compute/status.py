"""Communication status of every scope site as of a day, from its tail or its last few site days.

The table holds each site's status as of the latest day computed: a run as of an earlier day
(a backfill) never replaces a later status.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from lux.compute.daily import REFERENCE
from lux.compute.sqlparts import latest_closing_sql

# SPEC §4's status of a site as of `:as_of` from `l`, its latest reading day on or before it: `l.day`, the closing
# reading (`closing_at`, `closing_kwh`, `closing_signal`, `network`), `flat_since` and `ref_kwh` (the reference
# reading). The columns of site_status after `site_pk`, but `computed_at`.
STATUS_OF_LATEST = """CAST(:as_of AS date) AS as_of,
               CASE WHEN l.day IS NULL OR :as_of - l.day >= :no_coms_days THEN 'no_coms'
                    WHEN l.ref_kwh IS NOT NULL AND abs(l.closing_kwh - l.ref_kwh) <= :flat_tolerance_kwh
                         THEN 'zero_read'
                    ELSE 'healthy' END AS status,
               CASE WHEN l.day IS NULL OR :as_of - l.day >= :no_coms_days THEN :as_of - l.day
                    WHEN l.ref_kwh IS NOT NULL AND abs(l.closing_kwh - l.ref_kwh) <= :flat_tolerance_kwh
                         THEN l.day - l.flat_since
                    ELSE :as_of - l.day END AS days,
               l.day AS last_day, l.closing_at AS last_reading_at, l.closing_kwh AS last_register_kwh,
               l.closing_signal AS signal_level, l.network"""

# The latest reading day ≤ as-of and the reference reading `zero_read_days` before it: from the site's tail
# when it ends by the as-of day and was kept for these zero_read_days (one row per site), otherwise from two
# index probes through the site_days key (a status as of a day before the site's latest reading).
COMPUTED = f"""
    WITH computed AS (
        SELECT sc.site_pk, {STATUS_OF_LATEST}
          FROM compute_scope sc
          LEFT JOIN site_tails t ON t.site_pk = sc.site_pk AND t.zero_read_days = :zero_read_days
                                AND (t.last_day IS NULL OR t.last_day <= :as_of)
          LEFT JOIN LATERAL (
                SELECT t.last_day AS day, t.closing_at, t.closing_kwh, t.closing_signal, t.network, t.flat_since,
                       t.ref_kwh
                 WHERE t.site_pk IS NOT NULL
                UNION ALL
                SELECT p.day, p.closing_at, p.closing_kwh, p.closing_signal, p.network, p.flat_since, p.ref_kwh
                  FROM ({latest_closing_sql("sc.site_pk", ":as_of", "t.site_pk IS NULL")}) p) l ON true
    )"""

# A large scope updates the stored rows through one join (cheaper than an upsert's probe per row) and
# inserts the missing ones; a small one writes by key, so it does not read every stored status.
STATUS_BY_JOIN = text(COMPUTED + """, updated AS (
        UPDATE site_status st
           SET as_of = c.as_of, status = c.status, days = c.days, last_day = c.last_day,
               last_reading_at = c.last_reading_at, last_register_kwh = c.last_register_kwh,
               signal_level = c.signal_level, network = c.network, computed_at = now()
          FROM computed c
         WHERE st.site_pk = c.site_pk AND st.as_of <= c.as_of
        RETURNING 1
    ), inserted AS (
        INSERT INTO site_status (site_pk, as_of, status, days, last_day, last_reading_at, last_register_kwh,
                                 signal_level, network, computed_at)
        SELECT c.*, now() FROM computed c
         WHERE NOT EXISTS (SELECT 1 FROM site_status st WHERE st.site_pk = c.site_pk)
        ON CONFLICT (site_pk) DO NOTHING
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM updated) + (SELECT count(*) FROM inserted)
""")

# Written by key, unless a later as-of day is stored.
UPSERT = """
    INSERT INTO site_status AS st (site_pk, as_of, status, days, last_day, last_reading_at, last_register_kwh,
                                   signal_level, network, computed_at)
    SELECT c.*, now() FROM computed c
    ON CONFLICT (site_pk) DO UPDATE
       SET as_of = excluded.as_of, status = excluded.status, days = excluded.days, last_day = excluded.last_day,
           last_reading_at = excluded.last_reading_at, last_register_kwh = excluded.last_register_kwh,
           signal_level = excluded.signal_level, network = excluded.network, computed_at = excluded.computed_at
     WHERE st.as_of <= excluded.as_of
"""
STATUS_BY_KEY = text(COMPUTED + UPSERT)

# Scopes of up to this many sites write by key: the join reads every stored status, whatever the scope.
BY_KEY_MAX_SITES = 20_000


def refresh_status(session: Session, params: dict, as_of: object, scope_sites: int) -> int:
    """Write the status of every scope site as of `as_of` (unless a later one is stored); returns rows written."""
    bound = {**params, "as_of": as_of}
    if scope_sites <= BY_KEY_MAX_SITES:
        return session.execute(STATUS_BY_KEY, bound).rowcount
    return session.execute(STATUS_BY_JOIN, bound).scalar_one()


# The closing readings of site `t`'s newest zero_read_days + 2 reading days from its tail's day through the as-of
# day: the first reading of each day in a backward range of the readings key, which stops once it has them.
NEWEST_CLOSINGS = """
        SELECT r.day, r.reading_at, r.register_kwh AS kwh, r.signal_level, r.network
          FROM (SELECT r.*, d.day, lag(d.day) OVER (ORDER BY r.reading_at DESC) AS newer_day
                  FROM readings r
                 CROSS JOIN LATERAL (SELECT (r.reading_at AT TIME ZONE :timezone)::date AS day) d
                 WHERE r.site_pk = t.site_pk AND r.reading_at >= t.last_day::timestamp AT TIME ZONE :timezone
                   AND r.reading_at < (CAST(:as_of AS date) + 1)::timestamp AT TIME ZONE :timezone
                 ORDER BY r.reading_at DESC) r
         WHERE r.newer_day IS DISTINCT FROM r.day
         LIMIT CAST(:zero_read_days AS int) + 2"""

# The status of sites that new readings reached, before their recompute: each asked site (pk, earliest day its new
# readings are on) whose tail ends on or before that day and by the as-of day, and was kept for these
# zero_read_days with its recent days. Such readings change only the tail's day and later ones. The closing
# readings of the site's newest zero_read_days + 2 reading days from the tail's day through the as-of day (`n`,
# one backward range of the readings key, stopped early) hold `ref`; when they reach the tail's day they continue
# its recent days. The flat run is the latest day among them that moved the register, else the tail's: known when
# they reach the tail's day and its closing reading is the tail's, or the register moved on it, or the tail's flat
# run began before it. Any other site is left to its recompute, as are sites with readings before their tail's day.
FOLLOWED = text(f"""
    WITH asked AS (
        SELECT u.pk AS site_pk, min(u.from_day) AS from_day
          FROM unnest(CAST(:pks AS int[]), CAST(:from_days AS date[])) AS u(pk, from_day)
         GROUP BY u.pk
    ), latest AS (
        SELECT t.site_pk, n.days[1] AS day, n.closing_at, n.kwh[1] AS closing_kwh, n.closing_signal, n.network,
               CASE WHEN n.moved IS NOT NULL THEN n.moved
                    WHEN n.tail_closing_at IS NULL THEN NULL
                    WHEN n.tail_closing_at = t.closing_at THEN t.flat_since
                    WHEN t.recent_kwh[2] IS NULL OR abs(n.tail_kwh - t.recent_kwh[2]) > :flat_tolerance_kwh
                         THEN t.last_day
                    WHEN t.flat_since < t.last_day THEN t.flat_since END AS flat_since,
               CASE WHEN n.tail_closing_at IS NULL THEN {REFERENCE.format(days="n.days", kwh="n.kwh")}
                    ELSE {REFERENCE.format(days="n.days || t.recent_days[2:]", kwh="n.kwh || t.recent_kwh[2:]")}
                    END AS ref_kwh
          FROM asked a
          JOIN site_tails t ON t.site_pk = a.site_pk AND t.zero_read_days = :zero_read_days
                           AND t.recent_days IS NOT NULL AND t.last_day <= a.from_day AND t.last_day <= :as_of
          CROSS JOIN LATERAL (
                SELECT array_agg(c.day ORDER BY c.day DESC) AS days, array_agg(c.kwh ORDER BY c.day DESC) AS kwh,
                       (array_agg(c.reading_at ORDER BY c.day DESC))[1] AS closing_at,
                       (array_agg(c.signal_level ORDER BY c.day DESC))[1] AS closing_signal,
                       (array_agg(c.network ORDER BY c.day DESC))[1] AS network,
                       max(c.day) FILTER (WHERE abs(c.delta) > :flat_tolerance_kwh) AS moved,
                       max(c.reading_at) FILTER (WHERE c.day = t.last_day) AS tail_closing_at,
                       max(c.kwh) FILTER (WHERE c.day = t.last_day) AS tail_kwh
                  FROM (SELECT w.*, w.kwh - lead(w.kwh) OVER (ORDER BY w.day DESC) AS delta  -- oldest: none
                          FROM ({NEWEST_CLOSINGS}) w) c) n
         WHERE n.days IS NOT NULL
    ), computed AS (
        SELECT l.site_pk, {STATUS_OF_LATEST} FROM latest l WHERE l.flat_since IS NOT NULL
    ){UPSERT}""")


def follow_status(session: Session, params: dict, as_of: object, from_days: dict[int, object]) -> int:
    """Write the status as of `as_of` of the sites of `from_days` (site pk → earliest day of its new readings)
    that FOLLOWED can follow from their tails; returns rows written. The caller holds the sites' locks."""
    pks = sorted(from_days)
    bound = {**params, "as_of": as_of, "pks": pks, "from_days": [from_days[pk] for pk in pks]}
    return session.execute(FOLLOWED, bound).rowcount
