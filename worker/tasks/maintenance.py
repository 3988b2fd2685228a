"""Maintenance queue tasks."""

from __future__ import annotations

from lux.retention import purge_expired
from lux.selfcheck import run_selfcheck
from worker.app import celery_app
from worker.base import LuxTask


@celery_app.task(bind=True, base=LuxTask, name="lux.maintenance.selfcheck")
def selfcheck(self: LuxTask) -> dict:
    """Prove the worker reaches the database at the newest schema; return fleet counts."""
    with self.session_scope() as session:
        return run_selfcheck(session)


@celery_app.task(bind=True, base=LuxTask, name="lux.maintenance.cleanup")
def cleanup(self: LuxTask) -> dict:
    """Apply the retention periods (ingest rejects: LUX_RETENTION_REJECTS_DAYS); readings are kept."""
    with self.session_scope() as session:
        return purge_expired(session, self.app.lux_settings)
