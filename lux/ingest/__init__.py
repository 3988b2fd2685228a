"""The ingest core: validate a batch in bulk, write it idempotently, keep every rejected row.

`ingest_json` takes a JSON array body; `ingest_stream` takes CSV or NDJSON lines and never holds
more than one chunk as Python objects. Both commit everything (readings, rejects, the journal entry)
in one transaction and return the per-row outcome; the caller emits the post-commit event. The same
transaction continues the statuses of the sites written, so a new reading is in its site's status
when the request returns (unless a run holds the site's status row: then the status follow takes it).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable

import psycopg
from sqlalchemy import text
from sqlalchemy.orm import Session

from lux.compute.engine import follow_readings
from lux.compute.params import Params
from lux.config import Settings
from lux.db import Database, driver_connection, joined
from lux.ingest import rules
from lux.ingest.batch import Chunk, MalformedBatch, decode_json_array, lazy_raw, validate
from lux.ingest.journal import journal_event
from lux.ingest.store import BatchWriter, Outcome
from lux.timeutil import fleet_today, local_days

log = logging.getLogger(__name__)

MAX_BATCH_ROWS = 50_000
MAX_STREAM_ROWS = 1_000_000
CHUNK_ROWS = 5_000
RETRIES = 3

__all__ = ["MAX_BATCH_ROWS", "BatchTooLarge", "EmptyBatch", "MalformedBatch", "Outcome", "ingest_json",
           "ingest_stream"]


class EmptyBatch(ValueError):
    """The batch holds no readings."""


class BatchTooLarge(ValueError):
    """More rows than one request may carry."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"A batch may hold at most {limit} readings.")
        self.limit = limit


def ingest_json(db: Database, body: bytes, *, replace: bool, request_id: str,
                now: dt.datetime | None = None) -> Outcome:
    """Ingest a JSON array of readings (1 … 50,000) in one transaction."""
    values, typed = decode_json_array(body)
    if not values:
        raise EmptyBatch("The batch holds no readings.")
    if len(values) > MAX_BATCH_ROWS:
        raise BatchTooLarge(MAX_BATCH_ROWS)
    chunk = validate(values, typed, 0, now or dt.datetime.now(dt.UTC), lazy_raw(body))
    received = len(values)
    del values
    for attempt in range(1, RETRIES + 1):
        try:
            return _write(db, [(chunk, received)], replace=replace, request_id=request_id)
        except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
            if attempt == RETRIES:
                raise
            log.warning("ingest=retry reason=deadlock attempt=%s request_id=%s", attempt, request_id)
    raise AssertionError("unreachable")


def ingest_stream(db: Database, chunks: Iterable[tuple[Chunk, int]], *, replace: bool, request_id: str) -> Outcome:
    """Ingest validated chunks of a stream in one transaction (nothing is stored if any step fails)."""
    return _write(db, chunks, replace=replace, request_id=request_id, streaming=True)


def _write(db: Database, chunks: Iterable[tuple[Chunk, int]], *, replace: bool, request_id: str,
           streaming: bool = False) -> Outcome:
    with db.session_scope() as session:
        conn = driver_connection(session)
        writer = BatchWriter(conn, replace=replace, streaming=streaming)
        pending = iter(chunks)
        current = next(pending, None)
        while current is not None:
            following = next(pending, None)
            writer.add(current[0], current[1], last=following is None)
            if writer.outcome.received > MAX_STREAM_ROWS:
                raise BatchTooLarge(MAX_STREAM_ROWS)
            current = following
        outcome = writer.finish()
        _keep_rejects(conn, outcome, request_id)
        _follow_and_journal(session, outcome, db.settings, request_id)
    return outcome


def _kept_text(raw: str) -> str:
    """A rejected row's raw text as `ingest_rejects` keeps it: a NUL (a stream's line may hold one; PostgreSQL text
    cannot) is written as the six characters `\\u0000`, as JSON escapes it."""
    return raw.replace(rules.NUL, "\\u0000")


def _keep_rejects(conn: psycopg.Connection, outcome: Outcome, request_id: str) -> None:
    if not outcome.rejected:
        return
    outcome.rejected.sort(key=lambda item: item[0])
    with conn.cursor() as cur, cur.copy(
        "COPY ingest_rejects (request_id, row_index, site_id, reason, field, message, raw) FROM STDIN"
    ) as copy:
        for index, why, raw, site_id in outcome.rejected:
            copy.write_row((request_id, index, site_id, why.reason, why.field, why.message, _kept_text(raw)))


# The entry names the sites this transaction's follow found held by a run (`follow_held`): the status follow continues
# those (see lux.ingest.journal.FOLLOW_ENTRIES). Its earliest reading tells a recompute which sites' new readings all
# follow their last computed one (see lux.compute.daily). It is stamped as it is written, the transaction's last
# statement, not when the transaction started: how long ago the newest entry was written tells an event whether a
# burst of batches has ended (see lux.compute.modes.BURST_QUIET_S), however long the requests take.
JOURNAL = text("""
    INSERT INTO ingest_journal (request_id, site_pks, from_days, follow_pks, follow_days, earliest_at, created_at)
    VALUES (:request_id, string_to_array(:pks, ',')::int[],
            ARRAY(SELECT DATE '1970-01-01' + d
                    FROM unnest(string_to_array(:days, ',')::int[]) WITH ORDINALITY AS u(d, n) ORDER BY n),
            ARRAY(SELECT h.site_pk FROM follow_held h ORDER BY h.site_pk),
            ARRAY(SELECT h.from_day FROM follow_held h ORDER BY h.site_pk), :earliest_at, clock_timestamp())
    RETURNING id, cardinality(follow_pks)
""")


def _follow_and_journal(session: Session, outcome: Outcome, settings: Settings, request_id: str) -> None:
    """Continue the statuses of the sites written (in this transaction, see engine.follow_readings), then record each
    site written and the earliest local day it touched, and the sites whose status row a run held, for the status
    follow."""
    if not outcome.dirty:
        return
    timezone = settings.timezone
    days = local_days(timezone)
    earliest_at = min(outcome.dirty.values())
    first, last = days.number(earliest_at), days.number(max(outcome.dirty.values()))
    by_day: dict[int, list[int]] = {}
    if first == last:  # the usual batch: one day's reads of many sites, no need to place each one
        by_day[first] = list(outcome.dirty)
    else:
        for pk, earliest in outcome.dirty.items():
            by_day.setdefault(days.number(earliest), []).append(pk)
    from_days: dict[int, dt.date] = {}
    numbers: list[str] = []
    for day, day_pks in by_day.items():  # (a day's date made once, not once per site: 5 ms a 5,000-site batch)
        from_days.update(dict.fromkeys(day_pks, days.date(day)))
        numbers += [str(day)] * len(day_pks)
    follow_readings(session, Params.of(settings), fleet_today(timezone), from_days)
    outcome.journal_id, outcome.left_to_follow = session.execute(
        JOURNAL, {"request_id": request_id, "pks": joined(from_days), "days": joined(numbers),
                  "earliest_at": earliest_at},
    ).one()
    outcome.sites_by_day = {days.date(day).isoformat(): sorted(day_pks) for day, day_pks in sorted(by_day.items())}


def event_for(outcome: Outcome, request_id: str) -> dict | None:
    """The post-commit event: the sites written, grouped by the earliest local day each touched."""
    if not outcome.sites_by_day:
        return None
    return journal_event(request_id, outcome.journal_id, outcome.sites_by_day)

