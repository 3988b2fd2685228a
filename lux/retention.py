"""Retention: delete what has outlived its retention period, in bounded set-based batches.

Readings are never deleted here.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from lux.config import Settings

BATCH = 50_000

PURGE_REJECTS = text("""
    DELETE FROM ingest_rejects WHERE id IN (
        SELECT id FROM ingest_rejects WHERE received_at < now() - make_interval(days => :days) LIMIT :batch)
""")


def purge_expired(session: Session, settings: Settings) -> dict[str, int]:
    """Delete ingest rejects older than the retention period; returns rows deleted per table."""
    deleted = 0
    while True:
        count = session.execute(PURGE_REJECTS, {"days": settings.retention_rejects_days, "batch": BATCH}).rowcount
        deleted += count
        if count < BATCH:
            return {"ingest_rejects": deleted}
