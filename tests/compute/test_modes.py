"""The incremental mode's claims and the fleet refresh they owe, run in-process against PostgreSQL and Redis."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import text

from lux.compute import modes
from lux.ingest.journal import mark_dirty

D = dt.date(2026, 6, 10)


@pytest.fixture
def two_sites(database) -> dict[str, int]:
    """Two sites with ten days of readings each, and one journal entry per site."""
    with database.engine.begin() as conn:
        pks = dict(conn.execute(text("INSERT INTO sites (site_id, name, region, capacity_kwp) VALUES "
                                     "('A', 'a', 'London', 4), ('B', 'b', 'Wales', 3) RETURNING site_id, id")).all())
        conn.execute(text("""
            INSERT INTO readings (site_pk, reading_at, register_kwh)
            SELECT s.id, d + time '19:00', 10 * extract(day FROM d) * s.id
              FROM sites s, generate_series(date '2026-06-01', date '2026-06-10', interval '1 day') d"""))
    with database.session_scope() as session:
        mark_dirty(session, [pks["A"]], reason="test", from_day=dt.date(2026, 6, 1))
        mark_dirty(session, [pks["B"]], reason="test", from_day=dt.date(2026, 6, 5))
    return pks


def scalar(database, sql: str) -> object:
    with database.engine.connect() as conn:
        return conn.execute(text(sql)).scalar()


def test_an_event_takes_its_own_entry_first_and_no_more_than_asked(database, two_sites):
    with database.engine.connect() as conn:
        first, second = conn.execute(text("SELECT id FROM ingest_journal ORDER BY id")).scalars().all()
    done = modes.run_incremental(database, task="t", task_id=None, journal_ids=[second], entries=1, as_of=D)
    assert (done["claimed"], done["from_day"]) == (1, "2026-06-05")
    assert scalar(database, "SELECT count(*) FROM site_status") == 1
    assert scalar(database, "SELECT array_agg(id) FROM ingest_journal") == [first]
    # its entry already taken: the event's task does nothing, and records nothing
    assert modes.run_incremental(database, task="t", task_id=None, journal_ids=[second], as_of=D) == {
        "claimed": 0, "fleet_refresh": False}
    assert scalar(database, "SELECT count(*) FROM compute_runs") == 1


def test_an_event_whose_entry_another_claimer_holds_records_no_run(database, two_sites):
    with database.engine.connect() as other:
        # another worker's claim, still running: its entries are locked, so this claim skips them
        other.execute(text("SELECT id FROM ingest_journal FOR UPDATE"))
        held = other.execute(text("SELECT min(id) FROM ingest_journal")).scalar_one()
        done = modes.run_incremental(database, task="t", task_id="event-1", journal_ids=[held], as_of=D)
        other.rollback()
    assert done == {"claimed": 0, "fleet_refresh": False}
    assert scalar(database, "SELECT count(*) FROM compute_runs") == 0
    assert scalar(database, "SELECT count(*) FROM ingest_journal") == 2  # left for the claimer that holds them


def an_attempt_that_died(database, task_id: str) -> None:
    """The record a worker leaves when it dies after its work committed: still `running`."""
    with database.engine.begin() as conn:
        conn.execute(text("""
            INSERT INTO compute_runs (task, task_id, mode, as_of, outcome, started_at)
            VALUES ('t', :task_id, 'incremental', :as_of, 'running', now() - interval '1 minute')"""),
                     {"task_id": task_id, "as_of": D})


def test_a_redelivered_event_that_finds_nothing_finishes_the_record_it_inherits(database, two_sites):
    an_attempt_that_died(database, "event-1")
    with database.engine.connect() as other:
        other.execute(text("SELECT id FROM ingest_journal FOR UPDATE"))  # another claimer holds every entry
        held = other.execute(text("SELECT min(id) FROM ingest_journal")).scalar_one()
        done = modes.run_incremental(database, task="t", task_id="event-1", journal_ids=[held], as_of=D)
        other.rollback()
    assert done == {"claimed": 0, "fleet_refresh": False}
    with database.engine.connect() as conn:
        assert conn.execute(text("SELECT outcome, finished_at IS NOT NULL FROM compute_runs")).all() == [
            ("success", True)]


def test_a_redelivered_event_with_nothing_pending_finishes_the_record_it_inherits(database, two_sites):
    an_attempt_that_died(database, "event-2")
    an_attempt_that_died(database, "other-task")
    with database.engine.begin() as conn:
        conn.execute(text("DELETE FROM ingest_journal"))  # taken by the attempt that died
    done = modes.run_incremental(database, task="t", task_id="event-2", as_of=D)
    assert done == {"claimed": 0, "fleet_refresh": False}
    with database.engine.connect() as conn:
        assert dict(conn.execute(text("SELECT task_id, outcome FROM compute_runs")).all()) == {
            "event-2": "success", "other-task": "running"}


def test_one_fleet_refresh_takes_every_request_owed(database, two_sites):
    for _ in range(2):
        assert modes.run_incremental(database, task="t", task_id=None, entries=1, as_of=D)["fleet_refresh"]
    assert scalar(database, "SELECT count(*) FROM fleet_refresh_requests") == 2
    assert scalar(database, "SELECT count(*) FROM daily_rollups") == 0  # owed, not yet built

    done = modes.run_fleet_refresh(database, task="t", task_id=None, as_of=D)
    # A was rebuilt whole (no site day before its first reading): its first day is the earliest changed
    assert (done["requests"], done["from_day"]) == (2, "2026-06-01")
    assert scalar(database, "SELECT count(*) FROM fleet_refresh_requests") == 0
    fleet = scalar(database, "SELECT generation_kwh FROM daily_rollups WHERE area = 'fleet' AND day = '2026-06-10'")
    assert fleet == pytest.approx(10 * two_sites["A"] + 10 * two_sites["B"])
    assert scalar(database, "SELECT count(*) FROM fleet_snapshots WHERE as_of = '2026-06-10'") == 5
    assert modes.run_fleet_refresh(database, task="t", task_id=None, as_of=D) == {"requests": 0}


class Published(list):
    """The names of the tasks sent, and in `countdowns` how many seconds each waits (None: none)."""

    def __init__(self) -> None:
        super().__init__()
        self.countdowns: list[float | None] = []


@pytest.fixture
def published(celery_app) -> Iterator[Published]:
    """The tasks sent while the test runs (none of them runs: the fleet refreshes wait 3 s at least)."""
    from celery.signals import after_task_publish

    names = Published()

    def record(sender=None, headers=None, **_):
        names.append(sender)
        eta = dt.datetime.fromisoformat(headers["eta"]) if headers.get("eta") else None
        names.countdowns.append(eta and (eta - dt.datetime.now(dt.UTC)).total_seconds())

    after_task_publish.connect(record, weak=False)
    yield names
    after_task_publish.disconnect(record)


def test_an_event_sends_a_fleet_refresh_only_when_none_is_pending_or_running(database, two_sites, celery_app,
                                                                            published):
    from worker.tasks.compute import FLEET_REFRESH_KEY, FLEET_REFRESH_TTL_S
    from worker.tasks.ingest import process_events

    broker = celery_app.backend.client
    broker.set(FLEET_REFRESH_KEY, 1, ex=60)  # a refresh pending or running
    first = scalar(database, "SELECT min(id) FROM ingest_journal")
    assert process_events.apply(({"journal_id": first},)).get()["fleet_refresh"]  # both entries
    assert published == []
    broker.delete(FLEET_REFRESH_KEY)
    second = a_new_reading(database, two_sites["A"], dt.date(2026, 6, 11))
    assert process_events.apply(({"journal_id": second},)).get()["fleet_refresh"]
    assert published == ["lux.compute.fleet_refresh"] and 2 < published.countdowns[0] <= 3
    assert 0 < broker.ttl(FLEET_REFRESH_KEY) <= FLEET_REFRESH_TTL_S
    assert scalar(database, "SELECT count(*) FROM fleet_refresh_requests") == 2  # both owed to that one refresh


def test_a_fleet_refresh_clears_its_mark_and_sends_the_next_for_requests_written_while_it_ran(
        database, two_sites, celery_app, published):
    from worker.tasks.compute import FLEET_REFRESH_KEY, fleet_refresh

    broker = celery_app.backend.client
    assert modes.run_incremental(database, task="t", task_id=None, entries=1)["fleet_refresh"]
    broker.set(FLEET_REFRESH_KEY, "refresh-1", ex=60)  # as the event that sent it left it
    with ThreadPoolExecutor(1) as pool, database.engine.connect() as rollups:
        rollups.execute(text("SELECT pg_advisory_lock(hashtext('lux.compute.rollups'))"))  # the refresh waits here
        held_since = time.monotonic()
        running = pool.submit(lambda: fleet_refresh.apply(task_id="refresh-1").get())
        wait_for_advisory_lock_waiter(database)
        # the refresh took the first request; a recompute meanwhile owes another
        assert modes.run_incremental(database, task="t", task_id=None, entries=1)["fleet_refresh"]
        time.sleep(max(0.0, held_since + 5 - time.monotonic()))  # a refresh that takes 5 s: the next waits as long
        rollups.execute(text("SELECT pg_advisory_unlock(hashtext('lux.compute.rollups'))"))
        rollups.commit()
        done = running.result(timeout=30)
    assert (done["requests"], done["next"]) == (1, True)
    assert published == ["lux.compute.fleet_refresh"]
    assert broker.get(FLEET_REFRESH_KEY) not in (None, b"refresh-1")  # the next refresh's mark
    assert published.countdowns[0] > 4

    broker.delete(FLEET_REFRESH_KEY)
    published.clear()
    done = fleet_refresh.apply().get()
    assert (done["requests"], done["next"]) == (1, False)
    assert published == [] and not broker.exists(FLEET_REFRESH_KEY)
    assert scalar(database, "SELECT count(*) FROM fleet_refresh_requests") == 0


def test_only_the_refresh_a_mark_was_set_for_clears_it(database, celery_app):
    from worker.tasks.compute import FLEET_REFRESH_KEY, fleet_refresh

    broker = celery_app.backend.client
    broker.set(FLEET_REFRESH_KEY, "sent-by-an-event", ex=60)  # that refresh still pending
    fleet_refresh.apply(task_id="a-sweeps-refresh").get()  # a sweep's chord sends its refresh without the mark
    assert broker.get(FLEET_REFRESH_KEY) == b"sent-by-an-event"
    fleet_refresh.apply(task_id="sent-by-an-event").get()
    assert not broker.exists(FLEET_REFRESH_KEY)


def a_new_reading(database, site_pk: int, day: dt.date) -> int:
    """A reading of `site_pk` on `day` and its journal entry, as an ingest batch leaves them; the entry's id."""
    with database.session_scope() as session:
        session.execute(text("INSERT INTO readings (site_pk, reading_at, register_kwh) "
                             "VALUES (:pk, CAST(:day AS date) + time '19:00', 1000)"), {"pk": site_pk, "day": day})
        mark_dirty(session, [site_pk], reason="test", from_day=day)
    return scalar(database, "SELECT max(id) FROM ingest_journal")


def wait_for_advisory_lock_waiter(database, timeout_s: float = 15.0) -> None:
    """Until a session of this database waits for an advisory lock."""
    deadline = time.monotonic() + timeout_s
    while not scalar(database, "SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                               "WHERE l.locktype = 'advisory' AND NOT l.granted AND a.datname = current_database())"):
        assert time.monotonic() < deadline, "the fleet refresh never reached the rollups' lock"
        time.sleep(0.02)


def test_a_backfill_as_of_an_earlier_day_keeps_the_later_status_and_episodes_to_its_last_day(database):
    """A run as of an earlier day than the stored status does not replace it, and its episodes run to that status'
    last reading day, not to the run's own as-of day (the run writes its status last: its anomaly stage reads the
    status the run will leave stored)."""
    with database.engine.begin() as conn:
        pk = conn.execute(text("INSERT INTO sites (site_id, name, capacity_kwp) VALUES ('K', 'k', 4) RETURNING id"))\
            .scalar_one()
        conn.execute(text("""
            INSERT INTO readings (site_pk, reading_at, register_kwh)
            SELECT :pk, d + time '19:00', 10 * least(extract(day FROM d), 5)
              FROM generate_series(date '2026-06-01', date '2026-06-10', interval '1 day') d"""), {"pk": pk})

    def stored() -> tuple:
        with database.engine.connect() as conn:
            status = conn.execute(text("SELECT as_of, last_day, status, days FROM site_status")).one()
            episodes = conn.execute(text("SELECT type, start_day, end_day, details FROM anomalies ORDER BY 1, 2"))
            return tuple(status), [tuple(row) for row in episodes]

    modes.run_explicit(database, task="t", task_id=None, as_of=D, site_pks=[pk])
    full = stored()
    assert full == ((D, D, "zero_read", 5), [("stuck_register", dt.date(2026, 6, 5), None,
                                              {"days": 5, "register_kwh": 50.0})])
    modes.run_explicit(database, task="t", task_id=None, as_of=D - dt.timedelta(days=2), site_pks=[pk])
    assert stored() == full
