"""Ingest queue tasks: recompute the sites an ingest event names, and sweep journal entries whose event was lost."""

from __future__ import annotations

import logging
import time

import redis
from celery import chord, uuid

from lux.compute.modes import (
    CATCH_UP_ENTRIES,
    SWEEP_ENTRIES,
    journal_behind_s,
    run_fleet_refresh,
    run_incremental,
    sweep_shares,
)
from worker.app import celery_app
from worker.base import LuxTask
from worker.tasks.compute import clear_own_mark, fleet_refresh, send_fleet_refresh

log = logging.getLogger(__name__)

# Under a load the event recomputes do not keep up with (the journal's oldest entry waits longer than BEHIND_S), each
# event's recompute would only add to the cores' contention: the ingest, whose statuses are fresh either way, loses
# its share, and the backlog grows for as long as the load lasts. Events then leave the backlog to one catch-up pass
# at a time, at most one every CATCH_UP_INTERVAL_S: every pending entry (up to CATCH_UP_ENTRIES) in one recompute,
# each site once, its day extended rather than read again, then one fleet refresh. The other results then lag by
# about the interval. The mark holds the pass's task id; events and the sweep defer to it while it is set, and only
# that pass clears it (or its expiry, should the pass be lost).
BEHIND_S = 10.0
CATCH_UP_INTERVAL_S = 60.0
CATCH_UP_KEY = "lux:ingest:catch-up-pending"
CATCH_UP_TTL_S = 900
LAST_CATCH_UP_KEY = "lux:ingest:catch-up-started"  # when the last pass started (epoch seconds)


@celery_app.task(bind=True, base=LuxTask, name="lux.ingest.process_events", ignore_result=True)
def process_events(self: LuxTask, event: dict) -> dict:
    """Recompute the sites of the event's journal entry, with the oldest other pending entries (coalesced).

    If another worker already took the entry with its own batch, there is nothing to do. The
    fleet rollups and snapshots follow a few seconds later in `lux.compute.fleet_refresh`, one
    refresh for every event of a burst.
    """
    client = self.app.backend.client
    if client.exists(CATCH_UP_KEY) or (journal_behind_s(self.app.lux_database) > BEHIND_S and send_catch_up(client)):
        log.info("task=%s request_id=%s journal_id=%s deferred=catch-up", self.name, event.get("request_id"),
                 event["journal_id"])
        return {"claimed": 0, "fleet_refresh": False, "deferred": True}
    result = run_incremental(self.app.lux_database, task=self.name, task_id=self.request.id,
                             journal_ids=[event["journal_id"]])
    if result["fleet_refresh"]:
        send_fleet_refresh(client)
    log.info("task=%s request_id=%s journal_id=%s claimed=%s", self.name, event.get("request_id"),
             event["journal_id"], result["claimed"])
    return result


@celery_app.task(bind=True, base=LuxTask, name="lux.ingest.sweep")
def sweep(self: LuxTask, older_than_s: float = 30.0, parts: int | None = None) -> dict:
    """Recompute the sites of journal entries older than `older_than_s` seconds (their event was lost), then
    take any fleet refresh still owed.

    A backlog naming many sites (a night's readings whose events were lost, a worker back from an outage) is
    spread over the workers: `parts` (default `LUX_COMPUTE_SHARDS`) `lux.ingest.sweep_part` tasks, each claiming
    its share of the oldest entries in a recompute of its own, then one `lux.compute.fleet_refresh`.
    """
    database = self.app.lux_database
    if self.app.backend.client.exists(CATCH_UP_KEY):
        return {"claimed": 0, "deferred": True}  # the pending catch-up pass takes every entry
    shares = sweep_shares(database, older_than_s=older_than_s, parts=parts or self.app.lux_settings.compute_shards)
    if shares:
        refresh = chord(sweep_part.s(older_than_s, entries) for entries in shares)(fleet_refresh.si())
        log.info("task=%s split entries=%s parts=%s", self.name, sum(shares), len(shares))
        return {"parts": shares, "fleet_task_id": refresh.id}
    result = run_incremental(database, task=self.name, task_id=self.request.id, older_than_s=older_than_s,
                             entries=SWEEP_ENTRIES)
    result["fleet"] = run_fleet_refresh(database, task=self.name, task_id=None)
    log.info("task=%s claimed=%s", self.name, result["claimed"])
    return result


@celery_app.task(bind=True, base=LuxTask, name="lux.ingest.sweep_part")
def sweep_part(self: LuxTask, older_than_s: float, entries: int) -> dict:
    """One share of a spread sweep: the oldest `entries` journal entries older than `older_than_s` seconds that no
    other share holds, in one recompute (its fleet refresh is owed to the sweep's `lux.compute.fleet_refresh`)."""
    return run_incremental(self.app.lux_database, task=self.name, task_id=self.request.id,
                           older_than_s=older_than_s, entries=entries)


def send_catch_up(client: redis.Redis) -> bool:
    """Send a `lux.ingest.catch_up` unless one is pending or running, CATCH_UP_INTERVAL_S after the last one started
    (at once if that long ago); True if sent. A send that fails clears the mark it set."""
    task_id = uuid()
    if not client.set(CATCH_UP_KEY, task_id, nx=True, ex=CATCH_UP_TTL_S):
        return False
    last = float(client.get(LAST_CATCH_UP_KEY) or 0.0)
    try:
        catch_up.apply_async(countdown=max(0.0, last + CATCH_UP_INTERVAL_S - time.time()), task_id=task_id)
    except Exception:
        clear_own_mark(client, task_id, CATCH_UP_KEY)
        raise
    return True


@celery_app.task(bind=True, base=LuxTask, name="lux.ingest.catch_up")
def catch_up(self: LuxTask) -> dict:
    """One catch-up pass (see BEHIND_S): every pending journal entry, up to CATCH_UP_ENTRIES, in one recompute, then
    the fleet refresh it owes."""
    client = self.app.backend.client
    client.set(LAST_CATCH_UP_KEY, time.time())
    try:
        result = run_incremental(self.app.lux_database, task=self.name, task_id=self.request.id,
                                 entries=CATCH_UP_ENTRIES)
    finally:
        clear_own_mark(client, self.request.id, CATCH_UP_KEY)
    if result["fleet_refresh"]:
        send_fleet_refresh(client)
    log.info("task=%s claimed=%s sites=%s", self.name, result["claimed"], result.get("sites"))
    return result
