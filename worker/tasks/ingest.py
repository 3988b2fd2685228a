"""Ingest queue tasks: recompute the sites an ingest event names, and sweep journal entries whose event was lost."""

from __future__ import annotations

import logging

from lux.compute.modes import run_incremental
from worker.app import celery_app
from worker.base import LuxTask

log = logging.getLogger(__name__)


@celery_app.task(bind=True, base=LuxTask, name="lux.ingest.process_events", ignore_result=True)
def process_events(self: LuxTask, event: dict) -> dict:
    """Recompute the sites of the event's journal entry, with every other pending entry (coalesced).

    If another worker already took the entry with its own batch, there is nothing to do.
    """
    result = run_incremental(self.app.lux_database, task=self.name, task_id=self.request.id,
                             journal_ids=[event["journal_id"]])
    log.info("task=%s request_id=%s journal_id=%s claimed=%s", self.name, event.get("request_id"),
             event["journal_id"], result["claimed"])
    return result


@celery_app.task(bind=True, base=LuxTask, name="lux.ingest.sweep")
def sweep(self: LuxTask, older_than_s: float = 30.0) -> dict:
    """Recompute the sites of every journal entry older than `older_than_s` seconds (its event was lost)."""
    result = run_incremental(self.app.lux_database, task=self.name, task_id=self.request.id,
                             older_than_s=older_than_s)
    log.info("task=%s claimed=%s", self.name, result["claimed"])
    return result
