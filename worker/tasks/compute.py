"""Compute queue tasks: the sharded full run, a large backlog's shares, the fleet refresh, the rollover at the change
of day, and operators' runs."""

from __future__ import annotations

import datetime as dt
import time

import redis
from celery import chord, uuid

from lux.compute import modes
from lux.timeutil import fleet_today
from worker.app import celery_app
from worker.base import LuxTask

FLEET_REFRESH_DELAY_S = 3  # an ingest burst's events within this delay share one fleet refresh

# One fleet refresh at a time: a recompute that owes one sends it only when it sets this mark, and the refresh clears
# the mark when it ends, then sends the next itself if requests were written while it ran, as long after as it took
# (FLEET_REFRESH_DELAY_S at least). So under a steady load the refreshes take half a worker at most instead of piling
# up (a second one would only wait for the first one's lock). The mark holds the id of the refresh it was set for, and
# only that refresh clears it: a sweep's refresh, or one that outlived its mark, leaves a later refresh's mark alone.
# The mark expires, so a lost refresh holds back the next for FLEET_REFRESH_TTL_S at most; the sweep takes what is
# owed every minute in any case.
FLEET_REFRESH_KEY = "lux:compute:fleet-refresh-pending"
FLEET_REFRESH_TTL_S = 300
# Deletes the mark (KEYS[1]) only if it still holds this refresh's id (ARGV[1]), in one step on the server.
CLEAR_OWN_MARK = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


def _day(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


def _as_of(task: LuxTask, as_of: str | None, from_day: str | None = None, to_day: str | None = None) -> dt.date:
    """The as-of day a task was sent with (default: the fleet's today), refused as the API and the CLI refuse it
    (`modes.explicit_run_problems`: no later than today) also when the task is sent by hand, from Flower or `celery
    call`: a run as of a later day would leave statuses and snapshots that no nightly run replaces."""
    today = fleet_today(task.app.lux_settings.timezone)
    day = _day(as_of) or today
    _refuse(modes.explicit_run_problems(day, _day(from_day), _day(to_day), today))
    return day


def _refuse(problems: dict[str, str]) -> None:
    """A task's arguments refused, by name, before any work (tasks sent by hand are checked as the API checks)."""
    if problems:
        raise ValueError("; ".join(f"{name}: {why}" for name, why in problems.items()))


@celery_app.task(bind=True, base=LuxTask, name="lux.compute.full")
def full(self: LuxTask, as_of: str | None = None, shards: int | None = None) -> dict:
    """Start the full recompute of the fleet: one `lux.compute.shard` per shard, then `lux.compute.fleet`.

    The shards are a Celery group, so every worker consuming the compute queue takes a share.
    """
    day = _as_of(self, as_of)
    count = self.app.lux_settings.compute_shards if shards is None else shards
    _refuse(modes.shard_problems(count))
    header = [shard.s(day.isoformat(), index, count) for index in range(count)]
    result = chord(header)(fleet.si(day.isoformat()))
    return {"as_of": day.isoformat(), "shards": count, "fleet_task_id": result.id}


@celery_app.task(bind=True, base=LuxTask, name="lux.compute.shard")
def shard(self: LuxTask, as_of: str, index: int, shards: int) -> dict:
    """Recompute every result of the sites `id % shards == index` as of `as_of`."""
    _refuse(modes.shard_problems(shards, index))
    return modes.run_shard(self.app.lux_database, task=self.name, task_id=self.request.id,
                           as_of=_as_of(self, as_of), shard=index, shards=shards)


@celery_app.task(bind=True, base=LuxTask, name="lux.compute.sweep_part")
def sweep_part(self: LuxTask, journal_id: int) -> dict:
    """One part of a spread sweep (`lux.ingest.sweep`): the journal entry `journal_id`, one class of the sites of a
    split backlog (`modes.spread_backlog`), in one recompute (its fleet refresh is owed to the sweep's
    `lux.compute.fleet_refresh`). A backlog is fleet-scale work: it goes to the compute queue, whose workers run as
    many processes as their machines have cores, not to the one event process of each machine. An entry another
    claimer took meanwhile leaves nothing to do."""
    return modes.run_incremental(self.app.lux_database, task=self.name, task_id=self.request.id,
                                 journal_ids=[journal_id], entries=1)


@celery_app.task(bind=True, base=LuxTask, name="lux.compute.fleet")
def fleet(self: LuxTask, as_of: str, from_day: str | None = None) -> dict:
    """Rebuild the fleet and region rollups and the dashboard snapshots as of `as_of`."""
    return modes.run_fleet(self.app.lux_database, task=self.name, task_id=self.request.id,
                           as_of=_as_of(self, as_of), from_day=_day(from_day))


def send_fleet_refresh(client: redis.Redis, countdown: float = FLEET_REFRESH_DELAY_S) -> bool:
    """Send a `lux.compute.fleet_refresh` in `countdown` seconds unless one is pending or running; True if sent. A send
    that fails clears the mark it set, so it does not hold back the next refresh."""
    task_id = uuid()
    if not client.set(FLEET_REFRESH_KEY, task_id, nx=True, ex=FLEET_REFRESH_TTL_S):
        return False
    try:
        fleet_refresh.apply_async(countdown=countdown, task_id=task_id)
    except Exception:
        clear_own_mark(client, task_id)
        raise
    return True


def clear_own_mark(client: redis.Redis, task_id: str) -> bool:
    """Clear the fleet-refresh mark if it was set for the refresh `task_id`; True if it was."""
    return bool(client.eval(CLEAR_OWN_MARK, 1, FLEET_REFRESH_KEY, task_id))


@celery_app.task(bind=True, base=LuxTask, name="lux.compute.fleet_refresh")
def fleet_refresh(self: LuxTask) -> dict:
    """Rebuild the rollups and snapshots owed by incremental recomputes (every pending request at once), then send
    the next refresh if more were owed meanwhile (see FLEET_REFRESH_KEY)."""
    client = self.app.backend.client
    started = time.monotonic()
    try:
        result = modes.run_fleet_refresh(self.app.lux_database, task=self.name, task_id=self.request.id)
    finally:
        clear_own_mark(client, self.request.id)
    countdown = max(FLEET_REFRESH_DELAY_S, time.monotonic() - started)
    result["next"] = modes.fleet_refresh_owed(self.app.lux_database) and send_fleet_refresh(client, countdown)
    return result


@celery_app.task(bind=True, base=LuxTask, name="lux.compute.rollover")
def rollover(self: LuxTask, as_of: str | None = None) -> dict:
    """Status, current month and running episodes of every site as of the new day."""
    return modes.run_rollover(self.app.lux_database, task=self.name, task_id=self.request.id,
                              as_of=_as_of(self, as_of))


@celery_app.task(bind=True, base=LuxTask, name="lux.compute.run")
def run(self: LuxTask, as_of: str | None = None, site_pks: list[int] | None = None, from_day: str | None = None,
        to_day: str | None = None) -> dict:
    """An operator's run (`POST /compute/run`, `lux compute --queue`): sites, as-of day, backfill range."""
    return modes.run_explicit(self.app.lux_database, task=self.name, task_id=self.request.id,
                              as_of=_as_of(self, as_of, from_day, to_day), site_pks=site_pks,
                              from_day=_day(from_day), to_day=_day(to_day))
