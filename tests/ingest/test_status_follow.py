"""An ingest continues the statuses of the sites it wrote in its own transaction: a new reading is in its site's
status when the request returns, with no worker. A site whose status row a run holds is not waited for: the journal
entry names it for the status follow, which continues it once the row is free."""

import datetime as dt
import json
import threading

import pytest
from sqlalchemy import text

from lux.compute import modes
from lux.ingest import ingest_json


@pytest.fixture
def sites(database):
    """Three sites with statuses as of their readings up to 2026-03-20; F3 has no status (no recompute yet)."""
    with database.engine.begin() as conn:
        pks = dict(conn.execute(text("INSERT INTO sites (site_id, name, capacity_kwp) VALUES ('F1', 'f', 3), "
                                     "('F2', 'f', 3), ('F3', 'f', 3) RETURNING site_id, id")).all())
        conn.execute(text("""
            INSERT INTO readings (site_pk, reading_at, register_kwh, signal_level)
            SELECT pk, timestamptz '2026-03-10 19:00Z' + make_interval(days => d), 100 + 5 * d, 15
              FROM unnest(CAST(:pks AS int[])) AS pk, generate_series(0, 10) AS d"""),
                     {"pks": [pks["F1"], pks["F2"]]})
    modes.run_explicit(database, task="test", task_id=None, site_pks=[pks["F1"], pks["F2"]])
    return pks


def post(database, rows: list[tuple[str, str, float]]):
    body = [{"site_id": site, "reading_at": at, "register_kwh": kwh, "signal_level": 9} for site, at, kwh in rows]
    return ingest_json(database, json.dumps(body).encode(), replace=False, request_id="follow")


def statuses(database) -> dict[str, tuple]:
    with database.engine.connect() as conn:
        return {site: tuple(rest) for site, *rest in conn.execute(text(
            "SELECT s.site_id, st.last_reading_at, st.last_register_kwh, st.signal_level, st.last_day, st.recent_days "
            "FROM site_status st JOIN sites s ON s.id = st.site_pk"))}


def entry(database, journal_id: int) -> tuple:
    with database.engine.connect() as conn:
        return conn.execute(text("SELECT follow_pks, follow_days FROM ingest_journal WHERE id = :id"),
                            {"id": journal_id}).one()


def test_a_batch_is_in_its_sites_statuses_when_the_ingest_returns(database, sites):
    before = statuses(database)
    assert before["F1"][:4] == (dt.datetime(2026, 3, 20, 19, tzinfo=dt.UTC), 150.0, 15, dt.date(2026, 3, 20))
    outcome = post(database, [("F1", "2026-03-21T19:00:00Z", 155.0), ("F1", "2026-03-22T12:00:00Z", 158.0),
                              ("F2", "2026-03-20T20:00:00Z", 151.0), ("F3", "2026-03-21T19:00:00Z", 1.0)])
    after = statuses(database)
    # F1: two new days, newest first in its recent days; F2: its last day's closing reading replaced
    assert after["F1"][:5] == (dt.datetime(2026, 3, 22, 12, tzinfo=dt.UTC), 158.0, 9, dt.date(2026, 3, 22),
                               [dt.date(2026, 3, 22), dt.date(2026, 3, 21), dt.date(2026, 3, 20), dt.date(2026, 3, 19)])
    assert after["F2"][:4] == (dt.datetime(2026, 3, 20, 20, tzinfo=dt.UTC), 151.0, 9, dt.date(2026, 3, 20))
    assert "F3" not in after  # no status to continue: its recompute writes it
    assert outcome.left_to_follow == 0 and entry(database, outcome.journal_id) == ([], [])


def test_a_late_reading_is_left_to_the_recompute(database, sites):
    before = statuses(database)
    outcome = post(database, [("F1", "2026-03-15T20:00:00Z", 125.5)])  # a day before F1's last one
    assert statuses(database) == before
    assert outcome.left_to_follow == 0 and entry(database, outcome.journal_id) == ([], [])


def test_a_status_row_a_run_holds_is_not_waited_for_but_left_to_the_status_follow(database, sites):
    before = statuses(database)
    done: list = []
    with database.engine.connect() as holder:  # a run that has written F1's status and not committed
        holder.execute(text("SELECT 1 FROM site_status WHERE site_pk = :pk FOR NO KEY UPDATE"), {"pk": sites["F1"]})
        ingest = threading.Thread(target=lambda: done.append(post(database, [
            ("F1", "2026-03-21T19:00:00Z", 155.0), ("F2", "2026-03-21T19:00:00Z", 156.0)])))
        ingest.start()
        ingest.join(timeout=20)
        assert done, "the ingest waited for the status row a run holds"
        outcome = done[0]
        assert outcome.left_to_follow == 1
        assert entry(database, outcome.journal_id) == ([sites["F1"]], [dt.date(2026, 3, 21)])
        after = statuses(database)
        assert after["F1"] == before["F1"] and after["F2"][0] == dt.datetime(2026, 3, 21, 19, tzinfo=dt.UTC)
        holder.rollback()
    assert modes.run_follow(database) == {"sites": 1, "written": 1, "held": 0}  # only the site left to it
    assert statuses(database)["F1"][:2] == (dt.datetime(2026, 3, 21, 19, tzinfo=dt.UTC), 155.0)
