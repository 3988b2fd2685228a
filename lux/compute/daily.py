"""Site days: closing registers and daily generation, rebuilt from each scope site's anchor reading on.

The scope (temporary table `compute_scope`, see engine.py) gives each site a `from_day`. The
anchor is the site's last reading day before that day, found in site_days; its own row is kept
and its `flat_since` continues the flat run. Days after the anchor are rebuilt from the readings, so a
late reading also corrects the estimated days before it. A site without an anchor row is
rebuilt from its first reading. The days appended to a site after its tail (see APPENDED) are also
kept in `rebuilt_days`, from which the later stages extend that site's results.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from lux.compute.params import Params

# Anchor of every site with a from_day: its last computed reading day before that day (readings before
# the from_day are already in site_days) and that day's closing reading; a site without one is rebuilt whole.
# When the site's tail ends before the from_day (new readings after all known ones, the common case) the tail is
# the anchor; otherwise one probe of site_days finds it. The tail's day is kept as `prior_last`, the site's
# latest reading day before this run, for the anomaly stage. A site whose new readings are all on or after its tail's
# day and later than its tail's closing reading (`readings_after`, from the journal) is seeded: that day's stored row
# stands for its readings up to that closing reading (see SEEDED_READINGS), so they are not read again.
ANCHOR = text("""
    UPDATE compute_scope sc
       SET anchor_day = a.day, anchor_at = a.closing_at, anchor_flat = a.flat_since, from_day = a.day + 1,
           prior_last = t.last_day, seed_day = seed.day, seed_at = seed.closing_at
      FROM compute_scope s
      LEFT JOIN site_tails t ON t.site_pk = s.site_pk
      LEFT JOIN LATERAL (
            SELECT t.last_day AS day, t.closing_at, t.flat_since WHERE t.last_day < s.from_day
            UNION ALL
            (SELECT sd.day, sd.closing_at, sd.flat_since FROM site_days sd
              WHERE NOT coalesce(t.last_day < s.from_day, false) AND sd.site_pk = s.site_pk AND sd.day < s.from_day
                AND sd.closing_at IS NOT NULL
              ORDER BY sd.day DESC LIMIT 1)) a ON true
      LEFT JOIN LATERAL (
            SELECT t.last_day AS day, t.closing_at
             WHERE a.day IS NOT NULL AND t.last_day = s.from_day AND s.readings_after > t.closing_at) seed ON true
     WHERE sc.site_pk = s.site_pk AND s.from_day IS NOT NULL
""")


# Running counts of readings and signal levels, for reading rows (COUNTS) or rows that may stand for several
# readings (WEIGHED_COUNTS: a seeded day's stored row, see SEEDED_READINGS).
COUNTS = """count(*) OVER w AS n_cum,
               coalesce(sum(r.signal_level) OVER w, 0) AS sig_cum,
               count(r.signal_level) OVER w AS sig_n_cum"""
WEIGHED_COUNTS = """sum(r.readings) OVER w AS n_cum,
               coalesce(sum(r.signal_sum) OVER w, 0) AS sig_cum,
               sum(r.signal_n) OVER w AS sig_n_cum"""

# One pass over the readings in key order: running counts give each day's totals at its closing
# reading; a second window over closing readings gives deltas and flat runs; days between two
# closing readings more than a day apart are filled in with their share of the delta. Every CTE
# is read once, so PostgreSQL streams it instead of materialising millions of rows. OFFSET 0 keeps
# the LATERAL a per-site index range scan instead of a join over the whole table. Rows of sites with
# days stored are upserted and only written when they change: readings are never deleted, so a site's
# days only ever gain rows, and a nightly full rebuild rewrites almost nothing. Sites with no day stored
# yet (a first build) take a plain insert, which skips the conflict checks an upsert pays per row.
DAY_ROWS = """
    WITH scoped AS (
        SELECT sc.site_pk, sc.anchor_day, sc.anchor_flat, r.reading_at, r.register_kwh, r.signal_level, r.network,
               r.day,
               {counts},
               lead(r.day) OVER w AS next_day
          FROM {readings}
        WINDOW w AS (PARTITION BY sc.site_pk ORDER BY r.reading_at)
    ), stepped AS (
        SELECT c.site_pk, c.anchor_day, c.anchor_flat, c.day, c.reading_at AS closing_at,
               c.register_kwh AS closing_kwh, c.signal_level AS closing_signal, c.network,
               c.day - lag(c.day) OVER w AS k,
               c.register_kwh - lag(c.register_kwh) OVER w AS delta,
               c.n_cum - coalesce(lag(c.n_cum) OVER w, 0) AS readings,
               c.sig_cum - coalesce(lag(c.sig_cum) OVER w, 0) AS signal_sum,
               c.sig_n_cum - coalesce(lag(c.sig_n_cum) OVER w, 0) AS signal_n
          FROM scoped c
         WHERE c.next_day IS DISTINCT FROM c.day
        WINDOW w AS (PARTITION BY c.site_pk ORDER BY c.reading_at)
    ), flat AS (
        SELECT s.*,
               max(CASE WHEN s.day = s.anchor_day THEN s.anchor_flat
                        WHEN s.delta IS NULL OR abs(s.delta) > :flat_tolerance_kwh THEN s.day END)
                   OVER (PARTITION BY s.site_pk ORDER BY s.closing_at ROWS UNBOUNDED PRECEDING) AS flat_since
          FROM stepped s
    )"""
INSERT_DAYS = """
    INSERT INTO site_days (site_pk, day, closing_at, closing_kwh, closing_signal, network, readings, signal_sum,
                           signal_n, generation_kwh, estimated, rollback, segment_end, flat_since)
    SELECT f.site_pk, d.day,
           CASE WHEN d.day = f.day THEN f.closing_at END, CASE WHEN d.day = f.day THEN f.closing_kwh END,
           CASE WHEN d.day = f.day THEN f.closing_signal END, CASE WHEN d.day = f.day THEN f.network END,
           CASE WHEN d.day = f.day THEN f.readings ELSE 0 END, CASE WHEN d.day = f.day THEN f.signal_sum ELSE 0 END,
           CASE WHEN d.day = f.day THEN f.signal_n ELSE 0 END,
           CASE WHEN f.delta >= 0 THEN f.delta / f.k END, coalesce(f.k > 1 AND f.delta >= 0, false),
           coalesce(d.day = f.day AND f.delta < 0, false), f.day, CASE WHEN d.day = f.day THEN f.flat_since END
      FROM flat f
     CROSS JOIN LATERAL (SELECT f.day AS day WHERE f.k IS NULL OR f.k = 1
                         UNION ALL
                         SELECT g::date FROM generate_series(f.day - f.k + 1, f.day, interval '1 day') g
                          WHERE f.k > 1) d
     WHERE f.anchor_day IS NULL OR f.day > f.anchor_day
    {on_conflict}"""
# Days rebuilt for sites with days stored: the rows written are counted, and used ({after}).
REBUILD = f"""{DAY_ROWS}
    , written AS ({INSERT_DAYS}
    RETURNING site_pk, day, closing_at, closing_kwh, closing_signal, network, flat_since, generation_kwh, segment_end
    ){{after}}
    SELECT count(*) FROM written
"""
# A first build inserts its rows as the statement itself: its millions of rows are not returned through a CTE
# (the statement's row count counts them), and its sites get their tails as fresh ones (see TAILS).
REBUILD_FRESH = f"{DAY_ROWS}{INSERT_DAYS}"
UPSERT_CHANGED = """    ON CONFLICT (site_pk, day) DO UPDATE
       SET closing_at = excluded.closing_at, closing_kwh = excluded.closing_kwh,
           closing_signal = excluded.closing_signal, network = excluded.network,
           readings = excluded.readings, signal_sum = excluded.signal_sum, signal_n = excluded.signal_n,
           generation_kwh = excluded.generation_kwh, estimated = excluded.estimated, rollback = excluded.rollback,
           segment_end = excluded.segment_end, flat_since = excluded.flat_since
     WHERE (site_days.closing_at, site_days.closing_kwh, site_days.closing_signal, site_days.network,
            site_days.readings, site_days.signal_sum, site_days.signal_n, site_days.generation_kwh,
            site_days.estimated, site_days.rollback, site_days.segment_end, site_days.flat_since)
           IS DISTINCT FROM
           (excluded.closing_at, excluded.closing_kwh, excluded.closing_signal, excluded.network,
            excluded.readings, excluded.signal_sum, excluded.signal_n, excluded.generation_kwh,
            excluded.estimated, excluded.rollback, excluded.segment_end, excluded.flat_since)"""
# Sites with stored days rewritten get their tails from site_days (TAILS); appended days are kept for the later
# stages, which give those sites their tails too (TAILS_APPENDED).
MARK_WRITTEN = """, marked AS (
        UPDATE compute_scope sc SET changed = true WHERE sc.site_pk IN (SELECT site_pk FROM written)
    )"""
KEEP_WRITTEN = """, kept AS (
        INSERT INTO rebuilt_days SELECT * FROM written
    )"""
# Each site's readings from its anchor day's closing reading on (all of them without an anchor), a range of the
# readings key. The anchor day's own row is kept, so of that day only the closing reading is needed: the first new
# day's delta is taken against it, and its counts are the running counts' steps from it.
READINGS_BY_KEY = """compute_scope sc
          CROSS JOIN LATERAL (
                SELECT r.*, (r.reading_at AT TIME ZONE :timezone)::date AS day FROM readings r
                 WHERE r.site_pk = sc.site_pk AND r.reading_at >= coalesce(sc.anchor_at, '-infinity')
                 ORDER BY r.reading_at OFFSET 0) r
         WHERE {sites}"""
# A seeded site's readings (see ANCHOR): its anchor's closing reading, its seed day's stored row in place of that
# day's readings up to its closing one (the row's counts and closing reading), and the readings after it: two short
# ranges of the readings key and a probe of site_days, not the day.
READING_ROW = """SELECT r.reading_at, r.register_kwh, r.signal_level, r.network, 1 AS readings,
                       r.signal_level AS signal_sum, CAST(r.signal_level IS NOT NULL AS int) AS signal_n,
                       (r.reading_at AT TIME ZONE :timezone)::date AS day
                  FROM readings r"""
SEEDED_READINGS = f"""compute_scope sc
          CROSS JOIN LATERAL (
                {READING_ROW}
                 WHERE r.site_pk = sc.site_pk AND r.reading_at = sc.anchor_at
                UNION ALL
                {READING_ROW}
                 WHERE r.site_pk = sc.site_pk AND r.reading_at > sc.seed_at
                UNION ALL
                SELECT d.closing_at, d.closing_kwh, d.closing_signal, d.network, d.readings, d.signal_sum, d.signal_n,
                       d.day
                  FROM site_days d
                 WHERE d.site_pk = sc.site_pk AND d.day = sc.seed_day
                OFFSET 0) r
         WHERE {{sites}}"""
# Sites built whole (no day stored) read every reading. A few read their key ranges; many scan the table once
# and sort it: readings arrive day after day, so one site's readings lie on as many pages as it has readings,
# and reading a fleet's history range by range costs a page per reading (`+ 0` keeps the join off the key). A
# shard's scan keeps only its own sites' readings before the join (`:shards`, `:shard`; 1 and 0 for other scopes):
# the other shards' readings, three quarters of the table in a full run of four, then cost a modulo each instead
# of a probe of the scope's hash table.
EVERY_READING_SCANNED = """compute_scope sc
          JOIN (SELECT r.*, (r.reading_at AT TIME ZONE :timezone)::date AS day FROM readings r
                 WHERE r.site_pk % :shards = :shard) r
            ON r.site_pk + 0 = sc.site_pk
         WHERE sc.fresh"""
# A site whose anchor is its tail's day (new readings after every known one) has no day after it stored, so its
# new days take a plain insert too; the site is locked, so no other run writes them meanwhile.
APPENDED = "sc.anchor_day = sc.prior_last"
REBUILD_APPENDED = text(REBUILD.format(readings=READINGS_BY_KEY.format(sites=f"NOT sc.fresh AND {APPENDED}"),
                                       counts=COUNTS, on_conflict="", after=KEEP_WRITTEN))
STORED = f"NOT sc.fresh AND NOT coalesce({APPENDED}, false)"
REBUILD_STORED = text(REBUILD.format(readings=READINGS_BY_KEY.format(sites=f"{STORED} AND sc.seed_day IS NULL"),
                                     counts=COUNTS, on_conflict=UPSERT_CHANGED, after=MARK_WRITTEN))
REBUILD_SEEDED = text(REBUILD.format(readings=SEEDED_READINGS.format(sites=f"{STORED} AND sc.seed_day IS NOT NULL"),
                                     counts=WEIGHED_COUNTS, on_conflict=UPSERT_CHANGED, after=MARK_WRITTEN))
REBUILD_FRESH_PROBED = text(REBUILD_FRESH.format(readings=READINGS_BY_KEY.format(sites="sc.fresh"), counts=COUNTS,
                                                 on_conflict=""))
REBUILD_FRESH_SCANNED = text(REBUILD_FRESH.format(readings=EVERY_READING_SCANNED, counts=COUNTS, on_conflict=""))

# Scopes with more sites built whole than this scan the readings.
SCAN_FRESH_SITES = 2_000

# Scope sites rebuilt whole that have no day stored.
FRESH = text("""
    UPDATE compute_scope sc SET fresh = true
     WHERE sc.anchor_day IS NULL AND NOT EXISTS (SELECT 1 FROM site_days sd WHERE sd.site_pk = sc.site_pk)
""")

# SPEC §4's reference reading from a tail's recent reading days (newest first, each once): the closing register of
# the latest one at least zero_read_days before the newest. A site that reported on exactly that day (one that reports
# daily) has it by an array search; the subquery, which costs a site about 2.5 µs, finds it otherwise.
REFERENCE = """coalesce(({kwh})[array_position({days}, ({days})[1] - :zero_read_days)],
                        (SELECT u.kwh FROM unnest({days}, {kwh}) AS u(day, kwh)
                          WHERE u.day <= ({days})[1] - :zero_read_days ORDER BY u.day DESC LIMIT 1))"""

# A site's reading days `{r}`, newest first, aggregated into what its tail keeps: the days and their closing
# registers, and the newest day's closing reading and flat run.
NEWEST_FIRST = """array_agg({r}.day ORDER BY {r}.day DESC) AS recent_days,
               array_agg({r}.closing_kwh ORDER BY {r}.day DESC) AS recent_kwh,
               (array_agg({r}.closing_at ORDER BY {r}.day DESC))[1] AS closing_at,
               (array_agg({r}.closing_signal ORDER BY {r}.day DESC))[1] AS closing_signal,
               (array_agg({r}.network ORDER BY {r}.day DESC))[1] AS network,
               (array_agg({r}.flat_since ORDER BY {r}.day DESC))[1] AS flat_since"""

# An appended site's recent days continued by the written ones (all newer than its stored ones), and their registers.
CONTINUED_DAYS = "(w.recent_days || t.recent_days)[1:CAST(:zero_read_days AS int) + 1]"
CONTINUED_KWH = "(w.recent_kwh || t.recent_kwh)[1:CAST(:zero_read_days AS int) + 1]"

# The tail of an appended site (its days in rebuilt_days) kept for these zero_read_days with its recent days:
# its newest written reading day, and its recent days continued by the written ones (newer than every stored
# one). Any other tail of an appended site is left to TAILS.
TAILS_APPENDED = text("""
    WITH written AS (
        SELECT d.site_pk, {newest_first}
          FROM rebuilt_days d
         WHERE d.closing_at IS NOT NULL
         GROUP BY d.site_pk
    )
    UPDATE site_tails t
       SET last_day = w.recent_days[1], closing_at = w.closing_at, closing_kwh = w.recent_kwh[1],
           closing_signal = w.closing_signal, network = w.network, flat_since = w.flat_since,
           ref_kwh = {ref}, recent_days = {days}, recent_kwh = {kwh}
      FROM written w
     WHERE t.site_pk = w.site_pk AND t.zero_read_days = :zero_read_days AND t.recent_days IS NOT NULL
""".format(ref=REFERENCE.format(days=CONTINUED_DAYS, kwh=CONTINUED_KWH), days=CONTINUED_DAYS, kwh=CONTINUED_KWH,
           newest_first=NEWEST_FIRST.format(r="d")))

# The tail of every scope site built whole or whose stored days changed, that has none yet, or whose tail was kept
# for another zero_read_days or without its recent days (written before migration 0006): from one backward range
# of its last zero_read_days + 1 reading days.
TAILS = text("""
    INSERT INTO site_tails AS t (site_pk, last_day, closing_at, closing_kwh, closing_signal, network, flat_since,
                                 ref_kwh, zero_read_days, recent_days, recent_kwh)
    SELECT sc.site_pk, l.recent_days[1], l.closing_at, l.recent_kwh[1], l.closing_signal, l.network, l.flat_since,
           {ref}, :zero_read_days, l.recent_days, l.recent_kwh
      FROM compute_scope sc
      LEFT JOIN site_tails old ON old.site_pk = sc.site_pk
      CROSS JOIN LATERAL (
            SELECT {newest_first}
              FROM (SELECT r.day, r.closing_kwh, r.closing_at, r.closing_signal, r.network, r.flat_since
                      FROM site_days r WHERE r.site_pk = sc.site_pk AND r.closing_at IS NOT NULL
                     ORDER BY r.day DESC LIMIT CAST(:zero_read_days AS int) + 1) r) l
     WHERE sc.changed OR sc.fresh OR old.site_pk IS NULL OR old.zero_read_days <> :zero_read_days
        OR old.recent_days IS NULL AND old.last_day IS NOT NULL
    ON CONFLICT (site_pk) DO UPDATE
       SET last_day = excluded.last_day, closing_at = excluded.closing_at, closing_kwh = excluded.closing_kwh,
           closing_signal = excluded.closing_signal, network = excluded.network, flat_since = excluded.flat_since,
           ref_kwh = excluded.ref_kwh, zero_read_days = excluded.zero_read_days, recent_days = excluded.recent_days,
           recent_kwh = excluded.recent_kwh
""".format(ref=REFERENCE.format(days="l.recent_days", kwh="l.recent_kwh"), newest_first=NEWEST_FIRST.format(r="r")))


def rebuild_site_days(session: Session, params: Params, shard: tuple[int, int] | None = None) -> int:
    """Rebuild the site days of every scope site after its anchor, then the tails of those that changed;
    returns rows written. `shard` `(k, n)`: the scope holds only sites with `pk % n == k`."""
    session.execute(ANCHOR)
    fresh = session.execute(FRESH).rowcount
    session.execute(text("ANALYZE compute_scope"))
    bound = {"timezone": params.timezone, "flat_tolerance_kwh": params.flat_tolerance_kwh}
    if fresh > SCAN_FRESH_SITES:
        index, shards = shard or (0, 1)
        written = session.execute(REBUILD_FRESH_SCANNED, {**bound, "shards": shards, "shard": index}).rowcount
    else:
        written = session.execute(REBUILD_FRESH_PROBED, bound).rowcount
    written += sum(session.execute(statement, bound).scalar_one()
                   for statement in (REBUILD_APPENDED, REBUILD_STORED, REBUILD_SEEDED))
    session.execute(text("ANALYZE rebuilt_days"))
    tails = {"zero_read_days": params.zero_read_days}
    written += session.execute(TAILS_APPENDED, tails).rowcount
    return written + session.execute(TAILS, tails).rowcount
