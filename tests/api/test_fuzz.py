"""Whatever a client sends, the API answers with JSON and never with a 5xx.

Every operation of the OpenAPI document is sent arbitrary values (hypothesis): in its path parameters, in any of its
query parameters, and in its body (JSON of the documented fields' names, or text lines for the stream and the CSV
import), sent as a documented content type or another one. Among them the values that once failed with a 500: the
NUL character (which PostgreSQL text cannot hold), integers beyond a bigint, JSON a strict parser refuses after the
typed one gave up, and the carriage returns and quotes Python's csv refuses. `POST /compute/run` is sent without the
`operate` scope (a 403 before its body is read): with it, the test would queue computations for a worker.
"""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.test_results import seed

EXAMPLES = int(os.environ.get("LUX_FUZZ_EXAMPLES", "300"))  # more for a soak run

ODD_TEXT = ["\x00", "a\x00b", "", " ", "\r", "a\rb", '"x', "ü", "%", "../x", "x" * 300, "null", "true", "-1", "0",
            "1e309", "nan", "inf", "9223372036854775808", "-9223372036854775809", "0001-01-01", "9999-12-31",
            "2026-02-30", "2026-06-10", "2026-06", "2026-06-10\x00", "2026-06-10T20:00:00Z", "S1", "London",
            "Unknown", "EE"]
TEXT = st.one_of(st.sampled_from(ODD_TEXT), st.text(max_size=12), st.integers(-2**70, 2**70).map(str))
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(), TEXT)
BODY_KEYS = ["site_id", "name", "region", "postcode", "capacity_kwp", "install_date", "active", "latitude",
             "longitude", "monthly_kwh", "outputs", "monthly", "fixed", "month", "E_m", "as_of", "sites",
             "from_day", "to_day", "reading_at", "register_kwh", "signal_level", "network", "meter_serial"]
JSON = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                     st.dictionaries(st.sampled_from(BODY_KEYS), inner, max_size=6)),
                    max_leaves=16)
# Bodies sent as what their operation does not take: a 415 or a 400, never a 500.
ODD_CONTENT_TYPES = ["text/plain", "application/json; charset=latin-1", "text/csv; charset=utf-16",
                     "application/x-www-form-urlencoded", "multipart/form-data"]
LINES = st.lists(st.one_of(TEXT, st.lists(TEXT, max_size=6).map(",".join)), max_size=5).map("\n".join)


@pytest.fixture
def operations(client):
    """(method, path, query parameter names, body content types) of every documented operation."""
    spec = client.get("/api/v1/openapi.json").get_json()
    found = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                query = [p["name"] for p in operation.get("parameters", []) if p["in"] == "query"]
                found.append((method, path, query, list(operation.get("requestBody", {}).get("content", {}))))
    return found


def test_any_request_gets_json_and_no_server_error(client, auth, database, operations):
    with database.session_scope() as session:
        seed(session)
    headers = auth("read", "ingest", "admin")
    assert len(operations) >= 20

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(data=st.data())
    def send(data):
        method, path, query_names, content_types = data.draw(st.sampled_from(operations))
        for name in ("site_id", "task_id"):
            path = path.replace("{" + name + "}", data.draw(TEXT.filter(lambda v: "/" not in v and "?" not in v)))
        names = data.draw(st.lists(st.sampled_from(query_names), unique=True, max_size=4)) if query_names else []
        query = {name: data.draw(TEXT) for name in names}
        request = {"query_string": query, "headers": dict(headers)}
        if content_types:
            content_type = data.draw(st.sampled_from(content_types + ODD_CONTENT_TYPES))
            request["headers"]["Content-Type"] = content_type
            as_json = content_type.startswith("application/json")
            request["data"] = json.dumps(data.draw(JSON)) if as_json else data.draw(LINES)
        response = getattr(client, method)(path, **request)
        assert response.status_code < 500, (method, path, request, response.get_data(as_text=True))
        assert response.is_json, (method, path, request, response.status_code)
        if response.status_code >= 400:
            error = response.get_json()["error"]
            assert error["code"] and error["message"], (method, path, request, error)

    send()
