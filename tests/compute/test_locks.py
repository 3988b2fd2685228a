"""One recompute at a time per site: runs over some sites lock their rows, a run over every site the table,
and each kind waits for the other (two real transactions; a short lock_timeout turns waiting into an error).
A follow of new readings waits for no run, and no run replaces the status it wrote with an older one."""

from __future__ import annotations

import datetime as dt
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from lux.compute import status
from lux.compute.engine import Followed, _locked_scope, follow_readings, recompute_sites, refresh_statuses
from lux.compute.params import Params

D = dt.date(2026, 6, 10)
PARAMS = Params()


@pytest.fixture
def sites(database) -> list[int]:
    with database.engine.begin() as conn:
        return conn.execute(text("INSERT INTO sites (site_id, name, capacity_kwp) VALUES ('L1', 'a', 3), "
                                 "('L2', 'b', 3) RETURNING id")).scalars().all()


def waits_for_the_other(database, run) -> bool:
    """Whether `run(session)` blocks on a lock (it gives up after 300 ms) rather than completing."""
    with database.session_scope() as session:
        session.execute(text("SET LOCAL lock_timeout = '300ms'"))
        try:
            run(session)
        except OperationalError as error:
            assert "lock timeout" in str(error.orig)
            return True
    return False


def every_site(session) -> None:
    refresh_statuses(session, PARAMS, D)


def one_site(pk: int):
    return lambda session: refresh_statuses(session, PARAMS, D, sites=[pk])


def test_a_run_over_every_site_and_a_run_over_one_wait_for_each_other(database, sites):
    """The holding transaction takes only the run's locks (it writes nothing the others write)."""
    first, second = sites
    with database.session_scope() as holding, _locked_scope(holding, [first], None, None):
        assert waits_for_the_other(database, every_site)
        assert waits_for_the_other(database, one_site(first))
        assert not waits_for_the_other(database, one_site(second))  # other sites go on
    assert not waits_for_the_other(database, every_site)

    with database.session_scope() as holding, _locked_scope(holding, None, None, None):
        assert waits_for_the_other(database, one_site(second))
        assert waits_for_the_other(database, every_site)
    assert not waits_for_the_other(database, one_site(second))


def test_a_follow_waits_for_no_run_and_keeps_the_sites_whose_status_a_run_is_writing(database, sites):
    """A follow takes no run's locks: it follows sites a run is computing (their lock rows held, or the whole table),
    and moves a site whose status row a run has written and not yet committed to `follow_held`, with its day and
    since when; a site with no status yet is neither followed nor held."""
    first, second = sites
    later = D + dt.timedelta(days=1)
    asked = {first: D, second: later}

    def held(session) -> dict[int, dt.date]:
        rows = session.execute(text("SELECT site_pk, from_day, held_since FROM follow_held")).all()
        assert all(since is not None for _pk, _day, since in rows)
        return {pk: day for pk, day, _since in rows}

    with database.session_scope() as session:
        assert follow_readings(session, PARAMS, later, asked) == Followed(0, 0)  # no status to continue from yet
    with database.session_scope() as session:
        refresh_statuses(session, PARAMS, D)
    for run_sites in ([first], None):
        with (database.session_scope() as holding, _locked_scope(holding, run_sites, None, None),
              database.session_scope() as session):
            assert follow_readings(session, PARAMS, later, asked).held == 0 and held(session) == {}
    with database.session_scope() as holding, database.session_scope() as session:
        refresh_statuses(holding, PARAMS, D, sites=[first])  # a run's statuses written, not committed
        assert follow_readings(session, PARAMS, later, asked).held == 1 and held(session) == {first: D}
    with database.session_scope() as holding, database.session_scope() as session:
        refresh_statuses(holding, PARAMS, D)
        assert follow_readings(session, PARAMS, later, asked).held == 2 and held(session) == asked


@pytest.mark.parametrize("by_key_max_sites", [status.BY_KEY_MAX_SITES, 0], ids=["by key", "by join"])
def test_a_run_keeps_the_status_a_follow_wrote_from_a_reading_the_run_did_not_see(database, sites, monkeypatch,
                                                                                  by_key_max_sites):
    """A run reads the readings, then a reading commits and a follow writes the status from it while the run waits
    to write its own (the follow holds the status row): the run's status, older, does not replace the follow's, and
    the run's episodes go by its own days (a low signal runs on over the days after its last reading day)."""
    monkeypatch.setattr(status, "BY_KEY_MAX_SITES", by_key_max_sites)
    first = sites[0]
    later = D + dt.timedelta(days=1)

    def add_reading(day: dt.date, kwh: float) -> None:
        with database.session_scope() as session:
            session.execute(text("INSERT INTO readings (site_pk, reading_at, register_kwh, signal_level) "
                                 "VALUES (:pk, :at, :kwh, 5)"),
                            {"pk": first, "at": dt.datetime.combine(day, dt.time(18), dt.UTC), "kwh": kwh})

    def last_reading() -> dt.datetime:
        with database.engine.connect() as conn:
            return conn.execute(text("SELECT last_reading_at FROM site_status WHERE site_pk = :pk"),
                                {"pk": first}).scalar_one()

    def episodes() -> list[tuple]:
        with database.engine.connect() as conn:
            return conn.execute(text("SELECT type, start_day, end_day, details FROM anomalies WHERE site_pk = :pk "
                                     "ORDER BY type, start_day"), {"pk": first}).all()

    for n, kwh in enumerate((10.0, 12.0, 14.0)):
        add_reading(D - dt.timedelta(days=5 - n), kwh)
    with database.session_scope() as session:
        recompute_sites(session, PARAMS, later, sites=[first])
    before = episodes()
    assert [(kind, start, end) for kind, start, end, _details in before] == [("low_signal", D - dt.timedelta(days=5),
                                                                              None)]
    def run() -> int:
        with database.session_scope() as session:
            session.execute(text("SET LOCAL lock_timeout = '20s'"))  # a failed follow below must not leave it waiting
            return recompute_sites(session, PARAMS, later, sites=[first]).sites

    with ThreadPoolExecutor(1) as pool, database.session_scope() as follow:
        follow.execute(text("SELECT 1 FROM site_status WHERE site_pk = :pk FOR NO KEY UPDATE"), {"pk": first})
        recomputed = pool.submit(run)
        try:
            waiting_for_a_lock = text("SELECT count(*) FROM pg_locks WHERE NOT granted")
            deadline = time.monotonic() + 10
            while not follow.execute(waiting_for_a_lock).scalar_one():  # the run has read the readings
                assert time.monotonic() < deadline and not recomputed.done()
                time.sleep(0.02)
            add_reading(later, 16.0)
            assert follow_readings(follow, PARAMS, later, {first: later}) == Followed(1, 0)
            follow.commit()
        finally:
            follow.rollback()  # (after the commit, nothing) the run goes on
        assert recomputed.result(timeout=30) == 1
    assert last_reading() == dt.datetime.combine(later, dt.time(18), dt.UTC)
    assert episodes() == before
    with database.session_scope() as session:  # the reading's own recompute
        recompute_sites(session, PARAMS, later, sites=[first])
    assert last_reading() == dt.datetime.combine(later, dt.time(18), dt.UTC)
