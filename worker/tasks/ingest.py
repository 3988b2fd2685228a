"""Ingest queue tasks: recompute the sites an ingest event names, and sweep journal entries whose event was lost."""

from __future__ import annotations

import logging

from celery import chord
from celery.result import AsyncResult

from lux.compute.modes import SWEEP_ENTRIES, burst_shares, run_fleet_refresh, run_incremental, sweep_shares
from worker.app import celery_app
from worker.base import LuxTask
from worker.tasks.compute import fleet_refresh, send_fleet_refresh, sweep_part

log = logging.getLogger(__name__)


@celery_app.task(bind=True, base=LuxTask, name="lux.ingest.process_events", ignore_result=True)
def process_events(self: LuxTask, event: dict) -> dict:
    """Recompute the sites of the event's journal entry, with the oldest other pending entries (coalesced).

    If another worker already took the entry with its own batch, there is nothing to do. The
    fleet rollups and snapshots follow a few seconds later in `lux.compute.fleet_refresh`, one
    refresh for every event of a burst. What a burst that has ended left pending is spread over the compute
    workers (`modes.burst_shares`), as the sweep spreads a backlog, with one fleet refresh after it.
    """
    database = self.app.lux_database
    result = run_incremental(database, task=self.name, task_id=self.request.id, journal_ids=[event["journal_id"]])
    shares = burst_shares(database, parts=self.app.lux_settings.compute_shards)
    if shares:
        result["spread"], result["fleet_task_id"] = shares, spread(shares, older_than_s=0).id
    elif result["fleet_refresh"]:
        send_fleet_refresh(self.app.backend.client)
    log.info("task=%s request_id=%s journal_id=%s claimed=%s spread=%s", self.name, event.get("request_id"),
             event["journal_id"], result["claimed"], shares)
    return result


def spread(shares: list[int], *, older_than_s: float) -> AsyncResult:
    """One `lux.compute.sweep_part` per share (the oldest entries older than `older_than_s` seconds that no other
    share holds), then one `lux.compute.fleet_refresh` for all of them; the refresh's result."""
    return chord(sweep_part.s(older_than_s, entries) for entries in shares)(fleet_refresh.si())


@celery_app.task(bind=True, base=LuxTask, name="lux.ingest.sweep")
def sweep(self: LuxTask, older_than_s: float = 30.0, parts: int | None = None) -> dict:
    """Recompute the sites of journal entries older than `older_than_s` seconds (their event was lost), then
    take any fleet refresh still owed.

    A backlog naming many sites (a night's readings whose events were lost, a worker back from an outage) is
    spread over the compute workers: `parts` (default `LUX_COMPUTE_SHARDS`) `lux.compute.sweep_part` tasks, each
    claiming its share of the oldest entries in a recompute of its own, then one `lux.compute.fleet_refresh`.
    """
    database = self.app.lux_database
    shares = sweep_shares(database, older_than_s=older_than_s, parts=parts or self.app.lux_settings.compute_shards)
    if shares:
        refresh = spread(shares, older_than_s=older_than_s)
        log.info("task=%s split entries=%s parts=%s", self.name, sum(shares), len(shares))
        return {"parts": shares, "fleet_task_id": refresh.id}
    result = run_incremental(database, task=self.name, task_id=self.request.id, older_than_s=older_than_s,
                             entries=SWEEP_ENTRIES)
    result["fleet"] = run_fleet_refresh(database, task=self.name, task_id=None)
    log.info("task=%s claimed=%s", self.name, result["claimed"])
    return result

