"""Retention: delete what has outlived its retention period, in bounded set-based batches.

Readings are never deleted here.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from lux.config import Settings

BATCH = 50_000

# table → (timestamp column, Settings field holding its retention in days)
RETAINED = {
    "ingest_rejects": ("received_at", "retention_rejects_days"),
    "compute_runs": ("started_at", "retention_runs_days"),
}


def purge_expired(session: Session, settings: Settings) -> dict[str, int]:
    """Delete ingest rejects and run records older than their retention periods; rows deleted per table."""
    return {table: _purge(session, table, column, getattr(settings, field))
            for table, (column, field) in RETAINED.items()}


def _purge(session: Session, table: str, column: str, days: int) -> int:
    statement = text(f"""
        DELETE FROM {table} WHERE id IN (
            SELECT id FROM {table} WHERE {column} < now() - make_interval(days => :days) LIMIT :batch)
    """)
    deleted = 0
    while True:
        count = session.execute(statement, {"days": days, "batch": BATCH}).rowcount
        deleted += count
        if count < BATCH:
            return deleted
