"""The per-process site-key cache never hands out a key that changed, and always finds new sites."""

from sqlalchemy import text

from lux.ingest import ingest_json

BODY = b'[{"site_id": "%s", "reading_at": "2026-05-01T12:00:00Z", "register_kwh": 1}]'


def stored_site_pks(database) -> list[int]:
    with database.engine.connect() as conn:
        return conn.execute(text("SELECT site_pk FROM readings ORDER BY site_pk")).scalars().all()


def test_truncated_and_reused_keys_are_not_served_from_the_cache(database):
    with database.engine.begin() as conn:
        conn.execute(text("INSERT INTO sites (site_id, name, capacity_kwp) VALUES ('K-A', 'a', 3)"))
    assert ingest_json(database, BODY % b"K-A", replace=False, request_id="1").accepted == 1
    assert stored_site_pks(database) == [1]
    with database.engine.begin() as conn:
        conn.execute(text("TRUNCATE sites, readings RESTART IDENTITY CASCADE"))
        conn.execute(text("INSERT INTO sites (site_id, name, capacity_kwp) VALUES ('K-B', 'b', 3), ('K-A', 'a', 3)"))
    assert ingest_json(database, BODY % b"K-A", replace=False, request_id="2").accepted == 1
    assert stored_site_pks(database) == [2]  # K-A's key is now 2; a stale cache would have written 1


def test_a_site_registered_after_the_cache_filled_is_found(database):
    with database.engine.begin() as conn:
        conn.execute(text("INSERT INTO sites (site_id, name, capacity_kwp) VALUES ('K-A', 'a', 3)"))
    ingest_json(database, BODY % b"K-A", replace=False, request_id="1")
    assert ingest_json(database, BODY % b"K-C", replace=False, request_id="2").rejected[0][1].reason == "unknown_site"
    with database.engine.begin() as conn:
        conn.execute(text("INSERT INTO sites (site_id, name, capacity_kwp) VALUES ('K-C', 'c', 3)"))
    assert ingest_json(database, BODY % b"K-C", replace=False, request_id="3").accepted == 1
