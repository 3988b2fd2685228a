"""`lux compute`: operators' runs here or on the workers, against the test database."""

import datetime as dt
import json

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from lux.cli import main
from lux.timeutil import fleet_today


@pytest.fixture
def run(settings):
    def invoke(*args: str):
        return CliRunner().invoke(main, list(args), obj=settings)

    return invoke


@pytest.fixture
def fleet(database):
    with database.engine.begin() as conn:
        conn.execute(text("INSERT INTO sites (site_id, name, capacity_kwp) VALUES ('C1', 'a', 4), ('C2', 'b', 4)"))
        conn.execute(text("""
            INSERT INTO readings (site_pk, reading_at, register_kwh)
            SELECT s.id, d + time '19:00', 5 * extract(day FROM d)
              FROM sites s, generate_series(date '2026-06-01', date '2026-06-10', interval '1 day') d"""))


def statuses(database) -> dict:
    with database.engine.connect() as conn:
        return dict(conn.execute(text("SELECT s.site_id, st.status FROM site_status st "
                                      "JOIN sites s ON s.id = st.site_pk")).all())


def test_compute_one_site_here(run, fleet, database):
    result = run("compute", "--as-of", "2026-06-10", "--site", "C1")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert (answer["sites"], answer["as_of"]) == (1, "2026-06-10") and answer["rows"] >= 10
    assert statuses(database) == {"C1": "healthy"}


def test_compute_full_runs_every_shard_then_the_fleet(run, fleet, database):
    result = run("compute", "--full", "--shards", "2", "--as-of", "2026-06-14")
    assert result.exit_code == 0, result.output
    runs = json.loads(result.output)["runs"]
    assert [r.get("shard") for r in runs] == ["0/2", "1/2", None]
    assert statuses(database) == {"C1": "no_coms", "C2": "no_coms"}
    with database.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM compute_runs WHERE outcome = 'success'")).scalar() == 3


def test_compute_queue_sends_the_task_to_the_workers(run, fleet, database, celery_worker):
    from worker.tasks.compute import run as compute_run

    result = run("compute", "--queue", "--as-of", "2026-06-10", "--site", "C2")
    assert result.exit_code == 0, result.output
    sent = json.loads(result.output)
    assert sent["task"] == "lux.compute.run"
    assert compute_run.AsyncResult(sent["task_id"]).get(timeout=30)["sites"] == 1
    assert statuses(database) == {"C2": "healthy"}


def test_compute_refuses_unknown_sites_and_full_with_a_scope(run, fleet):
    unknown = run("compute", "--site", "NOPE")
    assert unknown.exit_code == 2 and "unknown site_id(s): NOPE" in unknown.output
    mixed = run("compute", "--full", "--site", "C1")
    assert mixed.exit_code == 2 and "--full recomputes every site" in mixed.output


@pytest.mark.parametrize("args", [("--as-of", "tomorrow"), ("--full", "--as-of", "tomorrow"),
                                  ("--queue", "--as-of", "tomorrow"), ("--from", "1999-12-31")])
def test_compute_refuses_a_day_after_today_or_before_any_reading(run, fleet, database, settings, args):
    """A run as of a later day than the fleet's today would leave statuses no nightly run replaces: refused, with
    nothing computed or sent."""
    tomorrow = fleet_today(settings.timezone) + dt.timedelta(days=1)
    result = run("compute", *(tomorrow.isoformat() if arg == "tomorrow" else arg for arg in args))
    assert result.exit_code == 2
    assert ("--as-of: Must not be after today" if "--as-of" in args else "--from: Must not be before 2000-01-01") \
        in result.output
    assert statuses(database) == {}
    with database.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM compute_runs")).scalar() == 0
