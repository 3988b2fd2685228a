"""Ingest under concurrency and with PostgreSQL down."""

import datetime as dt
import threading

import psycopg
from sqlalchemy import text

from api import create_app
from lux.db import Database
from lux.embedded import EmbeddedPostgres
from lux.migrate import upgrade
from tests.conftest import free_port

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def batch(n: int, sites: int = 20) -> list[dict]:
    return [{"site_id": f"C{i % sites}", "reading_at": (START + dt.timedelta(hours=i // sites)).isoformat(),
             "register_kwh": float(i)} for i in range(n)]


def post_concurrently(app, headers, bodies):
    answers = [None] * len(bodies)
    barrier = threading.Barrier(len(bodies))

    def send(position):
        client = app.test_client()
        barrier.wait()
        answers[position] = client.post("/api/v1/readings", json=bodies[position], headers=headers).get_json()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return answers


def test_same_batch_from_concurrent_clients_is_stored_once(app, auth, database):
    with database.engine.begin() as conn:
        conn.execute(text("INSERT INTO sites (site_id, name, capacity_kwp) "
                          "SELECT 'C' || g, 'c', 3 FROM generate_series(0, 19) g"))
    rows = batch(4000)
    answers = post_concurrently(app, auth("ingest"), [rows, rows, rows[::-1]])
    assert sum(a["accepted"] for a in answers) == 4000
    assert sum(a["duplicate"] for a in answers) == 8000
    assert all(a["conflict"] == 0 and a["rejected"] == 0 for a in answers)
    with database.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*), sum(register_kwh) FROM readings")).one() == (4000, sum(range(4000)))


def test_postgres_down_is_503_and_nothing_is_stored(settings, tmp_path):
    server = EmbeddedPostgres(tmp_path / "pg", free_port())
    server.start()
    try:
        down_settings = settings.with_changes(database_url=server.url())
        database = Database(down_settings)
        upgrade(database.engine)
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute("INSERT INTO sites (site_id, name, capacity_kwp) VALUES ('C0', 'c', 3)")
            conn.execute("INSERT INTO api_clients (name, token_hash, token_prefix, scopes) VALUES "
                         "('t', encode(sha256('lux_t'::bytea), 'hex'), 'lux_t', '{ingest}')")
        app = create_app(down_settings)
        client = app.test_client()
        headers = {"Authorization": "Bearer lux_t"}
        assert client.post("/api/v1/readings", json=batch(1, 1), headers=headers).status_code == 200
        server.stop()
        response = client.post("/api/v1/readings", json=batch(10, 1)[1:], headers=headers)
        assert response.status_code == 503
        assert response.get_json()["error"]["code"] == "service_unavailable"
        server.start()
        with psycopg.connect(server.url()) as conn:
            assert conn.execute("SELECT count(*) FROM readings").fetchone() == (1,)
        retry = client.post("/api/v1/readings", json=batch(10, 1)[1:], headers=headers)
        assert retry.status_code == 200 and retry.get_json()["accepted"] == 9
        database.engine.dispose()
        app.extensions["lux_database"].engine.dispose()
    finally:
        server.stop()


def test_overlapping_batches_in_different_orders_never_deadlock(app, auth, database):
    import random

    with database.engine.begin() as conn:
        conn.execute(text("INSERT INTO sites (site_id, name, capacity_kwp) "
                          "SELECT 'C' || g, 'c', 3 FROM generate_series(0, 19) g"))
    rows = batch(3000)
    bodies = []
    for seed in range(4):
        part = rows[seed * 500:seed * 500 + 1500]  # each overlaps its neighbours
        random.Random(seed).shuffle(part)
        bodies.append(part)
    answers = post_concurrently(app, auth("ingest"), bodies)
    assert all("accepted" in a for a in answers), answers
    assert sum(a["accepted"] for a in answers) == 3000
    assert sum(a["accepted"] + a["duplicate"] for a in answers) == 6000
    with database.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM readings")).scalar_one() == 3000
