"""Every error is `{"error": {"code", "message", "details"}}` with the right status."""

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import text

from api import create_app
from api.db import get_session


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()["error"]
    assert body["code"] == code
    assert body["message"]
    return body


def test_missing_token_is_401(client):
    assert_error(client.get("/api/v1/sites"), 401, "unauthorized")


def test_unknown_token_is_401(client):
    assert_error(client.get("/api/v1/sites", headers={"Authorization": "Bearer nope"}), 401, "unauthorized")


def test_wrong_scope_is_403_naming_the_scope(client, auth):
    body = assert_error(client.get("/api/v1/sites", headers=auth("ingest")), 403, "forbidden")
    assert body["details"] == {"required_scope": "read"}


def test_token_scheme_is_accepted_too(client, auth):
    headers = {"Authorization": auth("read")["Authorization"].replace("Bearer", "Token")}
    assert client.get("/api/v1/sites", headers=headers).status_code == 200


def test_unknown_route_is_404(client):
    assert_error(client.get("/api/v1/no-such-thing"), 404, "not_found")


def test_wrong_method_is_405(client):
    assert_error(client.put("/healthz"), 405, "method_not_allowed")


def test_malformed_json_is_400(client, auth):
    response = client.post("/api/v1/sites", data="{not json", content_type="application/json",
                           headers=auth("admin"))
    assert_error(response, 400, "bad_request")


def test_authentication_comes_before_body_parsing(client):
    response = client.post("/api/v1/sites", data="{not json", content_type="application/json")
    assert_error(response, 401, "unauthorized")


def test_invalid_site_fields_are_422_with_the_field_named(client, auth):
    response = client.post("/api/v1/sites", json={"site_id": "bad id!", "name": "x", "capacity_kwp": -1},
                           headers=auth("admin"))
    body = assert_error(response, 422, "validation_error")
    assert set(body["details"]["json"]) == {"site_id", "capacity_kwp"}
    assert "capacity_kwp" in body["message"] and "site_id" in body["message"]


def test_a_misspelt_filter_is_422_naming_it_not_an_unfiltered_page(client, auth):
    response = client.get("/api/v1/anomalies?regoin=North%20West&limit=5", headers=auth("read"))
    body = assert_error(response, 422, "validation_error")
    assert body["details"] == {"query": {"regoin": ["Unknown field."]}}
    assert "regoin" in body["message"]
    assert client.get("/api/v1/anomalies?region=North%20West&limit=5", headers=auth("read")).status_code == 200


@pytest.mark.parametrize(("method", "path"), [
    ("get", "/api/v1/sites/S-1/communication-status?as_of=2026-01-01"),
    ("get", "/api/v1/sites/S-1?fields=name"),
    ("patch", "/api/v1/sites/S-1?active=false"),
    ("get", "/api/v1/tasks/abc?wait=1"),
])
def test_a_query_parameter_of_a_view_that_takes_none_is_422(client, auth, method, path):
    response = getattr(client, method)(path, json={}, headers=auth("read", "admin", "operate"))
    body = assert_error(response, 422, "validation_error")
    assert set(body["details"]["query"]) == {path.rsplit("?", 1)[1].split("=")[0]}


@pytest.mark.parametrize(("method", "path", "body", "location", "field"), [
    ("get", "/api/v1/anomalies?region=North%00West", None, "query", "region"),
    ("get", "/api/v1/analysis/performance?site_id=S%001", None, "query", "site_id"),
    ("get", "/api/v1/ingest/rejects?request_id=%00", None, "query", "request_id"),
    ("post", "/api/v1/sites", {"site_id": "N1", "name": "Rose\x00Farm", "capacity_kwp": 3}, "json", "name"),
])
def test_a_nul_in_a_text_argument_is_422_naming_it(client, auth, method, path, body, location, field):
    """PostgreSQL text cannot hold NUL: the argument is refused before it reaches the database."""
    response = getattr(client, method)(path, json=body, headers=auth("read", "admin"))
    details = assert_error(response, 422, "validation_error")["details"]
    assert details == {location: {field: ["Must not contain the NUL character (U+0000)."]}}


@pytest.mark.parametrize("path", ["/api/v1/sites/S%001", "/api/v1/sites/%00/daily", "/api/v1/tasks/a%00b",
                                  "/api/v1/sites//daily"])
def test_a_path_segment_with_a_nul_or_empty_matches_no_route(client, auth, path):
    assert_error(client.get(path, headers=auth("read", "operate")), 404, "not_found")


def test_an_offset_beyond_a_bigint_is_422(client, auth):
    response = client.get(f"/api/v1/anomalies?offset={2**63}", headers=auth("read"))
    assert set(assert_error(response, 422, "validation_error")["details"]["query"]) == {"offset"}
    assert client.get(f"/api/v1/anomalies?offset={2**63 - 1}", headers=auth("read")).status_code == 200


def test_unexpected_exception_is_a_generic_500_and_logged(settings, caplog):
    app = create_app(settings)

    @app.get("/boom")
    def boom():
        raise RuntimeError("secret internals")

    with caplog.at_level(logging.ERROR):
        response = app.test_client().get("/boom")
    body = assert_error(response, 500, "internal_error")
    assert "secret" not in response.get_data(as_text=True)
    assert body["details"] is None
    assert any("secret internals" in (r.exc_text or "") for r in caplog.records)


def test_a_request_rolled_back_in_a_deadlock_is_a_503_to_retry_and_the_other_goes_through(settings):
    """Two requests that lock the same two things in opposite orders: PostgreSQL rolls one back (a deadlock), whose
    answer says so, asks for a retry and keeps nothing of it; the other commits."""
    app = create_app(settings)
    both_hold_one = threading.Barrier(2)

    @app.post("/lock/<int:first>/<int:second>")
    def lock(first: int, second: int):
        session = get_session()
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": first})
        both_hold_one.wait()
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": second})
        session.execute(text("CREATE TABLE IF NOT EXISTS deadlock_winner (first int)"))
        session.execute(text("INSERT INTO deadlock_winner VALUES (:first)"), {"first": first})
        session.commit()
        return {"locked": [first, second]}

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda keys: app.test_client().post(f"/lock/{keys[0]}/{keys[1]}"), [(1, 2), (2, 1)]))
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200, 503]
    rolled_back = next(answer for answer in answers if answer.status_code == 503)
    body = assert_error(rolled_back, 503, "service_unavailable")
    assert "concurrent one and was rolled back" in body["message"] and rolled_back.headers["Retry-After"] == "1"
    winner = next(answer for answer in answers if answer.status_code == 200).get_json()["locked"][0]
    with app.extensions["lux_database"].engine.begin() as conn:
        assert conn.execute(text("SELECT array_agg(first) FROM deadlock_winner")).scalar_one() == [winner]
        conn.execute(text("DROP TABLE deadlock_winner"))


@pytest.fixture
def dead_settings(settings):
    """Settings whose database and Redis ports have nothing listening."""
    from tests.conftest import free_port

    return settings.with_changes(
        database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/lux",
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
    )


def test_database_down_is_503_not_500(dead_settings):
    response = create_app(dead_settings).test_client().get(
        "/api/v1/sites", headers={"Authorization": "Bearer lux_anything"}
    )
    assert_error(response, 503, "service_unavailable")


def test_readyz_names_what_is_down(dead_settings, client):
    assert client.get("/readyz").get_json() == {"status": "ready", "checks": {"database": "ok", "redis": "ok"}}
    response = create_app(dead_settings).test_client().get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"].startswith("error") and body["checks"]["redis"].startswith("error")


def test_readyz_503_when_only_redis_is_down(settings):
    from tests.conftest import free_port

    broken = settings.with_changes(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    response = create_app(broken).test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"] == {"database": "ok", "redis": "error: ConnectionError"}


def test_healthz_needs_nothing(dead_settings):
    assert create_app(dead_settings).test_client().get("/healthz").get_json() == {"status": "ok"}


def test_every_response_is_timed(client):
    response = client.get("/healthz")
    assert response.headers["X-Response-Time"].endswith("ms")
    assert float(response.headers["X-Response-Time"][:-2]) >= 0
    assert len(response.headers["X-Request-ID"]) == 32


def test_request_log_line_has_method_path_status_and_duration(client, caplog):
    with caplog.at_level(logging.INFO, logger="lux.api.request"):
        client.get("/healthz", headers={"X-Request-ID": "abc123"})
    line = next(r.getMessage() for r in caplog.records if r.name == "lux.api.request")
    assert "method=GET path=/healthz status=200 duration_ms=" in line
    assert "request_id=abc123" in line


@pytest.mark.parametrize("incoming", ["has space", "tab\there", "x" * 65, ""])
def test_a_request_id_that_is_not_1_to_64_visible_characters_is_replaced(client, incoming):
    """A client's request id is logged, echoed and stored: one with spaces or control characters is not kept."""
    response = client.get("/healthz", headers={"X-Request-ID": incoming})
    assert response.headers["X-Request-ID"] != incoming and len(response.headers["X-Request-ID"]) == 32
