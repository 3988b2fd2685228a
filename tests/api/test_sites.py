"""Site registry over HTTP: validation per SPEC §2, pagination, filters, bulk import."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select, text

from models import Site

THREADS, ROUNDS = 8, 5

SITE = {
    "site_id": "SITE-1", "name": "Rose Farm", "postcode": "ex1 1aa", "region": "South West",
    "latitude": 50.72, "longitude": -3.53, "capacity_kwp": 4.2, "install_date": "2021-05-01",
}


def create(client, headers, **overrides):
    return client.post("/api/v1/sites", json={**SITE, **overrides}, headers=headers)


def test_create_then_get_normalises_postcode(client, auth):
    admin = auth("admin", "read")
    response = create(client, admin)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["postcode"] == "EX1 1AA"
    got = client.get("/api/v1/sites/SITE-1", headers=admin).get_json()
    assert got["capacity_kwp"] == 4.2 and got["install_date"] == "2021-05-01" and got["active"] is True


def test_duplicate_site_id_is_409(client, auth):
    admin = auth("admin")
    assert create(client, admin).status_code == 201
    response = create(client, admin)
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "conflict"


def test_legacy_region_tbc_means_unknown(client, auth):
    response = create(client, auth("admin"), region="TBC")
    assert response.status_code == 201 and response.get_json()["region"] is None


def test_validation_names_each_bad_field(client, auth):
    response = create(client, auth("admin"), site_id="x" * 65, postcode="NOT A CODE", region="Atlantis",
                      latitude=91, capacity_kwp=0)
    assert response.status_code == 422
    fields = response.get_json()["error"]["details"]["json"]
    assert set(fields) == {"site_id", "postcode", "region", "latitude", "capacity_kwp"}


def test_site_id_with_a_trailing_newline_is_422_not_500(client, auth):
    response = create(client, auth("admin"), site_id="SITE-1\n")
    assert response.status_code == 422 and "site_id" in response.get_json()["error"]["details"]["json"]


def test_missing_required_fields_are_422(client, auth):
    response = client.post("/api/v1/sites", json={"site_id": "A"}, headers=auth("admin"))
    assert response.status_code == 422
    assert set(response.get_json()["error"]["details"]["json"]) == {"name", "capacity_kwp"}


def test_writes_need_admin_scope(client, auth):
    assert create(client, auth("read")).status_code == 403


def test_get_unknown_site_is_404(client, auth):
    response = client.get("/api/v1/sites/NOPE", headers=auth("read"))
    assert response.status_code == 404 and "NOPE" in response.get_json()["error"]["message"]


def test_patch_changes_only_given_fields(client, auth):
    admin = auth("admin")
    create(client, admin)
    response = client.patch("/api/v1/sites/SITE-1", json={"capacity_kwp": 5.5}, headers=admin)
    assert response.status_code == 200
    body = response.get_json()
    assert body["capacity_kwp"] == 5.5 and body["name"] == "Rose Farm" and body["region"] == "South West"
    bad = client.patch("/api/v1/sites/SITE-1", json={"site_id": "OTHER"}, headers=admin)
    assert bad.status_code == 422


def test_delete_deactivates_and_keeps_the_site(client, auth, database):
    admin = auth("admin", "read")
    create(client, admin)
    response = client.delete("/api/v1/sites/SITE-1", headers=admin)
    assert response.status_code == 200 and response.get_json()["active"] is False
    assert client.get("/api/v1/sites/SITE-1", headers=admin).get_json()["active"] is False


def test_list_filters_and_paginates(client, auth):
    admin = auth("admin", "read")
    for i in range(5):
        create(client, admin, site_id=f"S{i}", region="London" if i % 2 else "Wales")
    create(client, admin, site_id="S9", region=None)
    client.delete("/api/v1/sites/S1", headers=admin)
    page = client.get("/api/v1/sites?limit=2&offset=1", headers=admin).get_json()
    assert [s["site_id"] for s in page["items"]] == ["S1", "S2"]
    assert (page["total"], page["limit"], page["offset"]) == (6, 2, 1)
    london = client.get("/api/v1/sites?region=London&active=true", headers=admin).get_json()
    assert [s["site_id"] for s in london["items"]] == ["S3"]
    unknown = client.get("/api/v1/sites?region=unknown", headers=admin).get_json()
    assert [s["site_id"] for s in unknown["items"]] == ["S9"]


def test_page_size_is_capped_at_1000(client, auth):
    response = client.get("/api/v1/sites?limit=1001", headers=auth("read"))
    assert response.status_code == 422 and "limit" in response.get_json()["error"]["details"]["query"]


def test_json_import_creates_updates_and_is_idempotent(client, auth):
    admin = auth("admin", "read")
    rows = [{**SITE, "site_id": f"IMP-{i}", "capacity_kwp": 2 + i} for i in range(3)]
    first = client.post("/api/v1/sites/import", json=rows, headers=admin)
    assert first.get_json() == {"created": 3, "updated": 0, "unchanged": 0}
    again = client.post("/api/v1/sites/import", json=rows, headers=admin)
    assert again.get_json() == {"created": 0, "updated": 0, "unchanged": 3}
    rows[1]["capacity_kwp"] = 9.5
    changed = client.post("/api/v1/sites/import", json=rows, headers=admin)
    assert changed.get_json() == {"created": 0, "updated": 1, "unchanged": 2}
    assert client.get("/api/v1/sites/IMP-1", headers=admin).get_json()["capacity_kwp"] == 9.5


def test_csv_import_validates_like_json(client, auth, database):
    admin = auth("admin", "read")
    csv_body = (
        "site_id,name,postcode,region,latitude,longitude,capacity_kwp,install_date,active\n"
        "CSV-1,North Barn,M1 1AE,North West,53.48,-2.24,3.1,2020-01-01,true\n"
        "CSV-2,South Barn,,TBC,,,2.5,,false\n"
    )
    response = client.post("/api/v1/sites/import", data=csv_body, content_type="text/csv", headers=admin)
    assert response.get_json() == {"created": 2, "updated": 0, "unchanged": 0}
    second = client.get("/api/v1/sites/CSV-2", headers=admin).get_json()
    assert second["region"] is None and second["postcode"] is None and second["active"] is False


def test_import_with_a_bad_row_writes_nothing_and_names_the_row(client, auth, database):
    rows = [{**SITE, "site_id": "OK-1"}, {**SITE, "site_id": "BAD-1", "capacity_kwp": "lots"}]
    response = client.post("/api/v1/sites/import", json=rows, headers=auth("admin"))
    assert response.status_code == 422
    assert response.get_json()["error"]["details"]["rows"] == {"1": {"capacity_kwp": ["Not a valid number."]}}
    with database.session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Site)) == 0


def test_import_rejects_duplicate_ids_empty_bodies_and_other_media(client, auth):
    admin = auth("admin")
    dup = client.post("/api/v1/sites/import", json=[SITE, SITE], headers=admin)
    assert dup.status_code == 422 and "1" in dup.get_json()["error"]["details"]["rows"]
    assert client.post("/api/v1/sites/import", json=[], headers=admin).status_code == 400
    assert client.post("/api/v1/sites/import", json={"a": 1}, headers=admin).status_code == 400
    other = client.post("/api/v1/sites/import", data="x", content_type="text/plain", headers=admin)
    assert other.status_code == 415 and other.get_json()["error"]["code"] == "unsupported_media_type"


def test_the_same_site_posted_at_once_is_created_once_and_the_others_get_409(app, auth, database):
    """Concurrent registrations of one site_id race between the existence check and the insert: exactly one is
    created, every other answer is the 409 of a taken site_id, never a 500 from the unique key."""
    headers = auth("admin")
    start = threading.Barrier(THREADS)

    def register(n: int) -> int:
        client = app.test_client()
        start.wait()
        return client.post("/api/v1/sites", json={**SITE, "name": f"Rose {n}"}, headers=headers).status_code

    for _ in range(ROUNDS):
        with ThreadPoolExecutor(THREADS) as pool:
            statuses = sorted(pool.map(register, range(THREADS)))
        assert statuses == [201] + [409] * (THREADS - 1)
        with database.engine.begin() as conn:
            assert conn.execute(select(func.count()).select_from(Site)).scalar_one() == 1
            conn.execute(Site.__table__.delete())


def test_imports_of_the_same_sites_in_other_orders_at_once_all_succeed(app, auth):
    """Upserts of overlapping sites lock them in site_id order whatever the order of each import, so concurrent
    imports wait for each other instead of deadlocking (a 500)."""
    headers = auth("admin")
    rows = [{**SITE, "site_id": f"IMP-{n:04d}", "name": f"Imported {n}"} for n in range(300)]
    start = threading.Barrier(THREADS)

    def send(n: int) -> int:
        client = app.test_client()
        ordered = rows[::-1] if n % 2 else rows
        start.wait()
        return client.post("/api/v1/sites/import", json=[{**row, "capacity_kwp": 1 + n} for row in ordered],
                           headers=headers).status_code

    for _ in range(ROUNDS):
        with ThreadPoolExecutor(THREADS) as pool:
            assert list(pool.map(send, range(THREADS))) == [200] * THREADS


def journalled(database) -> list[tuple[str, list[str]]]:
    """(reason, site_ids) of each journal entry, oldest first."""
    with database.engine.connect() as conn:
        return [(reason, sorted(site_ids)) for reason, site_ids in conn.execute(text(
            "SELECT j.request_id, array_agg(s.site_id) FROM ingest_journal j JOIN sites s ON s.id = ANY(j.site_pks) "
            "GROUP BY j.id ORDER BY j.id")).all()]


def test_a_new_region_capacity_or_activity_journals_the_site_for_its_recompute(client, auth, database,
                                                                              worker_paused):
    """What results are computed from (region, capacity, active) journals the site; other fields journal nothing."""
    admin = auth("admin")
    assert create(client, admin).status_code == 201
    assert create(client, admin, site_id="SITE-2").status_code == 201
    for fields in ({"name": "Renamed", "postcode": "SW1A 1AA"}, {"region": "South West", "capacity_kwp": 4.2}):
        assert client.patch("/api/v1/sites/SITE-1", json=fields, headers=admin).status_code == 200
    assert journalled(database) == []  # other fields, or the same values
    assert client.patch("/api/v1/sites/SITE-1", json={"capacity_kwp": 5}, headers=admin).status_code == 200
    assert client.patch("/api/v1/sites/SITE-1", json={"region": "London"}, headers=admin).status_code == 200
    assert client.delete("/api/v1/sites/SITE-1", headers=admin).status_code == 200
    assert client.delete("/api/v1/sites/SITE-1", headers=admin).status_code == 200  # already inactive
    rows = [{**SITE, "site_id": "SITE-1", "region": "London", "capacity_kwp": 5, "active": False},  # a new name
            {**SITE, "site_id": "SITE-2", "capacity_kwp": 3}, {**SITE, "site_id": "SITE-3"}]  # a new capacity, new
    assert client.post("/api/v1/sites/import", json=rows, headers=admin).get_json() == {
        "created": 1, "updated": 2, "unchanged": 0}
    entries = journalled(database)
    assert [site_ids for _, site_ids in entries] == [["SITE-1"]] * 3 + [["SITE-2"]]
    assert entries[-1][0] == "sites-import"


def test_a_site_given_a_new_capacity_and_region_has_its_results_recomputed_by_a_worker(client, auth, database,
                                                                                       celery_worker):
    """10 kWh a day is no spike for 4 kWp (at most 8 kWh/kWp a day) but is for 1 kWp; the June rollups move from
    the site's old region to its new one."""
    admin = auth("admin")
    assert create(client, admin, site_id="CAP", capacity_kwp=4, region="Wales").status_code == 201
    with database.engine.begin() as conn:
        conn.execute(text("""
            INSERT INTO readings (site_pk, reading_at, register_kwh)
            SELECT s.id, d + time '19:00', 10 * extract(day FROM d) FROM sites s,
                   generate_series(date '2026-06-01', date '2026-06-30', interval '1 day') d"""))
    assert client.patch("/api/v1/sites/CAP", json={"name": "Cap"}, headers=admin).status_code == 200
    assert client.patch("/api/v1/sites/CAP", json={"capacity_kwp": 1, "region": "London"},
                        headers=admin).status_code == 200

    def recomputed():
        with database.engine.connect() as conn:
            spikes = conn.execute(text("SELECT count(*) FROM anomalies WHERE type = 'spike'")).scalar_one()
            areas = conn.execute(text(
                "SELECT array_agg(area ORDER BY area) FROM daily_rollups WHERE day = '2026-06-10'")).scalar_one()
        return spikes, areas

    deadline = time.monotonic() + 60
    while recomputed() != (1, ["London", "fleet"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert recomputed() == (1, ["London", "fleet"])


def test_csv_import_reads_any_line_end_and_an_unreadable_body_is_400(client, auth):
    admin = auth("admin", "read")
    body = "site_id,name,capacity_kwp\rCR-1,One,2\r\nCR-2,Two,3\n"  # old Mac, Windows and Unix line ends
    response = client.post("/api/v1/sites/import", data=body, content_type="text/csv", headers=admin)
    assert response.get_json() == {"created": 2, "updated": 0, "unchanged": 0}
    huge = "site_id,name,capacity_kwp\nX," + "n" * 200_000 + ",2\n"  # beyond csv's field limit
    response = client.post("/api/v1/sites/import", data=huge, content_type="text/csv", headers=admin)
    assert response.status_code == 400 and response.get_json()["error"]["message"].startswith("Malformed CSV body")
