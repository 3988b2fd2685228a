"""Ingest queue tasks: consume post-commit events, and sweep journal entries whose event was lost."""

from __future__ import annotations

import logging

from lux.ingest.journal import claim_journal_entries
from worker.app import celery_app
from worker.base import LuxTask

log = logging.getLogger(__name__)


@celery_app.task(bind=True, base=LuxTask, name="lux.ingest.process_events", ignore_result=True)
def process_events(self: LuxTask, event: dict) -> dict:
    """Claim the journal entry an ingest event names; its sites are recomputed from their earliest day."""
    with self.session_scope() as session:
        claimed = claim_journal_entries(session, [event["journal_id"]])
    log.info("task=lux.ingest.process_events request_id=%s journal_id=%s claimed=%s", event.get("request_id"),
             event["journal_id"], len(claimed))
    return {"request_id": event.get("request_id"), "claimed": len(claimed),
            "from_day": min(claimed.values(), default=None)}


@celery_app.task(bind=True, base=LuxTask, name="lux.ingest.sweep")
def sweep(self: LuxTask, older_than_s: float = 30.0) -> dict:
    """Claim every journal entry older than `older_than_s` seconds (its event was lost or is still queued)."""
    with self.session_scope() as session:
        claimed = claim_journal_entries(session, None, older_than_s=older_than_s)
    log.info("task=lux.ingest.sweep claimed=%s", len(claimed))
    return {"claimed": len(claimed), "from_day": min(claimed.values(), default=None)}
