"""POST /api/v1/readings: every outcome and error of SPEC §3, against the real database."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

SITES = ("S1", "S2")


@pytest.fixture
def ingest(client, auth, database):
    with database.engine.begin() as conn:
        for site in SITES:
            conn.execute(text("INSERT INTO sites (site_id, name, capacity_kwp) VALUES (:s, :n, 4)"),
                         {"s": site, "n": site})
    headers = auth("ingest")

    def post(rows, on_conflict=None, **kwargs):
        url = "/api/v1/readings" + (f"?on_conflict={on_conflict}" if on_conflict else "")
        return client.post(url, json=rows, headers=headers, **kwargs)

    return post


def reading(site="S1", at="2026-06-01T21:00:00+00:00", kwh=100.0, **extra):
    return {"site_id": site, "reading_at": at, "register_kwh": kwh, **extra}


def stored(database):
    with database.engine.connect() as conn:
        return conn.execute(text(
            "SELECT s.site_id, r.reading_at, r.register_kwh, r.signal_level, r.network, r.meter_serial "
            "FROM readings r JOIN sites s ON s.id = r.site_pk ORDER BY 1, 2")).all()


def counts(body):
    return {k: body[k] for k in ("received", "accepted", "duplicate", "conflict", "replaced", "rejected")}


def test_new_rows_are_accepted_and_stored(ingest, database):
    body = ingest([reading(), reading("S2", kwh=5, signal_level=17, network="EE", meter_serial="M1")]).get_json()
    assert counts(body) == dict(received=2, accepted=2, duplicate=0, conflict=0, replaced=0, rejected=0)
    assert body["rejects"] == [] and body["conflicts"] == []
    rows = stored(database)
    assert [(r[0], r[2], r[3], r[4], r[5]) for r in rows] == [("S1", 100.0, None, None, None),
                                                             ("S2", 5.0, 17, "EE", "M1")]


def test_exact_replay_is_all_duplicates_and_changes_nothing(ingest, database):
    batch = [reading(kwh=1), reading(at="2026-06-02T21:00:00Z", kwh=2)]
    ingest(batch)
    before = stored(database)
    body = ingest(batch).get_json()
    assert counts(body) == dict(received=2, accepted=0, duplicate=2, conflict=0, replaced=0, rejected=0)
    assert stored(database) == before


def test_conflicting_duplicate_is_reported_not_applied(ingest, database):
    ingest([reading(kwh=1)])
    body = ingest([reading(kwh=2), reading(at="2026-06-03T21:00:00Z", kwh=3)]).get_json()
    assert counts(body)["conflict"] == 1 and counts(body)["accepted"] == 1
    assert body["conflicts"] == [{"index": 0, "field": "register_kwh", "applied": False,
                                  "message": "Differs from the stored reading in this field. "
                                             "Send on_conflict=replace to apply it."}]
    assert stored(database)[0][2] == 1.0


def test_replace_applies_corrections_and_leaves_duplicates(ingest, database):
    ingest([reading(kwh=1, network="EE"), reading(at="2026-06-02T21:00:00Z", kwh=2)])
    body = ingest([reading(kwh=1, network="O2"), reading(at="2026-06-02T21:00:00Z", kwh=2),
                   reading(at="2026-06-03T21:00:00Z", kwh=3)], on_conflict="replace").get_json()
    assert counts(body) == dict(received=3, accepted=1, duplicate=1, conflict=0, replaced=1, rejected=0)
    assert body["conflicts"][0] | {"message": None} == {"index": 0, "field": "network", "applied": True,
                                                      "message": None}
    assert [r[4] for r in stored(database)] == ["O2", None, None]


def test_same_key_twice_in_one_batch_first_wins(ingest, database):
    body = ingest([reading(kwh=1), reading(kwh=1), reading(at="2026-06-01T22:00:00+01:00", kwh=9)],
                  on_conflict="replace").get_json()
    # the third row is the same instant written with another offset: a conflict of the first, not applied
    assert counts(body) == dict(received=3, accepted=1, duplicate=1, conflict=1, replaced=0, rejected=0)
    assert body["conflicts"][0]["index"] == 2 and body["conflicts"][0]["applied"] is False
    assert [r[2] for r in stored(database)] == [1.0]


def test_out_of_order_and_late_readings_are_accepted(ingest, database):
    ingest([reading(at="2026-06-10T21:00:00Z", kwh=10)])
    body = ingest([reading(at="2026-06-05T21:00:00Z", kwh=5), reading(at="2026-06-01T21:00:00Z", kwh=1)]).get_json()
    assert body["accepted"] == 2
    assert [r[2] for r in stored(database)] == [1.0, 5.0, 10.0]


@pytest.mark.parametrize(("row", "field", "reason"), [
    (reading(at="2026-06-01T21:00:00"), "reading_at", "no_utc_offset"),
    (reading(at="1999-12-31T23:59:59Z"), "reading_at", "before_2000"),
    (reading(at="2099-01-01T00:00:00Z"), "reading_at", "future"),
    (reading(at="yesterday"), "reading_at", "invalid_datetime"),
    (reading(kwh=-0.5), "register_kwh", "negative_register"),
    (reading(kwh="12.5"), "register_kwh", "invalid_number"),
    (reading(kwh="lots"), "register_kwh", "invalid_number"),
    (reading(kwh=True), "register_kwh", "invalid_number"),
    (reading(signal_level=45), "signal_level", "signal_range"),
    (reading(signal_level=12.5), "signal_level", "invalid_integer"),
    (reading(site="NOPE"), "site_id", "unknown_site"),
    (reading(site="bad id"), "site_id", "invalid_site_id"),
    ({"reading_at": "2026-06-01T21:00:00Z", "register_kwh": 1}, "site_id", "required"),
    (reading(network="x" * 65), "network", "too_long"),
    (reading(network="E\x00E"), "network", "nul_character"),
    (reading(meter_serial="\x00"), "meter_serial", "nul_character"),
    (reading(site="S\x001"), "site_id", "invalid_site_id"),
    ("not an object", None, "not_an_object"),
])
def test_bad_rows_are_rejected_with_a_reason_and_kept(ingest, database, row, field, reason):
    body = ingest([reading(at="2026-06-01T20:00:00Z"), row]).get_json()
    assert body["accepted"] == 1 and body["rejected"] == 1
    reject = body["rejects"][0]
    assert (reject["index"], reject["field"], reject["reason"]) == (1, field, reason)
    assert reject["message"]
    with database.engine.connect() as conn:
        kept = conn.execute(text("SELECT request_id, row_index, reason, raw FROM ingest_rejects")).one()
    assert kept.request_id == body["request_id"] and kept.row_index == 1 and kept.reason == reason
    assert kept.raw  # the row as received


def test_signal_99_means_unknown_and_is_stored_as_null(ingest, database):
    body = ingest([reading(signal_level=99)]).get_json()
    assert body["accepted"] == 1 and stored(database)[0][3] is None
    assert ingest([reading(signal_level=None)]).get_json()["duplicate"] == 1


def test_all_rows_of_a_large_batch_take_the_fast_path(ingest, database):
    start = dt.datetime(2026, 1, 1, 21, tzinfo=dt.UTC)
    rows = [reading(site=SITES[i % 2], at=(start + dt.timedelta(hours=i // 2)).isoformat(), kwh=i, signal_level=20)
            for i in range(2000)]
    assert ingest(rows).get_json()["accepted"] == 2000
    assert ingest(rows).get_json()["duplicate"] == 2000
    assert len(stored(database)) == 2000


def test_empty_malformed_and_wrong_type_bodies(ingest, client, auth):
    assert ingest([]).status_code == 400
    headers = auth("ingest")
    malformed = client.post("/api/v1/readings", data="[{", content_type="application/json", headers=headers)
    assert malformed.status_code == 400 and malformed.get_json()["error"]["code"] == "bad_request"
    not_array = client.post("/api/v1/readings", json={"site_id": "S1"}, headers=headers)
    assert not_array.status_code == 400
    # not readings (the typed decoder gives up), then not JSON either (NaN): the plain decoder's error is a 400 too
    not_json = client.post("/api/v1/readings", data="[1, NaN]", content_type="application/json", headers=headers)
    assert not_json.status_code == 400 and "Malformed JSON" in not_json.get_json()["error"]["message"]
    csv = client.post("/api/v1/readings", data="a,b", content_type="text/csv", headers=headers)
    assert csv.status_code == 415 and csv.get_json()["error"]["code"] == "unsupported_media_type"


def test_oversize_batch_is_413_with_the_limit(ingest):
    rows = [reading(at=f"2026-06-01T21:00:{i % 60:02d}Z") for i in range(50_001)]
    response = ingest(rows)
    assert response.status_code == 413
    assert "50000" in response.get_json()["error"]["message"]


def test_oversize_body_is_413_with_the_byte_limit(client, auth):
    body = b"[" + b" " * (32 * 1024 * 1024) + b"]"
    response = client.post("/api/v1/readings", data=body, content_type="application/json", headers=auth("ingest"))
    assert response.status_code == 413 and str(32 * 1024 * 1024) in response.get_json()["error"]["message"]


def test_token_needs_the_ingest_scope(client, auth):
    assert client.post("/api/v1/readings", json=[reading()]).status_code == 401
    assert client.post("/api/v1/readings", json=[reading()], headers=auth("read")).status_code == 403


def test_rejects_are_listed_with_filters(ingest, client, auth):
    ingest([reading(site="NOPE"), reading(kwh=-1)])
    ingest([reading(site="S2", at="2026-06-01T21:00:00")])
    headers = auth("read")
    everything = client.get("/api/v1/ingest/rejects", headers=headers).get_json()
    assert everything["total"] == 3
    assert [r["reason"] for r in everything["items"]] == ["no_utc_offset", "negative_register", "unknown_site"]
    by_site = client.get("/api/v1/ingest/rejects?site_id=S2", headers=headers).get_json()
    assert [r["reason"] for r in by_site["items"]] == ["no_utc_offset"]
    by_reason = client.get("/api/v1/ingest/rejects?reason=unknown_site&limit=1", headers=headers).get_json()
    assert by_reason["total"] == 1 and by_reason["items"][0]["site_id"] == "NOPE"
    today = dt.datetime.now(ZoneInfo("Europe/London")).date().isoformat()  # the fleet's day
    assert client.get(f"/api/v1/ingest/rejects?date={today}", headers=headers).get_json()["total"] == 3
    assert client.get("/api/v1/ingest/rejects?date=2001-01-01", headers=headers).get_json()["total"] == 0


def test_a_row_with_a_nul_is_kept_as_a_reject_beside_the_rows_stored(ingest, database):
    """PostgreSQL text cannot hold NUL: such a row is rejected (its raw JSON keeps the escape), the others stored."""
    body = ingest([reading(at="2026-06-01T20:00:00Z", network="EE"), reading(site="S\x001", network="E\x00E"),
                   reading(at="2026-06-02T20:00:00Z", meter_serial="M\x00")]).get_json()
    assert counts(body) == {"received": 3, "accepted": 1, "duplicate": 0, "conflict": 0, "replaced": 0, "rejected": 2}
    assert [(r["index"], r["field"], r["reason"]) for r in body["rejects"]] == [
        (1, "site_id", "invalid_site_id"), (2, "meter_serial", "nul_character")]
    with database.engine.connect() as conn:
        kept = conn.execute(text("SELECT row_index, site_id, raw FROM ingest_rejects ORDER BY row_index")).all()
    assert [(k.row_index, k.site_id) for k in kept] == [(1, None), (2, "S1")]  # a site_id with a NUL names none
    assert '"S\\u00001"' in kept[0].raw and '"M\\u0000"' in kept[1].raw
    assert [row[0] for row in stored(database)] == ["S1"]
