"""Communication status of every scope site as of a day, from its tail or its last few site days.

The table holds each site's status as of the latest day computed: a run as of an earlier day
(a backfill) never replaces a later status.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from lux.compute.sqlparts import latest_closing_sql

# The latest reading day ≤ as-of and the reference reading `zero_read_days` before it: from the site's tail
# when it ends by the as-of day and was kept for these zero_read_days (one row per site), otherwise from two
# index probes through the site_days key (a status as of a day before the site's latest reading).
COMPUTED = f"""
    WITH computed AS (
        SELECT sc.site_pk, CAST(:as_of AS date) AS as_of,
               CASE WHEN l.day IS NULL OR :as_of - l.day >= :no_coms_days THEN 'no_coms'
                    WHEN l.ref_kwh IS NOT NULL AND abs(l.closing_kwh - l.ref_kwh) <= :flat_tolerance_kwh
                         THEN 'zero_read'
                    ELSE 'healthy' END AS status,
               CASE WHEN l.day IS NULL OR :as_of - l.day >= :no_coms_days THEN :as_of - l.day
                    WHEN l.ref_kwh IS NOT NULL AND abs(l.closing_kwh - l.ref_kwh) <= :flat_tolerance_kwh
                         THEN l.day - l.flat_since
                    ELSE :as_of - l.day END AS days,
               l.day AS last_day, l.closing_at AS last_reading_at, l.closing_kwh AS last_register_kwh,
               l.closing_signal AS signal_level, l.network
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

STATUS_BY_KEY = text(COMPUTED + """
    INSERT INTO site_status AS st (site_pk, as_of, status, days, last_day, last_reading_at, last_register_kwh,
                                   signal_level, network, computed_at)
    SELECT c.*, now() FROM computed c
    ON CONFLICT (site_pk) DO UPDATE
       SET as_of = excluded.as_of, status = excluded.status, days = excluded.days, last_day = excluded.last_day,
           last_reading_at = excluded.last_reading_at, last_register_kwh = excluded.last_register_kwh,
           signal_level = excluded.signal_level, network = excluded.network, computed_at = excluded.computed_at
     WHERE st.as_of <= excluded.as_of
""")

# Scopes of up to this many sites write by key: the join reads every stored status, whatever the scope.
BY_KEY_MAX_SITES = 20_000


def refresh_status(session: Session, params: dict, as_of: object, scope_sites: int) -> int:
    """Write the status of every scope site as of `as_of` (unless a later one is stored); returns rows written."""
    bound = {**params, "as_of": as_of}
    if scope_sites <= BY_KEY_MAX_SITES:
        return session.execute(STATUS_BY_KEY, bound).rowcount
    return session.execute(STATUS_BY_JOIN, bound).scalar_one()
