"""The post-commit ingest event reaches a real worker; a lost event is recovered by the sweep."""

import datetime as dt
import json
import time

import pytest
from celery.signals import task_success
from sqlalchemy import text

from api import create_app
from tests.conftest import free_port

BATCH = [
    {"site_id": "E1", "reading_at": "2026-03-28T21:00:00Z", "register_kwh": 1},
    {"site_id": "E1", "reading_at": "2026-03-29T22:30:00Z", "register_kwh": 2},   # 23:30 BST: local day 29th
    {"site_id": "E2", "reading_at": "2026-03-30T23:30:00+00:00", "register_kwh": 3},  # 00:30 BST on the 31st
]


@pytest.fixture
def sites(database):
    with database.engine.begin() as conn:
        rows = conn.execute(text("INSERT INTO sites (site_id, name, capacity_kwp) VALUES ('E1', 'a', 3), "
                                 "('E2', 'b', 3) RETURNING site_id, id")).all()
    return dict(rows)


def dirty(database) -> dict:
    """Pending journal entries, coalesced per site: site_pk → earliest local day."""
    with database.engine.connect() as conn:
        return {pk: day.isoformat() for pk, day in conn.execute(text(
            "SELECT pk, min(day) FROM ingest_journal, unnest(site_pks, from_days) AS u(pk, day) GROUP BY pk"))}


def computed_days(database) -> dict:
    """The site days the recompute wrote: site_id → days."""
    with database.engine.connect() as conn:
        rows = conn.execute(text("SELECT s.site_id, array_agg(d.day::text ORDER BY d.day) FROM site_days d "
                                 "JOIN sites s ON s.id = d.site_pk GROUP BY s.site_id")).all()
    return dict(rows)


def test_event_reaches_a_real_worker_with_sites_and_days(client, auth, sites, celery_worker, database):
    seen = []

    def record(sender=None, result=None, **_):
        if sender.name == "lux.ingest.process_events":
            seen.append((sender.request.args[0], result))

    task_success.connect(record, weak=False)
    try:
        answer = client.post("/api/v1/readings", json=BATCH, headers=auth("ingest")).get_json()
        assert answer["event"] == "queued"
        deadline = time.monotonic() + 30
        mine = []  # events of earlier tests may still be in the queue
        while not mine and time.monotonic() < deadline:
            time.sleep(0.05)
            mine = [item for item in seen if item[0]["request_id"] == answer["request_id"]]
    finally:
        task_success.disconnect(record)
    event, result = mine[0]
    assert event["request_id"] == answer["request_id"] and event["journal_id"] > 0
    assert event["sites_by_day"] == {"2026-03-28": [sites["E1"]], "2026-03-31": [sites["E2"]]}
    assert result["claimed"] == 2 and result["from_day"] == "2026-03-28"
    assert dirty(database) == {}
    assert computed_days(database) == {"E1": ["2026-03-28", "2026-03-29"], "E2": ["2026-03-31"]}


def test_site_made_dirty_while_redis_is_down_is_swept_when_it_is_back(settings, auth, sites, celery_worker,
                                                                      database):
    from worker.tasks.ingest import sweep

    broken = create_app(settings.with_changes(redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    started = time.monotonic()
    response = broken.test_client().post("/api/v1/readings", json=BATCH, headers=auth("ingest"))
    assert response.status_code == 200 and response.get_json()["accepted"] == 3
    assert response.get_json()["event"] == "deferred"
    assert time.monotonic() - started < 10
    assert dirty(database) == {sites["E1"]: "2026-03-28", sites["E2"]: "2026-03-31"}

    assert sweep.delay(older_than_s=3600).get(timeout=30)["claimed"] == 0  # too recent for this sweep
    result = sweep.delay(older_than_s=0).get(timeout=30)
    assert (result["claimed"], result["sites"], result["from_day"]) == (2, 2, "2026-03-28")
    assert dirty(database) == {}
    assert computed_days(database) == {"E1": ["2026-03-28", "2026-03-29"], "E2": ["2026-03-31"]}


def test_a_sweep_of_a_large_backlog_is_spread_over_the_workers(settings, sites, celery_worker, database,
                                                               monkeypatch):
    """Three lost events' entries (two of them naming E1), spread over three parts: split into one entry per class of
    sites, they make two `sweep_part` recomputes of one site each (E1 and E2 have consecutive ids), not three of
    which two recompute E1, then one fleet refresh for both."""
    from lux.compute import modes
    from lux.db import Database
    from lux.ingest import ingest_json
    from worker.app import celery_app
    from worker.tasks.ingest import sweep

    monkeypatch.setattr(modes, "SWEEP_SPLIT_MIN_SITES", 2)  # the worker thread reads it from this module
    db = Database(settings)
    for number, row in enumerate(BATCH):
        ingest_json(db, json.dumps([row]).encode(), replace=False, request_id=f"lost-{number}")
    db.engine.dispose()

    answer = sweep.delay(older_than_s=0, parts=3).get(timeout=30)
    assert len(answer["parts"]) == 2
    refresh = celery_app.AsyncResult(answer["fleet_task_id"]).get(timeout=60)
    assert refresh["requests"] == 2  # one refresh takes what both parts owe
    assert dirty(database) == {}
    assert computed_days(database) == {"E1": ["2026-03-28", "2026-03-29"], "E2": ["2026-03-31"]}
    with database.engine.connect() as conn:
        runs = conn.execute(text("SELECT task, outcome, coalesce(sites, 0) FROM compute_runs")).all()
        owed = conn.execute(text("SELECT count(*) FROM fleet_refresh_requests")).scalar_one()
        rolled = conn.execute(text("SELECT count(*) FROM daily_rollups WHERE area = 'fleet'")).scalar_one()
    assert sorted(runs) == [("lux.compute.fleet_refresh", "success", 0), ("lux.compute.sweep_part", "success", 1),
                            ("lux.compute.sweep_part", "success", 1)]
    assert owed == 0 and rolled > 0


LATER = {"site_id": "E2", "reading_at": "2026-04-01T12:00:00Z", "register_kwh": 4}


def journal_ids(database) -> list[int]:
    with database.engine.connect() as conn:
        return list(conn.execute(text("SELECT id FROM ingest_journal ORDER BY id")).scalars())


def run_event(journal_id: int) -> dict:
    """Send an ingest event for `journal_id` to the worker; its result (the task keeps none in the backend)."""
    from lux.ingest.journal import journal_event
    from worker.tasks.ingest import process_events

    results = []

    def record(sender=None, result=None, **_):
        if sender.name == "lux.ingest.process_events" and sender.request.args[0]["journal_id"] == journal_id:
            results.append(result)

    task_success.connect(record, weak=False)
    try:
        process_events.delay(journal_event(f"burst-{journal_id}", journal_id, {}))
        deadline = time.monotonic() + 30
        while not results and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        task_success.disconnect(record)
    assert results, "the event did not run"
    return results[0]


def four_batches(settings) -> None:
    """Four journal entries, as four requests of a burst leave them (their events not sent)."""
    from lux.db import Database
    from lux.ingest import ingest_json

    db = Database(settings)
    for number, row in enumerate([*BATCH, LATER]):
        ingest_json(db, json.dumps([row]).encode(), replace=False, request_id=f"burst-{number}")
    db.engine.dispose()


def test_what_an_ended_burst_left_is_spread_over_the_compute_workers(settings, sites, celery_worker, database,
                                                                      monkeypatch):
    """An event takes its entry and the oldest other; once no entry came for BURST_QUIET_S, it spreads the two left
    (E1's and E2's) as the sweep would: two `lux.compute.sweep_part` recomputes, then one fleet refresh for
    everything owed."""
    from lux.compute import modes
    from worker.app import celery_app

    monkeypatch.setattr(modes, "SWEEP_SPLIT_MIN_SITES", 2)  # the worker thread reads them from this module
    monkeypatch.setattr(modes, "BURST_QUIET_S", 0.0)
    four_batches(settings)
    result = run_event(journal_ids(database)[-1])
    assert result["claimed"] == 2 and len(result["spread"]) == 2
    refresh = celery_app.AsyncResult(result["fleet_task_id"]).get(timeout=60)
    assert refresh["requests"] == 3  # the event's recompute and both shares
    assert dirty(database) == {}
    assert computed_days(database) == {"E1": ["2026-03-28", "2026-03-29"], "E2": ["2026-03-31", "2026-04-01"]}
    with database.engine.connect() as conn:
        runs = conn.execute(text("SELECT task, outcome FROM compute_runs")).all()
    assert sorted(runs) == [("lux.compute.fleet_refresh", "success"), ("lux.compute.sweep_part", "success"),
                            ("lux.compute.sweep_part", "success"), ("lux.ingest.process_events", "success")]


def test_a_burst_still_arriving_stays_with_the_events(settings, sites, celery_worker, database, monkeypatch):
    """While entries keep coming (the newest is younger than BURST_QUIET_S), an event takes its two entries and
    leaves the rest to the next events: nothing is spread."""
    from lux.compute import modes

    monkeypatch.setattr(modes, "SWEEP_SPLIT_MIN_SITES", 2)
    monkeypatch.setattr(modes, "BURST_QUIET_S", 3600.0)
    four_batches(settings)
    ids = journal_ids(database)
    result = run_event(ids[-1])
    assert result["claimed"] == 2 and "spread" not in result
    assert journal_ids(database) == ids[1:3]  # the oldest went with the event's own; the two between wait
    with database.engine.connect() as conn:
        runs = conn.execute(text("SELECT task FROM compute_runs")).scalars().all()
    assert runs == ["lux.ingest.process_events"]


def test_an_entry_recomputing_many_sites_from_their_first_day_is_spread_over_the_compute_workers(
        settings, sites, celery_worker, database, monkeypatch):
    """A site edit that changed many sites (`mark_dirty`'s entry, every site from its first day) is split by class of
    sites into `sweep_part` recomputes, then one fleet refresh, instead of one recompute on the event process; an
    ingest's entry naming as many sites, and a history entry naming fewer, are the event's own as before."""
    from lux.compute import modes
    from lux.db import Database
    from lux.ingest import ingest_json
    from lux.ingest.journal import mark_dirty
    from worker.app import celery_app

    monkeypatch.setattr(modes, "SWEEP_SPLIT_MIN_SITES", 2)  # the worker thread reads it from this module
    db = Database(settings)
    ingest_json(db, json.dumps(BATCH).encode(), replace=False, request_id="batch")
    db.engine.dispose()
    ingested = run_event(journal_ids(database)[0])
    assert ingested["claimed"] == 2 and "spread" not in ingested
    with database.session_scope() as session:
        one = mark_dirty(session, [sites["E1"]], reason="sites-import")
    assert run_event(one)["claimed"] == 1
    with database.session_scope() as session:
        both = mark_dirty(session, list(sites.values()), reason="sites-import")
    result = run_event(both)
    assert result["claimed"] == 0 and len(result["spread"]) == 2
    refresh = celery_app.AsyncResult(result["fleet_task_id"]).get(timeout=60)
    assert refresh["requests"] >= 2 and dirty(database) == {}  # both parts' (and any the first events owed)
    assert computed_days(database) == {"E1": ["2026-03-28", "2026-03-29"], "E2": ["2026-03-31"]}
    with database.engine.connect() as conn:
        runs = conn.execute(text("SELECT task, sites FROM compute_runs WHERE outcome = 'success' "
                                 "AND task <> 'lux.compute.fleet_refresh' ORDER BY id")).all()
    assert runs == [("lux.ingest.process_events", 2), ("lux.ingest.process_events", 1),
                    ("lux.compute.sweep_part", 1), ("lux.compute.sweep_part", 1)]


def test_later_batches_move_the_dirty_day_back_only(sites, database, settings):
    from lux.db import Database
    from lux.ingest import ingest_json

    db = Database(settings)
    ingest_json(db, b'[{"site_id": "E1", "reading_at": "2026-05-10T12:00:00Z", "register_kwh": 5}]',
                replace=False, request_id="a")
    ingest_json(db, b'[{"site_id": "E1", "reading_at": "2026-05-12T12:00:00Z", "register_kwh": 6}]',
                replace=False, request_id="b")
    assert dirty(database) == {sites["E1"]: "2026-05-10"}
    ingest_json(db, b'[{"site_id": "E1", "reading_at": "2026-05-01T12:00:00Z", "register_kwh": 1}]',
                replace=False, request_id="c")
    assert dirty(database) == {sites["E1"]: "2026-05-01"}
    with database.engine.begin() as conn:
        conn.execute(text("DELETE FROM ingest_journal"))
    outcome = ingest_json(db, b'[{"site_id": "E1", "reading_at": "2026-05-01T12:00:00Z", "register_kwh": 1}]',
                          replace=False, request_id="d")
    assert outcome.duplicate == 1 and dirty(database) == {}  # a replay makes nothing dirty
    db.engine.dispose()


def test_a_new_reading_shows_in_the_status_through_the_status_queue(client, auth, sites, celery_worker, database):
    """The status queue's task takes the journal entries since the last follow and writes their sites' statuses,
    with no recompute; and it waits for none: while a run holds E1's status row (it has written E1's status and not
    committed), the follow keeps E1 for the next one and sends it, and once the row is free E1's status shows the new
    reading (written by a later follow)."""
    from lux.compute import modes
    from lux.ingest.journal import mark_dirty
    from worker.tasks.status import follow

    client.post("/api/v1/readings", json=BATCH[:2], headers=auth("ingest"))
    deadline = time.monotonic() + 30
    while dirty(database) and time.monotonic() < deadline:  # its recompute must not take the entry written below
        time.sleep(0.05)
    modes.run_explicit(database, task="test", task_id=None, site_pks=list(sites.values()))  # E1's last day: the 29th
    followed = []

    def record(sender=None, result=None, **_):
        if sender.name == "lux.status.follow":
            followed.append(result)

    def wait_for(condition, what: str, after: int = 0):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if found := [result for result in followed[after:] if condition(result)]:
                return found[0]
            time.sleep(0.05)
        raise AssertionError(f"no follow task {what}: {followed}")

    def e1_status() -> tuple:
        with database.engine.connect() as conn:
            return conn.execute(text("SELECT last_reading_at, last_register_kwh, signal_level, status FROM site_status "
                                     "WHERE site_pk = :pk"), {"pk": sites["E1"]}).one()

    task_success.connect(record, weak=False)
    try:
        with database.session_scope() as session:  # a reading and its journal entry, with no ingest event
            session.execute(text("INSERT INTO readings (site_pk, reading_at, register_kwh, signal_level) "
                                 "VALUES (:pk, '2026-03-30T19:00:00Z', 5, 17)"), {"pk": sites["E1"]})
            mark_dirty(session, [sites["E1"]], reason="test", from_day=dt.date(2026, 3, 30))
        follow.delay()
        wait_for(lambda result: result["written"] == 1, "writing E1")
        assert e1_status()[:3] == (dt.datetime(2026, 3, 30, 19, tzinfo=dt.UTC), 5.0, 17)

        with database.engine.connect() as holder:  # a run writing E1's status
            holder.execute(text("SELECT 1 FROM site_status WHERE site_pk = :pk FOR NO KEY UPDATE"), {"pk": sites["E1"]})
            answer = client.post("/api/v1/readings", headers=auth("ingest"), json=[
                {"site_id": "E1", "reading_at": "2026-03-31T19:00:00Z", "register_kwh": 7, "signal_level": 12}])
            assert answer.get_json()["event"] == "queued"
            assert wait_for(lambda result: result["held"], "finding E1 held") == {"sites": 1, "written": 0, "held": 1}
            time.sleep(1)  # the follows it sends meanwhile find E1 held again
            assert followed[-1]["held"] == 1 and e1_status()[0] == dt.datetime(2026, 3, 30, 19, tzinfo=dt.UTC)
            seen = len(followed)
            holder.rollback()
        wait_for(lambda result: result["sites"] == 1 and result["held"] == 0, "taking E1 once free", seen)
    finally:
        task_success.disconnect(record)
    assert e1_status()[:3] == (dt.datetime(2026, 3, 31, 19, tzinfo=dt.UTC), 7.0, 12)


def test_one_follow_waits_at_a_time_however_many_batches_commit(client, auth, sites, celery_app, database):
    """A batch whose sites' statuses it continued itself sends no follow. One that leaves sites to follow (a run holds
    their status rows) sends one unless one is pending (each still sends its event); a follow clears the mark before
    it takes the journal entries, so the batch after it sends one again. The mark expires by itself."""
    from celery.signals import after_task_publish

    from lux.compute import modes
    from worker.tasks.status import PENDING_KEY, PENDING_TTL_S, follow, follow_wanted

    broker = celery_app.backend.client
    published = []

    def record(sender=None, **_):
        published.append(sender)

    def post(day: int) -> None:
        answer = client.post("/api/v1/readings", headers=auth("ingest"), json=[
            {"site_id": "E2", "reading_at": f"2026-04-{day:02d}T19:00:00Z", "register_kwh": day}])
        assert answer.get_json()["event"] == "queued"

    with database.engine.begin() as conn:  # statuses to continue, with no journal entry for a recompute to take
        conn.execute(text("INSERT INTO readings (site_pk, reading_at, register_kwh) "
                          "VALUES (:pk, '2026-03-31T19:00Z', 0)"), {"pk": sites["E2"]})
    modes.run_explicit(database, task="test", task_id=None, site_pks=[sites["E2"]])
    broker.delete(PENDING_KEY)
    assert follow_wanted(broker) and not follow_wanted(broker)
    assert 0 < broker.ttl(PENDING_KEY) <= PENDING_TTL_S
    broker.delete(PENDING_KEY)
    after_task_publish.connect(record, weak=False)
    try:
        post(1)  # E2's status continued by the ingest: nothing left to follow
        assert published.count("lux.status.follow") == 0 and not broker.exists(PENDING_KEY)
        with database.engine.connect() as holder:  # a run writing E2's status
            holder.execute(text("SELECT 1 FROM site_status WHERE site_pk = :pk FOR NO KEY UPDATE"), {"pk": sites["E2"]})
            published.clear()
            broker.set(PENDING_KEY, 1, ex=60)
            for day in (2, 3, 4):
                post(day)
            assert published.count("lux.status.follow") == 0 and published.count("lux.ingest.process_events") == 3
            assert follow.apply().result["held"] == 1  # the task's body, here: E2 is still held
            # it cleared the mark and set it again to send the next follow itself, for the site a run held
            assert broker.exists(PENDING_KEY) and published.count("lux.status.follow") == 1
            broker.delete(PENDING_KEY)
            post(5)
            assert published.count("lux.status.follow") == 2
    finally:
        after_task_publish.disconnect(record)
        broker.delete(PENDING_KEY)


def test_a_follow_that_could_not_be_sent_leaves_no_mark_behind(settings, celery_app):
    """The follow mark is set before the follow is sent: when the broker refuses the send, the mark is cleared, so the
    next batch that leaves sites to follow sends one at once instead of waiting for the mark to expire."""
    import kombu

    from api.events import emit_ingest_event
    from worker.tasks.status import PENDING_KEY

    broker = celery_app.backend.client
    broker.delete(PENDING_KEY)
    app = create_app(settings)
    app.extensions["lux_broker"] = kombu.Connection(  # the marks' Redis is up, the broker is not
        f"redis://127.0.0.1:{free_port()}/0", connect_timeout=1,
        transport_options={"socket_connect_timeout": 1, "max_retries": 0}).Pool(limit=1)
    event = {"request_id": "r-1", "journal_id": 1, "sites_by_day": {"2026-04-01": [1]}}
    with app.app_context():
        assert emit_ingest_event(event, follow_left=True) == "deferred"
    assert not broker.exists(PENDING_KEY)
