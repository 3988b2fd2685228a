"""Base task: a database session per task body, retries on lost connections."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from celery import Task
from sqlalchemy.orm import Session


class LuxTask(Task):
    """Every Lux task is idempotent, so it is acknowledged late and redelivered if a worker dies."""

    acks_late = True
    reject_on_worker_lost = True

    @contextmanager
    def session_scope(self) -> Iterator[Session]:
        """A session in one transaction (commit on success, roll back on error)."""
        with self.app.lux_database.session_scope() as session:
            yield session
