"""Computation through real workers: the sharded full run, the rollover, operators' runs over the API,
and readings posted through the API changing the status the API serves."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from sqlalchemy import text

from lux.timeutil import fleet_today
from tests.conftest import free_port

D = dt.date(2026, 6, 10)


@pytest.fixture
def fleet(database):
    """Three sites: S1 reports daily, S2 went silent on the 5th, S3 never reported."""
    with database.engine.begin() as conn:
        pks = dict(conn.execute(text(
            "INSERT INTO sites (site_id, name, region, capacity_kwp) VALUES ('S1', 'a', 'London', 4), "
            "('S2', 'b', 'Wales', 3), ('S3', 'c', NULL, 2) RETURNING site_id, id")).all())
        conn.execute(text("""
            INSERT INTO readings (site_pk, reading_at, register_kwh, signal_level, network)
            SELECT :s1, d + time '19:00', 100 + 10 * extract(day FROM d), 20, 'EE'
              FROM generate_series(date '2026-06-01', date '2026-06-10', interval '1 day') d
            UNION ALL
            SELECT :s2, d + time '19:00', 50 + 5 * extract(day FROM d), 12, 'O2'
              FROM generate_series(date '2026-06-01', date '2026-06-05', interval '1 day') d"""),
            {"s1": pks["S1"], "s2": pks["S2"]})
    return pks


def statuses(database) -> dict[str, tuple]:
    with database.engine.connect() as conn:
        return {site: (status, days) for site, status, days in conn.execute(text(
            "SELECT s.site_id, st.status, st.days FROM site_status st JOIN sites s ON s.id = st.site_pk"))}


def run_records(database) -> list[tuple]:
    with database.engine.connect() as conn:
        return conn.execute(text("SELECT task, mode, shard, sites, outcome FROM compute_runs ORDER BY id")).all()


def test_full_run_is_a_group_of_shards_then_the_fleet_rollups(fleet, celery_worker, database):
    from worker.tasks.compute import full

    started = full.delay(as_of=D.isoformat(), shards=3).get(timeout=60)
    assert started["shards"] == 3
    fleet_result = full.AsyncResult(started["fleet_task_id"]).get(timeout=60)
    assert fleet_result["rows"] > 0
    assert statuses(database) == {"S1": ("healthy", 0), "S2": ("no_coms", 5), "S3": ("no_coms", None)}
    records = run_records(database)
    assert sorted(r[2] for r in records if r[0] == "lux.compute.shard") == ["0/3", "1/3", "2/3"]
    assert sum(r[3] for r in records if r[0] == "lux.compute.shard") == 3
    assert [r[0] for r in records][-1] == "lux.compute.fleet"
    assert {r[4] for r in records} == {"success"}
    with database.engine.connect() as conn:
        fleet_total = conn.execute(text(
            "SELECT generation_kwh FROM daily_rollups WHERE area = 'fleet' AND day = '2026-06-03'")).scalar_one()
    assert fleet_total == pytest.approx(10 + 5)


def test_rollover_moves_statuses_to_the_new_day(fleet, celery_worker, database):
    from worker.tasks.compute import rollover

    rollover.delay(as_of="2026-06-12").get(timeout=60)
    assert statuses(database)["S1"] == ("healthy", 2)
    rollover.delay(as_of="2026-06-13").get(timeout=60)
    assert statuses(database)["S1"] == ("no_coms", 3)
    assert [r[1] for r in run_records(database)] == ["rollover", "rollover"]


def test_operator_run_over_the_api_is_followed_to_its_result(client, auth, fleet, celery_worker, database):
    headers = auth("operate")
    answer = client.post("/api/v1/compute/run", json={"as_of": "2026-06-10", "sites": ["S1"]}, headers=headers)
    assert answer.status_code == 202
    task_id = answer.get_json()["task_id"]
    deadline, state = time.monotonic() + 30, None
    while time.monotonic() < deadline:
        state = client.get(f"/api/v1/tasks/{task_id}", headers=headers).get_json()
        if state["state"] in ("SUCCESS", "FAILURE"):
            break
        time.sleep(0.1)
    assert state["state"] == "SUCCESS", state
    assert state["result"]["sites"] == 1 and state["result"]["as_of"] == "2026-06-10"
    assert [(r["mode"], r["outcome"], r["sites"]) for r in state["runs"]] == [("explicit", "success", 1)]
    assert statuses(database) == {"S1": ("healthy", 0)}
    history = client.get("/api/v1/runs?mode=explicit", headers=headers).get_json()
    assert history["total"] == 1 and history["items"][0]["task_id"] == task_id


def test_tasks_sent_by_hand_as_of_a_later_day_than_today_are_refused(fleet, celery_worker, database, settings):
    """From Flower or `celery call` no API or CLI checks the day first: each computation task refuses it itself, so no
    status or snapshot as of a later day is written (none would be replaced until that day)."""
    from celery.exceptions import CeleryError

    from worker.tasks.compute import fleet as fleet_task
    from worker.tasks.compute import full, rollover, run, shard

    tomorrow = (fleet_today(settings.timezone) + dt.timedelta(days=1)).isoformat()
    for sent in (run.delay(as_of=tomorrow), run.delay(to_day=tomorrow), full.delay(as_of=tomorrow),
                 rollover.delay(as_of=tomorrow), shard.delay(tomorrow, 0, 1), fleet_task.delay(tomorrow)):
        with pytest.raises((ValueError, CeleryError), match="Must not be after"):
            sent.get(timeout=60)
    assert statuses(database) == {} and run_records(database) == []


def test_full_runs_and_shards_sent_by_hand_with_shards_that_would_recompute_nothing_are_refused(
        fleet, celery_worker, database):
    """A count below one, an index outside the count or a value of another type would have recomputed nothing (or
    the default) and reported success."""
    from celery.exceptions import CeleryError

    from worker.tasks.compute import full, shard

    day = D.isoformat()
    refused = {"shards": [full.delay(day, shards=0), full.delay(day, shards=-1), full.delay(day, shards="4"),
                          full.delay(day, shards=1025), shard.delay(day, 0, 0), shard.delay(day, 0, True)],
               "index": [shard.delay(day, 4, 4), shard.delay(day, -1, 4), shard.delay(day, 1.0, 4)]}
    for name, sent in refused.items():
        for result in sent:
            with pytest.raises((ValueError, CeleryError), match=f"{name}: Must be a whole number from"):
                result.get(timeout=60)
    assert statuses(database) == {} and run_records(database) == []
    assert shard.delay(day, 3, 4).get(timeout=60)["shard"] == "3/4"  # the last index of a count


def test_backfill_range_rebuilds_rollups_of_the_range_only(client, auth, fleet, celery_worker, database):
    from worker.tasks.compute import run

    run.delay(as_of="2026-06-10").get(timeout=60)
    with database.engine.begin() as conn:
        conn.execute(text("UPDATE daily_rollups SET generation_kwh = -1"))
    run.delay(from_day="2026-06-08", to_day="2026-06-09").get(timeout=60)
    with database.engine.connect() as conn:
        rollups = dict(conn.execute(text(
            "SELECT day::text, generation_kwh FROM daily_rollups WHERE area = 'fleet' ORDER BY day")).all())
    # S1 is rebuilt after its anchor (the 7th), S2 after its last reading before the range (the 5th)
    assert rollups["2026-06-05"] == -1 and rollups["2026-06-10"] == -1
    assert rollups["2026-06-06"] == pytest.approx(10) and rollups["2026-06-09"] == pytest.approx(10)


def test_readings_posted_through_the_api_change_the_status_it_serves(client, auth, fleet, celery_worker, database):
    from worker.tasks.compute import run

    today = dt.datetime.now(dt.UTC).date()
    run.delay(as_of=today.isoformat()).get(timeout=60)
    reader = auth("read")
    before = client.get("/api/v1/sites/S2/communication-status", headers=reader).get_json()
    assert before["status"] == "no_coms"
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    batch = [{"site_id": "S2", "reading_at": (now - dt.timedelta(days=back)).isoformat(), "register_kwh": 200 - back}
             for back in (4, 3, 2, 1, 0)]
    posted = client.post("/api/v1/readings", json=batch, headers=auth("ingest")).get_json()
    assert posted["accepted"] == 5 and posted["event"] == "queued"
    deadline, after = time.monotonic() + 30, before
    while after["status"] == "no_coms" and time.monotonic() < deadline:
        time.sleep(0.1)
        after = client.get("/api/v1/sites/S2/communication-status", headers=reader).get_json()
    assert after["status"] == "healthy"
    assert after["last_register_kwh"] == 200


def test_compute_run_rejects_unknown_sites_and_bad_ranges(client, auth, fleet, database, settings):
    headers = auth("operate")
    unknown = client.post("/api/v1/compute/run", json={"sites": ["S1", "NOPE"]}, headers=headers)
    assert unknown.status_code == 422 and unknown.get_json()["error"]["details"] == {"sites": ["NOPE"]}
    reversed_range = client.post("/api/v1/compute/run", json={"from": "2026-06-09", "to": "2026-06-01"},
                                 headers=headers)
    assert reversed_range.status_code == 422
    assert reversed_range.get_json()["error"]["details"]["json"] == {"from": ["Must not be after 'to'."]}
    tomorrow = fleet_today(settings.timezone) + dt.timedelta(days=1)
    for body, field in (({"as_of": tomorrow.isoformat()}, "as_of"), ({"from": "1999-12-31"}, "from"),
                        ({"to": tomorrow.isoformat()}, "to")):
        refused = client.post("/api/v1/compute/run", json=body, headers=headers)
        assert refused.status_code == 422 and list(refused.get_json()["error"]["details"]["json"]) == [field]
    with database.engine.connect() as conn:  # nothing was queued
        assert conn.execute(text("SELECT count(*) FROM compute_runs")).scalar_one() == 0
    assert client.post("/api/v1/compute/run", json={}, headers=auth("read")).status_code == 403
    assert client.get("/api/v1/tasks/no-such-task", headers=headers).status_code == 404
    assert client.get("/api/v1/runs?outcome=maybe", headers=headers).status_code == 422


def test_compute_run_answers_503_when_the_broker_is_down(settings, auth, fleet, database):
    from api import create_app

    broken = create_app(settings.with_changes(redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    answer = broken.test_client().post("/api/v1/compute/run", json={}, headers=auth("operate"))
    assert answer.status_code == 503
    assert run_records(database) == []
