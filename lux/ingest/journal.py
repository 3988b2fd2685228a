"""The journal of sites awaiting recomputation: entries written by ingest (or `mark_dirty`), claimed by
the ingest event or the periodic sweep."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

# The entries are picked and locked once, in a CTE of their own. As `id IN (subquery)` the planner may instead scan
# the journal and run the locking subquery again for each entry (it does when the journal was analysed nearly
# empty): every run skips the entries this statement has already deleted and locks the next ones, so the claim
# would take the whole journal, not `:limit` entries.
CLAIM = text("""
    WITH picked AS MATERIALIZED (
        SELECT id FROM ingest_journal
         WHERE created_at <= now() - make_interval(secs => :older_than)
         ORDER BY id = ANY(CAST(:first AS bigint[])) DESC, id
         LIMIT :limit
           FOR UPDATE SKIP LOCKED
    ), claimed AS (
        DELETE FROM ingest_journal j USING picked p WHERE j.id = p.id
        RETURNING j.site_pks, j.from_days, j.earliest_at)
    SELECT pk, min(day), CASE WHEN count(*) = count(earliest_at) THEN min(earliest_at) END
      FROM claimed, unnest(site_pks, from_days) AS u(pk, day)
     GROUP BY pk ORDER BY pk
""")


PENDING = text("""
    SELECT EXISTS (SELECT 1 FROM ingest_journal
                    WHERE (CAST(:ids AS bigint[]) IS NULL OR id = ANY(CAST(:ids AS bigint[])))
                      AND created_at <= now() - make_interval(secs => :older_than))
""")


def has_pending(session: Session, journal_ids: Sequence[int] | None, *, older_than_s: float = 0.0) -> bool:
    """Whether journal entries (those of `journal_ids`, or any) older than `older_than_s` seconds wait."""
    ids = list(journal_ids) if journal_ids else None
    return session.execute(PENDING, {"ids": ids, "older_than": older_than_s}).scalar_one()


@dataclass(frozen=True)
class Claimed:
    """What claimed journal entries name, per site: the earliest local day they touched and, unless an entry does not
    know it (`mark_dirty`'s), an instant none of the readings they wrote is before: their earliest `earliest_at`."""

    from_days: dict[int, dt.date]
    readings_after: dict[int, dt.datetime]


def claim_journal_entries(session: Session, first: list[int] | None = None, *, older_than_s: float = 0.0,
                          limit: int = 100) -> Claimed:
    """Take up to `limit` journal entries off (in the caller's transaction), the entries `first` before the
    oldest others, coalesced per site (see Claimed).

    Entries locked by another claimer are skipped, so concurrent claimers never take the same one;
    if the caller's transaction rolls back, the entries come back and the sweep retries them.
    """
    rows = session.execute(CLAIM, {"first": first or [], "older_than": older_than_s, "limit": limit}).all()
    return Claimed({pk: day for pk, day, _ in rows}, {pk: at for pk, _, at in rows if at is not None})


# The `request_id` of the entries a split backlog is made of (see SPLIT).
SPLIT_REQUEST_ID = "spread"

# The backlog a sweep splits: up to `:limit` of the oldest entries older than the threshold that no split made
# (those wait for their own recomputes, see SPLIT). BACKLOG_SITES counts what SPLIT then takes.
OLDEST_UNSPLIT = """FROM ingest_journal
         WHERE created_at <= now() - make_interval(secs => :older_than) AND request_id <> :split
         ORDER BY id
         LIMIT :limit"""

# How many sites the backlog names. Entries a claimer is taking still count (no lock is taken, so no claimer skips an
# entry for this).
BACKLOG_SITES = text(f"""
    SELECT coalesce(sum(cardinality(j.site_pks)), 0)
      FROM (SELECT site_pks {OLDEST_UNSPLIT}) j
""")


def backlog_sites(session: Session, *, older_than_s: float, limit: int) -> int:
    """Sites named (a site once per entry) by the oldest `limit` journal entries older than `older_than_s` seconds
    that no split made."""
    return session.execute(BACKLOG_SITES, {"older_than": older_than_s, "limit": limit,
                                           "split": SPLIT_REQUEST_ID}).scalar_one()


# A backlog split into one entry per class of sites (`pk % :parts`), so that the recomputes of a spread (one a class)
# name disjoint sites: shares of whole entries would each lock every site their entries name, and entries naming the
# same sites (rounds a fleet kept sending while the workers were away) would make each share wait for the one before
# and recompute those sites again. The oldest `:limit` entries older than the threshold that no claimer holds are taken
# off; each class entry names its sites once, with their earliest day. It keeps the oldest entry's stamp (the sweep
# and the burst's quiet test go by it) and, for every site, the earliest `earliest_at` of the entries taken (none if
# one lacks it). Sites the status follow has yet to continue stay to follow: those left by entries after the follow's
# cursor (read unlocked: a follow moving it meanwhile has taken those entries, and following them again changes
# nothing). The entries of an earlier split are not split again: each is owed to a recompute already sent (events
# that run before those recomputes have claimed them would otherwise split them again and send recomputes of their
# own); if that recompute is lost, the sweep takes the entry as it takes any other. `{picked}` selects the entries.
SPLIT_PICKED = """
    WITH picked AS MATERIALIZED ({picked}
           FOR UPDATE SKIP LOCKED
    ), taken AS (
        DELETE FROM ingest_journal j USING picked p WHERE j.id = p.id
        RETURNING j.id, j.created_at, j.site_pks, j.from_days, j.follow_pks, j.follow_days, j.earliest_at
    ), named AS (
        SELECT u.pk, min(u.day) AS day FROM taken t, unnest(t.site_pks, t.from_days) AS u(pk, day) GROUP BY u.pk
    ), unfollowed AS (
        SELECT u.pk, min(u.day) AS day
          FROM taken t, unnest(coalesce(t.follow_pks, t.site_pks), coalesce(t.follow_days, t.from_days)) AS u(pk, day)
         WHERE t.id > coalesce((SELECT c.journal_id FROM status_follow_cursor c WHERE c.id = 1), 0)
         GROUP BY u.pk
    ), stamp AS (
        SELECT min(created_at) AS created_at,
               CASE WHEN count(*) = count(earliest_at) THEN min(earliest_at) END AS earliest_at
          FROM taken
    )
    INSERT INTO ingest_journal (created_at, request_id, site_pks, from_days, follow_pks, follow_days, earliest_at)
    SELECT st.created_at, :split, array_agg(n.pk ORDER BY n.pk), array_agg(n.day ORDER BY n.pk),
           coalesce(array_agg(f.pk ORDER BY n.pk) FILTER (WHERE f.pk IS NOT NULL), '{{}}'),
           coalesce(array_agg(f.day ORDER BY n.pk) FILTER (WHERE f.pk IS NOT NULL), '{{}}'), st.earliest_at
      FROM named n
      LEFT JOIN unfollowed f ON f.pk = n.pk
     CROSS JOIN stamp st
     GROUP BY n.pk % :parts, st.created_at, st.earliest_at
    RETURNING id
"""
SPLIT = text(SPLIT_PICKED.format(picked=f"""
        SELECT id {OLDEST_UNSPLIT}"""))
# One entry that names at least :min_sites sites, each from before any reading (a history recompute: `mark_dirty`'s).
SPLIT_HISTORY_ENTRY = text(SPLIT_PICKED.format(picked="""
        SELECT id FROM ingest_journal
         WHERE id = :entry AND request_id <> :split AND cardinality(site_pks) >= :min_sites
           AND CAST(:first_day AS date) = ALL(from_days)"""))


def split_backlog(session: Session, *, older_than_s: float, limit: int, parts: int) -> list[int]:
    """Replace the oldest `limit` journal entries older than `older_than_s` seconds (those no claimer holds and no
    split made) by one entry per non-empty class of their sites (`pk % parts`), in the caller's transaction; returns
    the new entries' ids. See SPLIT."""
    return list(session.execute(SPLIT, {"older_than": older_than_s, "limit": limit, "parts": parts,
                                        "split": SPLIT_REQUEST_ID}).scalars())


def split_history_entry(session: Session, journal_id: int, *, min_sites: int, parts: int) -> list[int]:
    """Replace the entry `journal_id`, if it recomputes at least `min_sites` sites from their first day (and no claimer
    holds it), by one entry per non-empty class of its sites (`pk % parts`), as `split_backlog` does; returns the new
    entries' ids, none when it was not split."""
    return list(session.execute(SPLIT_HISTORY_ENTRY, {"entry": journal_id, "min_sites": min_sites, "parts": parts,
                                                      "first_day": BEFORE_ANY_READING,
                                                      "split": SPLIT_REQUEST_ID}).scalars())


QUIET = text("SELECT coalesce(max(created_at) <= now() - make_interval(secs => :quiet), true) FROM ingest_journal")


def quiet_for(session: Session, seconds: float) -> bool:
    """Whether no journal entry was written in the last `seconds` seconds (its `created_at`)."""
    return session.execute(QUIET, {"quiet": seconds}).scalar_one()


# A day before any reading (ingest rejects readings before 2000): recompute a site from its first day.
BEFORE_ANY_READING = dt.date(2000, 1, 1)

MARK = text("""
    INSERT INTO ingest_journal (request_id, site_pks, from_days)
    VALUES (:reason, CAST(:pks AS int[]), array_fill(CAST(:day AS date), ARRAY[cardinality(CAST(:pks AS int[]))]))
    RETURNING id
""")


def mark_dirty(session: Session, site_pks: list[int], *, reason: str,
               from_day: dt.date = BEFORE_ANY_READING) -> int:
    """Journal sites for recomputation from `from_day` (default: their first day) without new readings."""
    return session.execute(MARK, {"reason": reason, "pks": site_pks, "day": from_day}).scalar_one()


def journal_event(request_id: str, journal_id: int, sites_by_day: dict[str, list[int]]) -> dict:
    """The post-commit event naming a journal entry: its sites grouped by the earliest local day each touched."""
    return {"request_id": request_id, "journal_id": journal_id, "sites_by_day": sites_by_day}


# The status follow's cursor (one row, created if missing): locked for the caller's transaction, so follows take
# turns, then moved past every entry after it. The sites of those entries left to follow (those whose status row a
# run held when the ingest continued its statuses; every site of an entry written otherwise) and those the last
# follow found held by a run (kept in the cursor) go into the follow's scope (a temporary table of the transaction, see
# lux.compute.engine.open_follow_scope), each once, with its earliest day and since when it is held. Entries a
# recompute has claimed are gone: their sites' statuses come with that recompute.
ENSURE_FOLLOW_CURSOR = text("INSERT INTO status_follow_cursor (id, journal_id) VALUES (1, 0) ON CONFLICT DO NOTHING")
LOCK_FOLLOW_CURSOR = text("SELECT journal_id FROM status_follow_cursor WHERE id = 1 FOR UPDATE")
FOLLOW_ENTRIES = text("""
    WITH entries AS (
        SELECT j.id, coalesce(j.follow_pks, j.site_pks) AS site_pks, coalesce(j.follow_days, j.from_days) AS from_days
          FROM ingest_journal j WHERE j.id > :cursor
    ), moved AS (
        UPDATE status_follow_cursor SET journal_id = (SELECT max(id) FROM entries)
         WHERE id = 1 AND EXISTS (SELECT 1 FROM entries)
    )
    INSERT INTO follow_scope (site_pk, from_day, held_since)
    SELECT s.pk, min(s.day), min(s.since)
      FROM (SELECT u.pk, u.day, CAST(NULL AS timestamptz) AS since
              FROM entries e, unnest(e.site_pks, e.from_days) AS u(pk, day)
            UNION ALL
            SELECT h.pk, h.day, h.since
              FROM status_follow_cursor c, unnest(c.held_pks, c.held_days, c.held_since) AS h(pk, day, since)
             WHERE c.id = 1) s
     GROUP BY s.pk
""")


def take_entries_to_follow(session: Session) -> int:
    """Put the sites of the journal entries written since the last follow (each with its earliest local day), and
    those the last follow left held, into the open follow scope, in the caller's transaction, which holds the cursor
    until it ends (a follow running meanwhile is waited for); returns how many sites. The held ones stay in the cursor
    until `keep_held` replaces them, which a caller that found any sites is to call."""
    session.execute(ENSURE_FOLLOW_CURSOR)
    cursor = session.execute(LOCK_FOLLOW_CURSOR).scalar_one()
    return session.execute(FOLLOW_ENTRIES, {"cursor": cursor}).rowcount


# The sites this follow found held (`follow_held`), for the next follow, in place of those the cursor kept before
# (which this follow took), unless held longer than :max_held_s: those are left to their recompute.
KEEP_HELD = text("""
    UPDATE status_follow_cursor
       SET (held_pks, held_days, held_since) = (
           SELECT coalesce(array_agg(h.site_pk), '{}'), coalesce(array_agg(h.from_day), '{}'),
                  coalesce(array_agg(h.held_since), '{}')
             FROM follow_held h WHERE h.held_since > now() - make_interval(secs => :max_held_s))
     WHERE id = 1
    RETURNING cardinality(held_pks)
""")


def keep_held(session: Session, *, max_held_s: float) -> int:
    """Keep the sites this follow found held by a run in the cursor, for the next follow to try again, unless held
    for more than `max_held_s` seconds; returns how many are kept. The caller holds the cursor
    (take_entries_to_follow)."""
    return session.execute(KEEP_HELD, {"max_held_s": max_held_s}).scalar_one()
