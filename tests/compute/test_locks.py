"""One recompute at a time per site: runs over some sites lock their rows, a run over every site the table,
and each kind waits for the other (two real transactions; a short lock_timeout turns waiting into an error)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from lux.compute.engine import Followed, _locked_scope, follow_readings, refresh_statuses
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


def test_a_follow_takes_the_sites_no_run_holds_and_keeps_the_others_with_their_days(database, sites):
    """A follow waits for no run: a site a run holds goes to `follow_held` with its day and since when, the others
    are followed; while a run holds every site (the table), every site is held."""
    first, second = sites
    later = D + dt.timedelta(days=1)
    asked = {first: D, second: later}

    def held(session) -> dict[int, dt.date]:
        rows = session.execute(text("SELECT site_pk, from_day, held_since FROM follow_held")).all()
        assert all(since is not None for _pk, _day, since in rows)
        return {pk: day for pk, day, _since in rows}

    with database.session_scope() as session:  # the sites' first follow writes their lock rows
        assert follow_readings(session, PARAMS, later, asked).held == 0 and held(session) == {}
    with (database.session_scope() as holding, _locked_scope(holding, [first], None, None),
          database.session_scope() as session):
        assert follow_readings(session, PARAMS, later, asked).held == 1 and held(session) == {first: D}
    with (database.session_scope() as holding, _locked_scope(holding, None, None, None),
          database.session_scope() as session):
        assert follow_readings(session, PARAMS, later, asked) == Followed(0, 2) and held(session) == asked
