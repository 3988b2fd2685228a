"""Ingest queue tasks: recompute the sites an ingest event names, and sweep journal entries whose event was lost."""

from __future__ import annotations

import logging

from celery import chord
from celery.result import AsyncResult

from lux.compute.modes import (
    SWEEP_ENTRIES,
    burst_spread,
    history_spread,
    run_fleet_refresh,
    run_incremental,
    spread_backlog,
)
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
    workers (`modes.burst_spread`), as the sweep spreads a backlog, with one fleet refresh after it; so is an entry
    that recomputes many sites from their first day (`modes.history_spread`), in place of the event's own recompute.
    """
    database = self.app.lux_database
    parts = history_spread(database, event["journal_id"], parts=self.app.lux_settings.compute_shards)
    if parts:
        log.info("task=%s request_id=%s journal_id=%s history spread=%s", self.name, event.get("request_id"),
                 event["journal_id"], parts)
        return {"claimed": 0, "spread": parts, "fleet_task_id": spread(parts).id}
    result = run_incremental(database, task=self.name, task_id=self.request.id, journal_ids=[event["journal_id"]])
    parts = burst_spread(database, parts=self.app.lux_settings.compute_shards)
    if parts:
        result["spread"], result["fleet_task_id"] = parts, spread(parts).id
    elif result["fleet_refresh"]:
        send_fleet_refresh(self.app.backend.client)
    log.info("task=%s request_id=%s journal_id=%s claimed=%s spread=%s", self.name, event.get("request_id"),
             event["journal_id"], result["claimed"], parts)
    return result


def spread(journal_ids: list[int]) -> AsyncResult:
    """One `lux.compute.sweep_part` per journal entry of a split backlog (`modes.spread_backlog`: each names one class
    of sites), then one `lux.compute.fleet_refresh` for all of them; the refresh's result."""
    return chord(sweep_part.s(journal_id) for journal_id in journal_ids)(fleet_refresh.si())


@celery_app.task(bind=True, base=LuxTask, name="lux.ingest.sweep")
def sweep(self: LuxTask, older_than_s: float = 30.0, parts: int | None = None) -> dict:
    """Recompute the sites of journal entries older than `older_than_s` seconds (their event was lost), then
    take any fleet refresh still owed.

    A backlog naming many sites (a night's readings whose events were lost, a worker back from an outage) is
    spread over the compute workers: its oldest entries become one entry per class of their sites (`parts`, default
    `LUX_COMPUTE_SHARDS`, classes `pk % parts`), each recomputed by a `lux.compute.sweep_part` of its own, so no two
    of them name the same site, then one `lux.compute.fleet_refresh`.
    """
    database = self.app.lux_database
    split = spread_backlog(database, older_than_s=older_than_s, parts=parts or self.app.lux_settings.compute_shards)
    if split:
        refresh = spread(split)
        log.info("task=%s split parts=%s", self.name, len(split))
        return {"parts": split, "fleet_task_id": refresh.id}
    result = run_incremental(database, task=self.name, task_id=self.request.id, older_than_s=older_than_s,
                             entries=SWEEP_ENTRIES)
    result["fleet"] = run_fleet_refresh(database, task=self.name, task_id=None)
    log.info("task=%s claimed=%s", self.name, result["claimed"])
    return result

