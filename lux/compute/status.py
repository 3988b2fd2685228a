"""Communication status of every scope site as of a day, reading only each site's last few site days.

The table holds each site's status as of the latest day computed: a run as of an earlier day
(a backfill) never replaces a later status.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

# Two index probes per site through the site_days key: the last reading day and the reference
# reading day `zero_read_days` before it.
STATUS = text("""
    INSERT INTO site_status AS st (site_pk, as_of, status, days, last_day, last_reading_at, last_register_kwh,
                                   signal_level, network, computed_at)
    SELECT sc.site_pk, :as_of,
           CASE WHEN l.day IS NULL OR :as_of - l.day >= :no_coms_days THEN 'no_coms'
                WHEN ref.closing_kwh IS NOT NULL AND abs(l.closing_kwh - ref.closing_kwh) <= :flat_tolerance_kwh
                     THEN 'zero_read'
                ELSE 'healthy' END,
           CASE WHEN l.day IS NULL OR :as_of - l.day >= :no_coms_days THEN :as_of - l.day
                WHEN ref.closing_kwh IS NOT NULL AND abs(l.closing_kwh - ref.closing_kwh) <= :flat_tolerance_kwh
                     THEN l.day - l.flat_since
                ELSE :as_of - l.day END,
           l.day, l.closing_at, l.closing_kwh, l.closing_signal, l.network, now()
      FROM compute_scope sc
      LEFT JOIN LATERAL (
            SELECT sd.day, sd.closing_at, sd.closing_kwh, sd.closing_signal, sd.network, sd.flat_since
              FROM site_days sd
             WHERE sd.site_pk = sc.site_pk AND sd.day <= :as_of AND sd.closing_at IS NOT NULL
             ORDER BY sd.day DESC LIMIT 1) l ON true
      LEFT JOIN LATERAL (
            SELECT sd.closing_kwh
              FROM site_days sd
             WHERE sd.site_pk = sc.site_pk AND sd.day <= l.day - :zero_read_days AND sd.closing_at IS NOT NULL
             ORDER BY sd.day DESC LIMIT 1) ref ON true
    ON CONFLICT (site_pk) DO UPDATE
       SET as_of = excluded.as_of, status = excluded.status, days = excluded.days, last_day = excluded.last_day,
           last_reading_at = excluded.last_reading_at, last_register_kwh = excluded.last_register_kwh,
           signal_level = excluded.signal_level, network = excluded.network, computed_at = excluded.computed_at
     WHERE st.as_of <= excluded.as_of
""")


def refresh_status(session: Session, params: dict, as_of: object) -> int:
    """Upsert the status of every scope site as of `as_of`; returns rows written."""
    return session.execute(STATUS, {**params, "as_of": as_of}).rowcount
