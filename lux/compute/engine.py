"""One code path for every computation: a scope of sites, an as-of day, and where to start.

`recompute_sites` serves the three modes: incremental (dirty sites, each from its earliest touched
day), full (all sites or a shard `id % n = k`, from the beginning) and explicit (an operator's
as-of day, sites and range). Each scope site is locked (one row of `compute_locks`) for the
transaction, so two runs never recompute the same site at once; the second waits and then sees
the first's results. Everything is written by delete-and-insert or upsert in the caller's
transaction, so a run repeated for the same as-of day writes the same rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from lux.compute.anomalies import rebuild_anomalies
from lux.compute.daily import rebuild_site_days
from lux.compute.params import Params
from lux.compute.performance import rebuild_performance
from lux.compute.rollups import rebuild_rollups
from lux.compute.status import FOLLOW_READINGS_CAP, follow_status, refresh_status
from lux.db import joined

SiteSelection = Sequence[int] | Mapping[int, dt.date | None] | None

# Each stage updates the scope rows it derives (anchors, windows): room in every page keeps those updates HOT,
# so later stages do not wade through dead versions. The key is added once the table is filled (one sort
# instead of an index insert per row).
CREATE_SCOPE = text("""
    CREATE TEMP TABLE compute_scope (
        site_pk int NOT NULL, from_day date, anchor_day date, anchor_at timestamptz, anchor_flat date,
        prior_last date, cut date, last_day date, window_from date, readings_after timestamptz, seed_day date,
        seed_at timestamptz,
        changed boolean NOT NULL DEFAULT false, fresh boolean NOT NULL DEFAULT false,
        month_append boolean NOT NULL DEFAULT false, rate_months boolean NOT NULL DEFAULT false
    ) WITH (fillfactor = 40) ON COMMIT DROP
""")

# The site days this run appended to sites after their tails (see daily.APPENDED), so later stages can extend
# those sites' results by their new days instead of reading their history again.
CREATE_REBUILT = text("""
    CREATE TEMP TABLE rebuilt_days (
        site_pk int NOT NULL, day date NOT NULL, closing_at timestamptz, closing_kwh float8, closing_signal smallint,
        network text, flat_since date, generation_kwh float8, segment_end date NOT NULL
    ) ON COMMIT DROP
""")

FILL_FROM_SITES = text("""
    INSERT INTO compute_scope (site_pk, from_day)
    SELECT id, CAST(:from_day AS date) FROM sites
     WHERE (CAST(:shards AS int) IS NULL OR id % :shards = :shard)
""")

FILL_FROM_LIST = text("""
    INSERT INTO compute_scope (site_pk, from_day, readings_after)
    SELECT s.id, u.from_day, u.readings_after
      FROM unnest(string_to_array(:pks, ',')::int[], string_to_array(:days, ',', 'NULL')::date[],
                  string_to_array(:after, ',', 'NULL')::timestamptz[]) AS u(pk, from_day, readings_after)
      JOIN sites s ON s.id = u.pk
""")

# A site's lock row is written by its first run: only when LOCK finds fewer rows than the scope holds does this
# anti-join add the missing ones (then LOCK runs again), so a run whose sites all have theirs pays nothing for it.
ENSURE_LOCK_ROWS = text("""
    INSERT INTO compute_locks (site_pk)
    SELECT sc.site_pk FROM compute_scope sc
     WHERE NOT EXISTS (SELECT 1 FROM compute_locks l WHERE l.site_pk = sc.site_pk)
     ORDER BY sc.site_pk
    ON CONFLICT DO NOTHING
""")

LOCK = text("""
    SELECT count(*) FROM (SELECT 1 FROM compute_locks l JOIN compute_scope sc ON sc.site_pk = l.site_pk
                           ORDER BY l.site_pk FOR UPDATE OF l) locked
""")

# A run over every site takes the whole table instead of each of its rows: EXCLUSIVE waits for every run
# holding site rows (ROW SHARE) or adding them (ROW EXCLUSIVE), and they wait for it, as they would for
# its rows, without a row lock written per site.
LOCK_ALL = text("LOCK TABLE compute_locks IN EXCLUSIVE MODE")


@dataclass(frozen=True)
class Recomputed:
    """What a recompute did: rows written, sites recomputed, and the earliest day whose values changed."""

    rows: int
    sites: int
    changed_from: dt.date | None  # None: no site has any day


# After the rebuild: the earliest day whose values may have changed (a whole-rebuilt site counts from its
# first day; a site without readings changes nothing).
CHANGED_FROM = text("""
    SELECT min(coalesce(sc.from_day, first.day))
      FROM compute_scope sc
      LEFT JOIN LATERAL (SELECT sd.day FROM site_days sd WHERE sd.site_pk = sc.site_pk AND sc.from_day IS NULL
                          ORDER BY sd.day LIMIT 1) first ON true
""")


def recompute_sites(session: Session, params: Params, as_of: dt.date, *, sites: SiteSelection = None,
                    from_day: dt.date | None = None, shard: tuple[int, int] | None = None,
                    readings_after: Mapping[int, dt.datetime] | None = None) -> Recomputed:
    """Recompute every per-site result of the selected sites as of `as_of`.

    `sites`: None for all (or the shard `(k, n)`: sites with `id % n == k`), a list of site pks
    (each from `from_day`), or a mapping site pk → its own from-day (None: from its first day).
    `readings_after`: for listed sites, an instant none of their readings written since their last recompute is
    before (from the journal); a site whose readings all follow its last computed one then extends that day's
    stored counts instead of reading the day again (see daily.ANCHOR).
    """
    bound = params.as_sql()
    with _locked_scope(session, sites, from_day, shard, readings_after) as count:
        written = rebuild_site_days(session, params, shard if sites is None else None)
        changed_from = session.execute(CHANGED_FROM).scalar_one()
        written += rebuild_performance(session, as_of)
        written += rebuild_anomalies(session, bound, as_of)
        # Last: a status row stays locked from its write to the commit, and an ingest's follow skips (and leaves to
        # the status follow) every status row a run holds.
        written += refresh_status(session, bound, as_of, count)
    return Recomputed(written, count, changed_from)


def refresh_statuses(session: Session, params: Params, as_of: dt.date, *, sites: SiteSelection = None,
                     shard: tuple[int, int] | None = None) -> int:
    """Only the communication status of the selected sites as of `as_of`, from their cached site days."""
    with _locked_scope(session, sites, None, shard) as count:
        return refresh_status(session, params.as_sql(), as_of, count)


def recompute_rollups(session: Session, as_of: dt.date, from_day: dt.date | None = None,
                      to_day: dt.date | None = None) -> int:
    """Recompute the fleet and region daily rollups of `from_day` … `to_day` (default `as_of`); rows written.

    Runs that refresh overlapping days take turns (a transaction-level advisory lock).
    """
    session.execute(text("SELECT pg_advisory_xact_lock(hashtext('lux.compute.rollups'))"))
    _tune(session)
    return rebuild_rollups(session, as_of, from_day, to_day)


# The sites a follow continues (pk → earliest day of its new readings, and since when a run holds it if an earlier
# follow found it held) stay in the database from the journal to the status statement, and those a run holds go to
# `follow_held`: a fleet's worth of them never passes through Python (see lux.db.joined for what that costs). Every
# ingest follows its sites, so the tables are made once per connection and emptied by each commit: creating and
# dropping them in each transaction wrote the catalogs and cost a one-reading ingest about 4 ms.
CREATE_FOLLOW_TABLES = (
    text("""CREATE TEMP TABLE IF NOT EXISTS follow_scope (site_pk int NOT NULL, from_day date NOT NULL,
                                                          held_since timestamptz) ON COMMIT DELETE ROWS"""),
    text("""CREATE TEMP TABLE IF NOT EXISTS follow_held (site_pk int NOT NULL, from_day date NOT NULL,
                                                         held_since timestamptz NOT NULL) ON COMMIT DELETE ROWS"""),
)
EMPTY_FOLLOW_TABLES = text("WITH scope AS (DELETE FROM follow_scope) DELETE FROM follow_held")
FILL_FOLLOW_SCOPE = text("""
    INSERT INTO follow_scope (site_pk, from_day)
    SELECT u.pk, u.from_day FROM unnest(string_to_array(:pks, ',')::int[], string_to_array(:days, ',')::date[])
                                AS u(pk, from_day)
""")


@dataclass(frozen=True)
class Followed:
    """What following new readings did: statuses written, and how many sites' status rows a run held (left in
    `follow_held`, to try again)."""

    written: int
    held: int


def open_follow_scope(session: Session, from_days: Mapping[int, dt.date] | None = None) -> int:
    """The follow scope of this transaction, empty (for `journal.take_entries_to_follow` to fill) or holding
    `from_days` (site pk → earliest day of its new readings), and its empty `follow_held`; returns how many sites the
    scope holds."""
    for create in CREATE_FOLLOW_TABLES:
        session.execute(create)
    session.execute(EMPTY_FOLLOW_TABLES)  # (an earlier follow of this transaction may have filled them)
    if not from_days:
        return 0
    return session.execute(FILL_FOLLOW_SCOPE, {"pks": joined(from_days), "days": joined(from_days.values())}).rowcount


def follow_readings(session: Session, params: Params, as_of: dt.date,
                    from_days: Mapping[int, dt.date] | None = None, *,
                    readings_cap: int = FOLLOW_READINGS_CAP) -> Followed:
    """The status as of `as_of` of sites that new readings reached, ahead of their recompute: the sites of `from_days`
    (site pk → earliest day of its new readings), or with None those of the open follow scope (`open_follow_scope`).
    Each site whose status row no run holds is continued from its stored status by its readings since, at most
    `readings_cap` of them (see status.FOLLOWED). Sites with readings before their status' last day are left to their
    recompute."""
    if from_days is not None:
        open_follow_scope(session, from_days)
    _tune(session)
    return Followed(*follow_status(session, params.as_sql(), as_of, readings_cap=readings_cap))


@contextmanager
def _locked_scope(session: Session, sites: SiteSelection, from_day: dt.date | None,
                  shard: tuple[int, int] | None, readings_after: Mapping[int, dt.datetime] | None = None
                  ) -> Iterator[int]:
    """The scope table of the selected sites, each locked for the transaction; yields how many there are."""
    count = _open_scope(session, sites, from_day, shard, readings_after)
    if sites is None and shard is None:
        session.execute(LOCK_ALL)
    elif session.execute(LOCK).scalar_one() < count:
        session.execute(ENSURE_LOCK_ROWS)
        session.execute(LOCK)
    yield count
    session.execute(text("DROP TABLE compute_scope, rebuilt_days"))


def _open_scope(session: Session, sites: SiteSelection, from_day: dt.date | None,
                shard: tuple[int, int] | None, readings_after: Mapping[int, dt.datetime] | None) -> int:
    """The scope table of the selected sites (those that exist); returns how many it holds."""
    _tune(session)
    session.execute(text("DROP TABLE IF EXISTS compute_scope, rebuilt_days"))
    session.execute(CREATE_SCOPE)
    session.execute(CREATE_REBUILT)
    if sites is None:
        shards, index = (shard[1], shard[0]) if shard else (None, None)
        count = session.execute(FILL_FROM_SITES, {"from_day": from_day, "shards": shards, "shard": index}).rowcount
    else:
        days = dict(sites) if isinstance(sites, Mapping) else dict.fromkeys(sites, from_day)
        after = joined(readings_after.get(pk) for pk in days) if readings_after else None
        count = session.execute(FILL_FROM_LIST, {"pks": joined(days), "days": joined(days.values()),
                                                 "after": after}).rowcount
    session.execute(text("ALTER TABLE compute_scope ADD PRIMARY KEY (site_pk)"))
    session.execute(text("ANALYZE compute_scope"))
    return count


def _tune(session: Session) -> None:
    """Settings of the computation's (and the follow's) transaction: JIT compilation costs about half a second to a
    second per statement and the plans here gain nothing from it; hash joins and sorts over a fleet's rows (expected
    generation of every site month, a scope's days, a follow's statuses) must stay in memory instead of spilling in
    batches."""
    session.execute(text("SET LOCAL jit = off"))
    session.execute(text("SET LOCAL work_mem = '256MB'"))
