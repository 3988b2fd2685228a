"""The computation modes that tasks, the CLI and tests run: incremental, full (sharded), rollover, explicit.

Each runs the one engine (`lux.compute.engine`) in its own transaction and records itself in
`compute_runs`. Fleet-wide rollups and snapshots follow in a second transaction (for incremental
runs, in a debounced `run_fleet_refresh`), so a site's new status is readable as soon as its own
results are committed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.orm import Session

from lux.compute.engine import follow_readings, open_follow_scope, recompute_rollups, recompute_sites
from lux.compute.params import Params
from lux.compute.runs import Run, recorded, settle_earlier_attempt
from lux.compute.snapshots import build_snapshots
from lux.config import MAX_SHARDS
from lux.db import Database
from lux.ingest.journal import (
    backlog_sites,
    claim_journal_entries,
    has_pending,
    keep_held,
    quiet_for,
    split_backlog,
    split_history_entry,
    take_entries_to_follow,
)
from lux.ingest.rules import EARLIEST
from lux.timeutil import fleet_today

REQUEST_FLEET_REFRESH = text("INSERT INTO fleet_refresh_requests (from_day) VALUES (:from_day)")
FLEET_REFRESH_PENDING = text("SELECT EXISTS (SELECT 1 FROM fleet_refresh_requests)")
TAKE_FLEET_REFRESH = text("""
    WITH taken AS (DELETE FROM fleet_refresh_requests RETURNING from_day) SELECT count(*), min(from_day) FROM taken
""")

EVENT_ENTRIES = 2  # journal entries one ingest event may take: its own and the oldest other one
SWEEP_ENTRIES = 100
SWEEP_SPLIT_MIN_SITES = 10_000  # a sweep naming fewer sites is one recompute
# A burst of batches has ended when no journal entry was written for this long (an ingest stamps its entry as its
# transaction's last statement; under a steady load commits come a fraction of a second apart).
BURST_QUIET_S = 2.0


def run_incremental(db: Database, *, task: str, task_id: str | None, journal_ids: Sequence[int] | None = None,
                    older_than_s: float = 0.0, as_of: dt.date | None = None, entries: int = EVENT_ENTRIES) -> dict:
    """Recompute the sites of pending journal entries: those of `journal_ids` first, then the oldest others.

    Up to `entries` entries are taken at once, so a burst of batches touching the same sites
    becomes one recompute of each site, from its earliest touched day, while one run stays small
    enough to answer within seconds. Claiming and recomputing share a transaction: on failure the
    entries come back for the sweep. The fleet rollups and snapshots are owed, not rebuilt here:
    a `fleet_refresh_requests` row, written in the same transaction, is taken by
    `run_fleet_refresh`. Nothing pending, or every entry it could take taken by another claimer meanwhile:
    nothing is recorded, but a record an earlier attempt of the same task left is finished (see `runs.recorded`).
    """
    as_of = as_of or fleet_today(db.settings.timezone)
    with db.session_scope() as session:
        if not has_pending(session, journal_ids, older_than_s=older_than_s):
            settle_earlier_attempt(session, task_id)
            return {"claimed": 0, "fleet_refresh": False}
    run = Run(task=task, task_id=task_id, mode="incremental", as_of=as_of)
    with recorded(db, run):
        with db.session_scope() as session:
            claimed = claim_journal_entries(session, list(journal_ids or []), older_than_s=older_than_s,
                                            limit=entries)
            dirty = claimed.from_days
            if not dirty:
                run.found_nothing = True
                return {"claimed": 0, "fleet_refresh": False}
            done = recompute_sites(session, Params.of(db.settings), as_of, sites=dirty,
                                   readings_after=claimed.readings_after)
            if done.changed_from:
                session.execute(REQUEST_FLEET_REFRESH, {"from_day": done.changed_from})
        run.sites, run.rows_written, run.from_day = done.sites, done.rows, done.changed_from
    return {"claimed": len(dirty), "sites": done.sites, "rows": run.rows_written,
            "from_day": min(dirty.values()).isoformat(), "fleet_refresh": done.changed_from is not None}


def spread_backlog(db: Database, *, older_than_s: float, parts: int, min_sites: int | None = None) -> list[int]:
    """How a sweep spreads its backlog over the workers: the oldest SWEEP_ENTRIES journal entries older than
    `older_than_s` seconds, split into one entry per class of their sites (`pk % parts`, see journal.SPLIT), each for
    a recompute of its own; returns the new entries' ids. Empty, with nothing split, when the backlog names fewer than
    `min_sites` sites (default SWEEP_SPLIT_MIN_SITES) or `parts` is below 2: then the sweep is one recompute."""
    min_sites = SWEEP_SPLIT_MIN_SITES if min_sites is None else min_sites
    if parts < 2:
        return []
    with db.session_scope() as session:
        if backlog_sites(session, older_than_s=older_than_s, limit=SWEEP_ENTRIES) < min_sites:
            return []
        return split_backlog(session, older_than_s=older_than_s, limit=SWEEP_ENTRIES, parts=parts)


def history_spread(db: Database, journal_id: int, *, parts: int) -> list[int]:
    """How an ingest event spreads its own entry when that entry recomputes SWEEP_SPLIT_MIN_SITES sites or more from
    their first day (`mark_dirty`'s: an import that changed the region or capacity of much of the fleet, or
    reactivated it): work the size of a full rebuild's shards, split as a backlog is (see spread_backlog) over the
    compute workers, not left to the one event process. Empty, with nothing split, for any other entry."""
    if parts < 2:
        return []
    with db.session_scope() as session:
        return split_history_entry(session, journal_id, min_sites=SWEEP_SPLIT_MIN_SITES, parts=parts)


def burst_spread(db: Database, *, parts: int) -> list[int]:
    """How an ingest event spreads what a burst of batches left over the compute workers, as a sweep spreads its
    backlog (see spread_backlog), once the burst has ended: no entry written for BURST_QUIET_S. Under a steady load
    entries keep coming, and the events' recomputes stay on their one process (the ingest keeps the other cores);
    a fleet's readings arriving at once, with nothing beside them, get every compute worker."""
    with db.session_scope() as session:
        if not quiet_for(session, BURST_QUIET_S):
            return []
    return spread_backlog(db, older_than_s=0, parts=parts)


# A site whose status row runs held this long is left to its recompute (which writes its status in any case): longer
# than a recompute beside a heavy load takes.
FOLLOW_HOLD_MAX_S = 120.0


def run_follow(db: Database, as_of: dt.date | None = None) -> dict:
    """The status of sites that new readings reached, ahead of their recompute: those left to follow of every journal
    entry since the last follow, and those the last follow found held by a run.

    Not recorded in `compute_runs`: it writes nothing the recompute of the same journal entries does not
    write again. `held`: how many sites' status rows a run held, kept for the next follow.
    """
    as_of = as_of or fleet_today(db.settings.timezone)
    with db.session_scope() as session:
        open_follow_scope(session)
        sites = take_entries_to_follow(session)
        if not sites:  # nothing new, and no site kept held: the cursor stays as it is
            return {"sites": 0, "written": 0, "held": 0}
        done = follow_readings(session, Params.of(db.settings), as_of)
        held = keep_held(session, max_held_s=FOLLOW_HOLD_MAX_S)
    return {"sites": sites, "written": done.written, "held": held}


def fleet_refresh_owed(db: Database) -> bool:
    """Whether a fleet refresh request waits."""
    with db.session_scope() as session:
        return session.execute(FLEET_REFRESH_PENDING).scalar_one()


def run_fleet_refresh(db: Database, *, task: str, task_id: str | None, as_of: dt.date | None = None) -> dict:
    """Take every pending fleet refresh request and rebuild the rollups from the earliest day, then the snapshots."""
    as_of = as_of or fleet_today(db.settings.timezone)
    if not fleet_refresh_owed(db):
        return {"requests": 0}
    run = Run(task=task, task_id=task_id, mode="incremental", as_of=as_of)
    with recorded(db, run), db.session_scope() as session:
        requests, from_day = session.execute(TAKE_FLEET_REFRESH).one()
        if requests:
            run.from_day = from_day
            run.rows_written = _fleet_results(session, db, as_of, from_day)
    return {"requests": requests, "from_day": from_day and from_day.isoformat(), "rows": run.rows_written}


def run_shard(db: Database, *, task: str, task_id: str | None, as_of: dt.date, shard: int, shards: int) -> dict:
    """Recompute every result of the sites `id % shards == shard` from their first day."""
    run = Run(task=task, task_id=task_id, mode="full", as_of=as_of, shard=f"{shard}/{shards}")
    with recorded(db, run), db.session_scope() as session:
        done = recompute_sites(session, Params.of(db.settings), as_of, shard=(shard, shards))
        run.sites, run.rows_written = done.sites, done.rows
    return {"shard": run.shard, "sites": done.sites, "rows": done.rows}


def run_fleet(db: Database, *, task: str, task_id: str | None, as_of: dt.date,
              from_day: dt.date | None = None) -> dict:
    """Rebuild the fleet rollups (from `from_day`, else all days) and the snapshots as of `as_of`."""
    run = Run(task=task, task_id=task_id, mode="full", as_of=as_of, from_day=from_day)
    with recorded(db, run):
        run.rows_written = _refresh_fleet(db, as_of, from_day, every_day=from_day is None)
    return {"rows": run.rows_written}


def run_rollover(db: Database, *, task: str, task_id: str | None, as_of: dt.date | None = None) -> dict:
    """At the change of day: every site's status, month and running episodes as of the new day."""
    as_of = as_of or fleet_today(db.settings.timezone)
    run = Run(task=task, task_id=task_id, mode="rollover", as_of=as_of, from_day=as_of)
    with recorded(db, run):
        with db.session_scope() as session:
            done = recompute_sites(session, Params.of(db.settings), as_of, from_day=as_of)
        run.sites, run.rows_written = done.sites, done.rows + _refresh_fleet(db, as_of, done.changed_from)
    return {"sites": run.sites, "rows": run.rows_written}


def run_explicit(db: Database, *, task: str, task_id: str | None, as_of: dt.date | None = None,
                 site_pks: Sequence[int] | None = None, from_day: dt.date | None = None,
                 to_day: dt.date | None = None) -> dict:
    """An operator's run: the given sites (default all) as of `as_of` (default today), rebuilt from `from_day`
    (default: each site's first day); fleet rollups are rebuilt from the first changed day up to `to_day`
    (default `as_of`), so a backfill of a range leaves later days alone.
    """
    as_of = as_of or fleet_today(db.settings.timezone)
    run = Run(task=task, task_id=task_id, mode="explicit", as_of=as_of, from_day=from_day, to_day=to_day)
    with recorded(db, run):
        with db.session_scope() as session:
            done = recompute_sites(session, Params.of(db.settings), as_of, sites=site_pks, from_day=from_day)
        run.sites, run.rows_written = done.sites, done.rows + _refresh_fleet(db, as_of, done.changed_from, to_day)
    return {"sites": run.sites, "rows": run.rows_written, "as_of": as_of.isoformat()}


FIRST_DAY = EARLIEST.date()  # no reading is earlier


def shard_problems(shards: object, index: object = None) -> dict[str, str]:
    """What is wrong with a shard count (and a shard's index) a full run or a shard is sent with, by name: an index
    outside the count, or a count below one, would recompute nothing and still succeed."""
    def whole(value: object) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    if not whole(shards) or not 1 <= shards <= MAX_SHARDS:
        return {"shards": f"Must be a whole number from 1 to {MAX_SHARDS}."}
    if index is not None and (not whole(index) or not 0 <= index < shards):
        return {"index": f"Must be a whole number from 0 to {shards - 1}."}
    return {}


def explicit_run_problems(as_of: dt.date, from_day: dt.date | None, to_day: dt.date | None,
                          today: dt.date) -> dict[str, str]:
    """What is wrong with an operator's run as of `as_of` (from `from_day`, rollups up to `to_day`), by argument name
    (`as_of`, `from`, `to`); empty when nothing is. The API and the CLI check their arguments with it.

    The as-of day must not be after `today` (the fleet's): a run as of a later day would write statuses and snapshots
    that no run as of an earlier day replaces (a status is only replaced by one as of the same day or later), so every
    nightly run would leave them as they are until that day. No day is before the first a reading may have."""
    problems = {}
    if as_of > today:
        problems["as_of"] = (f"Must not be after today in the fleet time zone ({today.isoformat()}): a run as of a "
                             "later day leaves statuses and snapshots that no run as of an earlier day replaces.")
    for name, day in (("as_of", as_of), ("from", from_day), ("to", to_day)):
        if day is not None and day < FIRST_DAY:
            problems[name] = f"Must not be before {FIRST_DAY.isoformat()}: no reading is earlier."
    if from_day and to_day and from_day > to_day:
        problems["from"] = "Must not be after 'to'."
    if to_day and to_day > as_of:
        problems["to"] = "Must not be after 'as_of'."
    return problems


def _refresh_fleet(db: Database, as_of: dt.date, from_day: dt.date | None, to_day: dt.date | None = None, *,
                   every_day: bool = False) -> int:
    """`_fleet_results` in a transaction of its own."""
    with db.session_scope() as session:
        return _fleet_results(session, db, as_of, from_day, to_day, every_day=every_day)


def _fleet_results(session: Session, db: Database, as_of: dt.date, from_day: dt.date | None,
                   to_day: dt.date | None = None, *, every_day: bool = False) -> int:
    """Rollups of `from_day` … `to_day` (all days with `every_day`; none when nothing changed), then snapshots."""
    rows = recompute_rollups(session, as_of, from_day, to_day) if from_day or every_day else 0
    return rows + build_snapshots(session, Params.of(db.settings), as_of)
