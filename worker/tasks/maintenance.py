"""Maintenance queue tasks."""

from __future__ import annotations

from lux.selfcheck import run_selfcheck
from worker.app import celery_app
from worker.base import LuxTask


@celery_app.task(bind=True, base=LuxTask, name="lux.maintenance.selfcheck")
def selfcheck(self: LuxTask) -> dict:
    """Prove the worker reaches the database at the newest schema; return fleet counts."""
    with self.session_scope() as session:
        return run_selfcheck(session)
