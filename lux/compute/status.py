"""Communication status of every scope site as of a day, from its tail or its last few site days.

The table holds each site's status as of the latest day computed: a run as of an earlier day
(a backfill) never replaces a later status. Nor does a run replace a status with a later last reading
than the run saw: a follow (FOLLOWED) may write one from a reading committed after the run read the
readings; that reading's journal entry brings a recompute of its own.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from lux.compute.daily import REFERENCE
from lux.compute.sqlparts import latest_closing_sql

# SPEC §4's status of a site as of `:as_of` from `l`, its latest reading day on or before it: `l.day`, the closing
# reading (`closing_at`, `closing_kwh`, `closing_signal`, `network`), `flat_since`, `ref_kwh` (the reference
# reading) and the recent reading days a status of new readings continues from (`recent_days`, `recent_kwh`, newest
# first; null when not known) with the `zero_read_days` they were kept for. The columns of STATUS_COLUMNS, in order.
STATUS_COLUMNS = ("as_of", "status", "days", "last_day", "last_reading_at", "last_register_kwh", "signal_level",
                  "network", "flat_since", "recent_days", "recent_kwh", "zero_read_days")
COLUMN_LIST = ", ".join(STATUS_COLUMNS)
ASSIGN_FROM = f"({COLUMN_LIST}) = ({', '.join(f'{{row}}.{column}' for column in STATUS_COLUMNS)})"
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
               l.closing_signal AS signal_level, l.network, l.flat_since, l.recent_days, l.recent_kwh,
               CAST(:zero_read_days AS smallint) AS zero_read_days"""

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
                       t.ref_kwh, t.recent_days, t.recent_kwh
                 WHERE t.site_pk IS NOT NULL
                UNION ALL
                SELECT p.day, p.closing_at, p.closing_kwh, p.closing_signal, p.network, p.flat_since, p.ref_kwh,
                       NULL, NULL
                  FROM ({latest_closing_sql("sc.site_pk", ":as_of", "t.site_pk IS NULL")}) p) l ON true
    )"""

# A run's status `{row}` replaces the stored one `st` unless that one is as of a later day or from a later reading.
NOT_OLDER = "st.as_of <= {row}.as_of AND NOT coalesce(st.last_reading_at > {row}.last_reading_at, false)"

# A large scope updates the stored rows through one join (cheaper than an upsert's probe per row) and
# inserts the missing ones; a small one writes by key, so it does not read every stored status.
STATUS_BY_JOIN = text(COMPUTED + f""", updated AS (
        UPDATE site_status st
           SET {ASSIGN_FROM.format(row="c")}, computed_at = now()
          FROM computed c
         WHERE st.site_pk = c.site_pk AND {NOT_OLDER.format(row="c")}
        RETURNING 1
    ), inserted AS (
        INSERT INTO site_status (site_pk, {COLUMN_LIST}, computed_at)
        SELECT c.*, now() FROM computed c
         WHERE NOT EXISTS (SELECT 1 FROM site_status st WHERE st.site_pk = c.site_pk)
        ON CONFLICT (site_pk) DO NOTHING
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM updated) + (SELECT count(*) FROM inserted)
""")

# Written by key, unless a later as-of day or a later reading is stored.
UPSERT = f"""
    INSERT INTO site_status AS st (site_pk, {COLUMN_LIST}, computed_at)
    SELECT c.*, now() FROM computed c
    ON CONFLICT (site_pk) DO UPDATE
       SET {ASSIGN_FROM.format(row="excluded")}, computed_at = excluded.computed_at
     WHERE {NOT_OLDER.format(row="excluded")}
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


# The status of sites that new readings reached, before their recompute, continued from the status stored: each asked
# site (pk, earliest day its new readings are on) whose status knows its recent days, for today's zero_read_days, and
# ends on or before that day and by the as-of day. Such readings change only the status' last day and later ones: the
# closing reading of each day after the stored closing reading replaces the last day's or follows it,
# continuing the recent days (which hold `ref`). The flat run is the latest of those days that moved the register, else
# the stored one: known unless the last day's closing reading was replaced, without moving, and its flat run began on
# it. Any other site is left to its recompute, as are sites with readings before their status' last day.
# Each site's new readings are its own range of the readings key (a LATERAL subquery), and they carry the stored
# status' columns through the aggregation instead of being joined back to them: no two fleet-sized intermediate
# results are joined, so the follow's cost grows with its sites and their new readings whatever plan the estimates
# suggest. At most `readings_cap` new readings of a site (the oldest) are taken: a site far behind is continued that
# far, the rest by later follows or its recompute, so one follow's work and the time it holds its sites stay bounded.
# Following new readings waits for no run, and holds up a run writing the same statuses only until it commits (an
# ingest's follow commits with the ingest, moments later). It locks the status rows of its sites that no other
# transaction has locked, and writes only those: a status row is locked by a run from the moment the run writes its
# statuses until it commits, so such a site goes to `follow_held` (to try again). Locking a row that a transaction
# committed after this statement began takes that row's latest version (read committed), and the update follows it
# there too, so the follow continues the status that run wrote. A site whose run is still computing (its
# `compute_locks` row held) is followed all the same: the run's status, written later from what its snapshot saw,
# does not replace one a follow wrote from a later reading (the module docstring). Never waiting, a follow never
# deadlocks with a run; a site with no status yet is left to its recompute. Locking, reading and writing the rows is
# one statement, one probe of each row's key.
FOLLOWED = text(f"""
    WITH locked AS MATERIALIZED (  -- each asked site (one row each), with its status row unless another holds it
        SELECT f.site_pk, f.from_day, f.held_since, st.*
          FROM follow_scope f
          LEFT JOIN LATERAL (
                SELECT st.site_pk AS locked_pk, st.as_of, st.last_day, st.last_reading_at, st.last_register_kwh,
                       st.flat_since, st.recent_days, st.recent_kwh, st.zero_read_days
                  FROM site_status st WHERE st.site_pk = f.site_pk
                   FOR NO KEY UPDATE SKIP LOCKED) st ON true
    ), held AS (
        INSERT INTO follow_held (site_pk, from_day, held_since)
        SELECT l.site_pk, l.from_day, coalesce(l.held_since, now()) FROM locked l
         WHERE l.locked_pk IS NULL AND EXISTS (SELECT 1 FROM site_status st WHERE st.site_pk = l.site_pk OFFSET 0)
        RETURNING 1
    ), stored AS (
        SELECT l.* FROM locked l
         WHERE l.recent_days IS NOT NULL AND l.zero_read_days = :zero_read_days
           AND l.last_day <= l.from_day AND l.last_day <= :as_of
           AND l.as_of <= :as_of
    ), fresh AS (  -- the closing reading of each new day, from the site's oldest :readings_cap new readings
        SELECT DISTINCT ON (s.site_pk, r.day) s.site_pk, r.day, r.reading_at, r.kwh, r.signal_level, r.network,
               s.last_day, s.flat_since, s.last_register_kwh, s.recent_days, s.recent_kwh
          FROM stored s
         CROSS JOIN LATERAL (
               SELECT r.reading_at, r.register_kwh AS kwh, r.signal_level, r.network,
                      (r.reading_at AT TIME ZONE :timezone)::date AS day
                 FROM readings r
                WHERE r.site_pk = s.site_pk AND r.reading_at > s.last_reading_at
                  AND r.reading_at < (CAST(:as_of AS date) + 1)::timestamp AT TIME ZONE :timezone
                ORDER BY r.reading_at LIMIT :readings_cap) r
         ORDER BY s.site_pk, r.day DESC, r.reading_at DESC
    ), new_days AS (  -- the stored status' columns are the same on every row of a site (max takes that value); every
                      -- ordered aggregate takes the days newest first, as the window does: one sort of the rows
        SELECT f.site_pk, array_agg(f.day ORDER BY f.day DESC) AS days, array_agg(f.kwh ORDER BY f.day DESC) AS kwh,
               (array_agg(f.reading_at ORDER BY f.day DESC))[1] AS closing_at,
               (array_agg(f.signal_level ORDER BY f.day DESC))[1] AS closing_signal,
               (array_agg(f.network ORDER BY f.day DESC))[1] AS network,
               max(f.day) FILTER (WHERE abs(f.delta) > :flat_tolerance_kwh) AS moved,  -- the first: no delta here
               min(f.day) AS first_day,
               max(f.last_day) AS last_day, max(f.flat_since) AS stored_flat,
               max(f.last_register_kwh) AS last_register_kwh, max(f.recent_days) AS recent_days,
               max(f.recent_kwh) AS recent_kwh
          FROM (SELECT f.*, f.kwh - lead(f.kwh) OVER (PARTITION BY f.site_pk ORDER BY f.day DESC) AS delta
                  FROM fresh f) f
         GROUP BY f.site_pk
    ), continued AS (
        SELECT n.site_pk, n.last_day, n.stored_flat, n.closing_at, n.closing_signal, n.network, n.moved, n.first_day,
               n.first_day = n.last_day AS replaced,
               n.kwh[cardinality(n.kwh)]  -- the first new day's
                   - CASE WHEN n.first_day = n.last_day THEN n.recent_kwh[2] ELSE n.last_register_kwh END
                   AS first_delta,
               (n.days || CASE WHEN n.first_day = n.last_day THEN n.recent_days[2:] ELSE n.recent_days END)
                   [1:CAST(:zero_read_days AS int) + 1] AS all_days,
               (n.kwh || CASE WHEN n.first_day = n.last_day THEN n.recent_kwh[2:] ELSE n.recent_kwh END)
                   [1:CAST(:zero_read_days AS int) + 1] AS all_kwh
          FROM new_days n
    ), latest AS MATERIALIZED (  -- (ref_kwh is read four times below)
        SELECT c.site_pk, c.all_days[1] AS day, c.closing_at, c.all_kwh[1] AS closing_kwh, c.closing_signal,
               c.network, c.all_days AS recent_days, c.all_kwh AS recent_kwh,
               CASE WHEN c.moved IS NOT NULL THEN c.moved
                    WHEN c.first_delta IS NULL OR abs(c.first_delta) > :flat_tolerance_kwh THEN c.first_day
                    WHEN NOT c.replaced OR c.stored_flat < c.last_day THEN c.stored_flat END AS flat_since,
               {REFERENCE.format(days="c.all_days", kwh="c.all_kwh")} AS ref_kwh
          FROM continued c
    ), computed AS (
        SELECT l.site_pk, {STATUS_OF_LATEST} FROM latest l WHERE l.flat_since IS NOT NULL
    ), written AS (
        UPDATE site_status st SET {ASSIGN_FROM.format(row="c")}, computed_at = now()
          FROM computed c
         WHERE st.site_pk = c.site_pk
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM written), (SELECT count(*) FROM held)""")


# New readings a follow takes of one site: a day of half-hourly readings.
FOLLOW_READINGS_CAP = 48


def follow_status(session: Session, params: dict, as_of: object, *, readings_cap: int) -> tuple[int, int]:
    """Write the status as of `as_of` of the sites of the follow scope (temporary table `follow_scope`: site pk →
    earliest day of its new readings, see engine.py) that FOLLOWED can lock and continue from their stored status, by
    at most `readings_cap` new readings each; returns (rows written, sites put in `follow_held`)."""
    bound = {**params, "as_of": as_of, "readings_cap": readings_cap}
    written, held = session.execute(FOLLOWED, bound).one()
    return written, held
