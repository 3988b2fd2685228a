"""The record of computation runs: one row per task execution, visible through `GET /runs`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from lux.db import Database
from models import ComputeRun

INSERT_RUN = """
    INSERT INTO compute_runs (task, task_id, mode, as_of, shard, sites, from_day, to_day, outcome, started_at)
    VALUES (:task, :task_id, :mode, :as_of, :shard, :sites, :from_day, :to_day, :outcome, now())
"""

# Upsert by task id: a task redelivered after a worker died updates its own record.
START = text(INSERT_RUN + """
    ON CONFLICT (task_id) DO UPDATE
       SET outcome = excluded.outcome, started_at = excluded.started_at, finished_at = NULL, error = NULL,
           as_of = excluded.as_of, shard = excluded.shard, sites = excluded.sites
    RETURNING id, xmax = 0 AS inserted
""")

# The API records a run after sending its task; if the worker got there first, its record stands.
QUEUED = text(INSERT_RUN + "ON CONFLICT (task_id) DO NOTHING")

FINISH = text("""
    UPDATE compute_runs
       SET finished_at = now(), outcome = :outcome, rows_written = :rows_written, error = :error,
           sites = coalesce(:sites, sites), from_day = coalesce(:from_day, from_day)
     WHERE id = :id
""")

DISCARD = text("DELETE FROM compute_runs WHERE id = :id")

SETTLE = text("""
    UPDATE compute_runs SET outcome = 'success', finished_at = now(), rows_written = coalesce(rows_written, 0)
     WHERE task_id = :task_id AND outcome = 'running'
""")


@dataclass
class Run:
    """What a run is about; `rows_written` is filled in by the work."""

    task: str
    mode: str
    as_of: dt.date
    task_id: str | None = None
    shard: str | None = None
    sites: int | None = None
    from_day: dt.date | None = None
    to_day: dt.date | None = None
    rows_written: int = 0
    id: int | None = field(default=None, init=False)
    found_nothing: bool = field(default=False, init=False)  # set by the work: see `recorded`
    recorded_before: bool = field(default=False, init=False)  # its task id had a record: queued, or redelivered

    def as_row(self, outcome: str) -> dict[str, object]:
        return {"task": self.task, "task_id": self.task_id, "mode": self.mode, "as_of": self.as_of,
                "shard": self.shard, "sites": self.sites, "from_day": self.from_day, "to_day": self.to_day,
                "outcome": outcome}


def record_queued(session: Session, run: Run) -> None:
    """Record a run the API or CLI has just sent to the workers (outcome `queued`)."""
    session.execute(QUEUED, run.as_row("queued"))


@contextmanager
def recorded(db: Database, run: Run) -> Iterator[Run]:
    """Record `run` as running (committed at once, so operators see it), then its outcome.

    The work itself runs in its own transaction inside the block; a failure is recorded with its
    error in a separate transaction and re-raised. Work that found nothing to do (`run.found_nothing`, such as a
    claim that another worker's claim beat) leaves no record, unless its task id had one before: a redelivered task's
    record stands for the earlier attempt too, whose work may have committed before its worker died, so it is
    finished, not removed.
    """
    with db.session_scope() as session:
        run.id, inserted = session.execute(START, run.as_row("running")).one()
        run.recorded_before = not inserted
    try:
        yield run
    except BaseException as error:
        with db.session_scope() as session:
            session.execute(FINISH, {"id": run.id, "outcome": "failure", "rows_written": None, "sites": None,
                                     "from_day": None, "error": f"{type(error).__name__}: {error}"[:2000]})
        raise
    with db.session_scope() as session:
        if run.found_nothing and not run.recorded_before:
            session.execute(DISCARD, {"id": run.id})
            return
        session.execute(FINISH, {"id": run.id, "outcome": "success", "rows_written": run.rows_written,
                                 "sites": run.sites, "from_day": run.from_day, "error": None})


def settle_earlier_attempt(session: Session, task_id: str | None) -> None:
    """Finish the record a task's earlier attempt left running, for an attempt that finds nothing to do: the task was
    redelivered after its worker died, most likely once its work had committed (it took what there was to take)."""
    if task_id is not None:
        session.execute(SETTLE, {"task_id": task_id})


def list_runs(session: Session, *, task: str | None, mode: str | None, outcome: str | None,
              limit: int, offset: int) -> tuple[list[ComputeRun], int]:
    """Runs, newest first, with the total matching the filters."""
    query = select(ComputeRun)
    for column, value in ((ComputeRun.task, task), (ComputeRun.mode, mode), (ComputeRun.outcome, outcome)):
        if value is not None:
            query = query.where(column == value)
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    rows = session.scalars(query.order_by(ComputeRun.started_at.desc(), ComputeRun.id.desc())
                           .limit(limit).offset(offset)).all()
    return list(rows), total


def runs_of_task(session: Session, task_id: str) -> list[ComputeRun]:
    """The run records of one task id (none for a task that records no run)."""
    return list(session.scalars(select(ComputeRun).where(ComputeRun.task_id == task_id)))

