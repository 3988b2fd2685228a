"""Expected generation over HTTP: 12 values or a PVGIS PVcalc response, stored idempotently (SPEC §2)."""

import datetime as dt
import json
import time

import pytest
from sqlalchemy import func, select, text

from lux.compute import modes
from lux.expected import MAX_MONTHLY_KWH
from models import ExpectedGeneration
from tests.pvgis import pvcalc_response

URL = "/api/v1/sites/SITE-1/expected-generation"
MONTHLY = [95.0, 140.0, 250.5, 330.0, 390.0, 400.0, 395.0, 345.0, 270.0, 180.0, 110.0, 80.25]
SITE = {"site_id": "SITE-1", "name": "Rose Farm", "capacity_kwp": 4.2}


def pvgis_response(months=range(1, 13), energy=lambda month: MONTHLY[month - 1]) -> dict:
    return pvcalc_response([energy(month) for month in range(1, 13)], months)


@pytest.fixture
def admin(client, auth):
    headers = auth("admin", "read")
    assert client.post("/api/v1/sites", json=SITE, headers=headers).status_code == 201
    return headers


def put(client, headers, payload):
    return client.put(URL, json=payload, headers=headers)


def test_monthly_kwh_form_is_stored_as_manual(client, admin):
    response = put(client, admin, {"monthly_kwh": MONTHLY})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["site_id"] == "SITE-1" and body["source"] == "manual" and body["monthly_kwh"] == MONTHLY
    assert body["updated_at"]
    assert client.get(URL, headers=admin).get_json() == body


def test_bare_list_of_12_numbers_is_accepted(client, admin):
    response = put(client, admin, [int(v) for v in MONTHLY])
    assert response.status_code == 200
    assert response.get_json()["monthly_kwh"] == [float(int(v)) for v in MONTHLY]


def test_pvgis_response_is_stored_as_pvgis_in_month_order(client, admin, database):
    payload = pvgis_response(months=[7, 8, 9, 10, 11, 12, 1, 2, 3, 4, 5, 6])
    response = put(client, admin, payload)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["source"] == "pvgis" and response.get_json()["monthly_kwh"] == MONTHLY
    with database.session_scope() as session:
        rows = session.execute(select(ExpectedGeneration.month, ExpectedGeneration.expected_kwh)
                               .order_by(ExpectedGeneration.month)).all()
    assert [(row.month, row.expected_kwh) for row in rows] == list(enumerate(MONTHLY, start=1))


def test_pvgis_months_listed_directly_under_outputs_monthly(client, admin):
    payload = pvgis_response()
    payload["outputs"]["monthly"] = payload["outputs"]["monthly"]["fixed"]
    response = put(client, admin, payload)
    assert response.status_code == 200 and response.get_json()["monthly_kwh"] == MONTHLY


def test_re_put_is_idempotent_and_a_change_replaces_all_months(client, admin, database):
    first = put(client, admin, {"monthly_kwh": MONTHLY}).get_json()
    assert put(client, admin, {"monthly_kwh": MONTHLY}).get_json() == first  # updated_at unchanged too
    changed = put(client, admin, pvgis_response(energy=lambda month: 10.0 * month)).get_json()
    assert changed["source"] == "pvgis" and changed["monthly_kwh"] == [10.0 * m for m in range(1, 13)]
    assert changed["updated_at"] > first["updated_at"]
    with database.session_scope() as session:
        assert session.scalar(select(func.count()).select_from(ExpectedGeneration)) == 12


@pytest.mark.parametrize(("payload", "message"), [
    ({"outputs": {"totals": {}}}, "no outputs.monthly.fixed list"),
    ({"outputs": {"monthly": {"two_axis": []}}}, "no outputs.monthly.fixed (it has two_axis)"),
    ({"outputs": {"monthly": {"fixed": []}}}, "outputs.monthly.fixed is empty"),
    ({"outputs": {"monthly": {"fixed": [{"month": 1, "E_m": 5}] * 2}}},
     "outputs.monthly.fixed[1] repeats month 1 (first at outputs.monthly.fixed[0])"),
    ({"outputs": {"monthly": {"fixed": [{"month": 13, "E_m": 5}]}}},
     "outputs.monthly.fixed[0] has month 13, not an integer 1..12"),
    ({"outputs": {"monthly": {"fixed": [{"month": m, "E_m": 5} for m in range(1, 11)]}}},
     "outputs.monthly.fixed lacks month(s) 11, 12"),
    ({"monthly_kwh": MONTHLY[:11]}, "monthly_kwh must hold 12 values (January … December), got 11"),
    ({"monthly_kwh": "lots"}, "monthly_kwh must be a list of 12 numbers"),
    ({"monthly_kwh": [*MONTHLY[:11], -3]}, "monthly_kwh[11] (December) is negative (-3)"),
    ({"monthly_kwh": ["95", *MONTHLY[1:]]}, 'monthly_kwh[0] (January) is not a number: "95"'),
    ({"monthly_kwh": [*MONTHLY[:11], 1.7e308]},
     "monthly_kwh[11] (December) is more than 1000000000 kWh in a month (1.7e+308)"),
    ({"monthly_kwh": [*MONTHLY[:5], None, *MONTHLY[6:]]}, "monthly_kwh[5] (June) is missing"),
    ({"monthly_kwh": MONTHLY, "outputs": {}}, "either 'monthly_kwh' or a PVGIS 'outputs' object, not both"),
    ({"site": "SITE-1"}, "neither 'monthly_kwh' nor 'outputs'"),
    ("twelve", "or a PVGIS PVcalc JSON response, not a string"),
], ids=["no-monthly", "tracking-only", "empty", "duplicate-month", "month-13", "missing-months", "eleven-values",
        "not-a-list", "negative", "string-value", "beyond-the-bound", "null-value", "both-forms", "unknown-object",
        "string-body"])
def test_bad_content_is_422_with_the_parser_message(client, admin, payload, message):
    response = put(client, admin, payload)
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "validation_error" and message in error["message"], error
    assert client.get(URL, headers=admin).status_code == 404  # nothing stored


def test_the_largest_accepted_value_still_computes(client, admin, database):
    """The bound keeps the computation's float8 products and sums finite: PostgreSQL raises on an overflow, and a
    site's 1.7e308 kWh (a finite number ≥ 0, once accepted) failed every run that held the site."""
    assert put(client, admin, {"monthly_kwh": [MAX_MONTHLY_KWH] * 12}).status_code == 200
    with database.engine.begin() as conn:
        conn.execute(text("""
            INSERT INTO readings (site_pk, reading_at, register_kwh)
            SELECT s.id, d + time '19:00', 3e7 * extract(day FROM d) FROM sites s,
                   generate_series(date '2026-06-01', date '2026-06-30', interval '1 day') d"""))
    done = modes.run_explicit(database, task="test", task_id=None, as_of=dt.date(2026, 6, 30))
    assert done["sites"] == 1
    with database.engine.connect() as conn:
        expected, ratio = conn.execute(text("SELECT expected_kwh, ratio_pct FROM monthly_performance")).one()
        fleet = conn.execute(text(
            "SELECT sum(expected_kwh) FROM daily_rollups WHERE area = 'fleet' AND day <= '2026-06-30'")).scalar_one()
    assert expected == pytest.approx(29 / 30 * MAX_MONTHLY_KWH) and ratio == pytest.approx(100 * 29 * 3e7 / expected)
    assert fleet == pytest.approx(expected)


def test_pvgis_bad_e_m_values_are_all_named(client, admin):
    payload = pvgis_response()
    months = payload["outputs"]["monthly"]["fixed"]
    months[0]["E_m"] = -1.5
    months[1]["E_m"] = "n/a"
    del months[2]["E_m"]
    response = put(client, admin, payload)
    assert response.status_code == 422
    assert response.get_json()["error"]["details"]["problems"] == [
        "outputs.monthly.fixed[0].E_m (January) is negative (-1.5)",
        'outputs.monthly.fixed[1].E_m (February) is not a number: "n/a"',
        "outputs.monthly.fixed[2].E_m (March) is missing",
    ]


@pytest.mark.parametrize(("literal", "message"), [("NaN", "is NaN"), ("Infinity", "is infinite"),
                                                  ("1e400", "is infinite")])
def test_non_finite_values_are_422(client, admin, literal, message):
    body = json.dumps({"monthly_kwh": MONTHLY[:11]})[:-2] + f", {literal}]}}"
    response = client.put(URL, data=body, content_type="application/json", headers=admin)
    assert response.status_code == 422
    assert f"monthly_kwh[11] (December) {message}" in response.get_json()["error"]["message"]


def test_malformed_json_is_400(client, admin):
    response = client.put(URL, data='{"monthly_kwh": [1, 2', content_type="application/json", headers=admin)
    assert response.status_code == 400
    assert response.get_json()["error"]["message"].startswith("Malformed JSON body")


def test_non_json_body_is_415(client, admin):
    response = client.put(URL, data="1,2,3", content_type="text/csv", headers=admin)
    assert response.status_code == 415 and "application/json" in response.get_json()["error"]["message"]


def test_unknown_site_is_404(client, auth):
    headers = auth("admin", "read")
    response = client.put("/api/v1/sites/NOPE/expected-generation", json={"monthly_kwh": MONTHLY}, headers=headers)
    assert response.status_code == 404 and "NOPE" in response.get_json()["error"]["message"]
    assert client.get("/api/v1/sites/NOPE/expected-generation", headers=headers).status_code == 404


def test_get_is_404_until_values_are_stored(client, admin):
    response = client.get(URL, headers=admin)
    assert response.status_code == 404 and "no expected generation" in response.get_json()["error"]["message"]


def test_put_needs_admin_and_get_needs_read(client, admin, auth):
    reader = auth("read")
    response = put(client, reader, {"monthly_kwh": MONTHLY})
    assert response.status_code == 403 and response.get_json()["error"]["details"] == {"required_scope": "admin"}
    assert put(client, admin, {"monthly_kwh": MONTHLY}).status_code == 200
    assert client.get(URL, headers=auth("ingest")).status_code == 403
    assert client.get(URL, headers=reader).status_code == 200
    assert client.get(URL).status_code == 401


def test_openapi_documents_both_request_forms(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    operation = spec["paths"]["/api/v1/sites/{site_id}/expected-generation"]["put"]
    forms = operation["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    assert {"#/components/schemas/MonthlyKwh", "#/components/schemas/PvgisPvcalc"} <= {f.get("$ref") for f in forms}
    assert operation["x-required-scope"] == "admin" and "422" in operation["responses"]
    assert set(spec["components"]["schemas"]["ExpectedGeneration"]["properties"]) == {
        "site_id", "source", "monthly_kwh", "updated_at"}


def test_changed_values_have_the_site_recomputed_by_a_worker(client, auth, celery_worker, database):
    """A new expected generation reaches monthly_performance without new readings."""
    with database.engine.begin() as conn:
        pk = conn.execute(text("INSERT INTO sites (site_id, name, capacity_kwp) VALUES ('PERF', 'p', 4) "
                               "RETURNING id")).scalar_one()
        conn.execute(text("""
            INSERT INTO readings (site_pk, reading_at, register_kwh)
            SELECT :pk, d + time '19:00', 10 * extract(day FROM d)
              FROM generate_series(date '2026-06-01', date '2026-06-30', interval '1 day') d"""), {"pk": pk})
    headers = auth("admin")
    june = [100.0] * 12
    june[5] = 600.0  # 20 kWh a day in June
    answer = client.put("/api/v1/sites/PERF/expected-generation", json={"monthly_kwh": june}, headers=headers)
    assert answer.status_code == 200

    def june_ratio():
        with database.engine.connect() as conn:
            return conn.execute(text("SELECT ratio_pct FROM monthly_performance WHERE site_pk = :pk "
                                     "AND month = '2026-06-01'"), {"pk": pk}).scalar()

    deadline = time.monotonic() + 30
    while june_ratio() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert june_ratio() == pytest.approx(50.0)  # 10 kWh a day against 20 expected
    june[5] = 300.0
    client.put("/api/v1/sites/PERF/expected-generation", json={"monthly_kwh": june}, headers=headers)
    while june_ratio() != pytest.approx(100.0) and time.monotonic() < deadline + 30:
        time.sleep(0.1)
    assert june_ratio() == pytest.approx(100.0)
    # unchanged values journal nothing (the journal's id sequence tells, whether or not the worker took an entry)
    journal_ids = "SELECT pg_sequence_last_value('ingest_journal_id_seq')"
    with database.engine.connect() as conn:
        last_id = conn.execute(text(journal_ids)).scalar_one()
    client.put("/api/v1/sites/PERF/expected-generation", json={"monthly_kwh": june}, headers=headers)
    with database.engine.connect() as conn:
        assert last_id is not None and conn.execute(text(journal_ids)).scalar_one() == last_id
