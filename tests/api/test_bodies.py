"""Every endpoint that takes a body refuses one past its limit with a 413 before reading it, declared or chunked."""

from __future__ import annotations

import io
import json

import pytest

from api.bodies import DEFAULT_BODY_BYTES
from api.views.readings import MAX_BATCH_BYTES, MAX_STREAM_BYTES
from api.views.runs import MAX_RUN_BODY_BYTES
from api.views.sites import MAX_IMPORT_BYTES
from tests.api.test_sites import SITE, create

# (method, path, scope, content type, limit): every operation of the OpenAPI document with a request body
BODIES = [
    ("POST", "/api/v1/sites", "admin", "application/json", DEFAULT_BODY_BYTES),
    ("PATCH", "/api/v1/sites/SITE-1", "admin", "application/json", DEFAULT_BODY_BYTES),
    ("PUT", "/api/v1/sites/SITE-1/expected-generation", "admin", "application/json", DEFAULT_BODY_BYTES),
    ("POST", "/api/v1/sites/import", "admin", "application/json", MAX_IMPORT_BYTES),
    ("POST", "/api/v1/sites/import", "admin", "text/csv", MAX_IMPORT_BYTES),
    ("POST", "/api/v1/compute/run", "operate", "application/json", MAX_RUN_BODY_BYTES),
    ("POST", "/api/v1/readings", "ingest", "application/json", MAX_BATCH_BYTES),
    ("POST", "/api/v1/readings/stream", "ingest", "text/csv", MAX_STREAM_BYTES),
]


def test_every_operation_with_a_body_is_listed_and_documents_its_413(app):
    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    with_body = {(method.upper(), path): operation for path, operations in spec["paths"].items()
                 for method, operation in operations.items() if "requestBody" in operation}
    assert set(with_body) == {(method, path.replace("SITE-1", "{site_id}")) for method, path, *_ in BODIES}
    assert [key for key, operation in with_body.items() if "413" not in operation["responses"]] == []


def assert_too_large(response, limit: int) -> None:
    assert response.status_code == 413, response.get_data(as_text=True)[:300]
    assert response.get_json()["error"] == {
        "code": "payload_too_large", "message": f"The request body exceeds the limit of {limit} bytes.",
        "details": {"limit_bytes": limit}}


@pytest.mark.parametrize(("method", "path", "scope", "content_type", "limit"), BODIES)
def test_a_declared_length_past_the_limit_is_413(client, auth, method, path, scope, content_type, limit):
    assert create(client, auth("admin")).status_code == 201  # SITE-1, whose paths answer 404 without it
    response = client.open(path, method=method, data=b"[]", content_type=content_type, headers=auth(scope),
                           environ_overrides={"CONTENT_LENGTH": str(limit + 1)})
    assert_too_large(response, limit)


@pytest.mark.parametrize(("method", "path", "scope", "content_type", "limit"),
                         [body for body in BODIES if body[-1] <= MAX_RUN_BODY_BYTES])
def test_a_chunked_body_past_the_limit_is_413(client, auth, method, path, scope, content_type, limit):
    """Without a Content-Length (chunked transfer) the body is refused as it streams past the limit."""
    assert create(client, auth("admin")).status_code == 201
    body = b"[" + b" " * limit + b"]"
    response = client.open(path, method=method, input_stream=io.BytesIO(body), content_type=content_type,
                           headers=auth(scope), environ_overrides={"wsgi.input_terminated": True})
    assert_too_large(response, limit)


def padded(value: object, size: int) -> bytes:
    """`value` as JSON, with whitespace up to `size` bytes."""
    body = json.dumps(value).encode()
    return body + b" " * (size - len(body))


def test_bodies_up_to_their_limit_are_read(client, auth):
    """The default limit holds a site; the raised ones hold what is larger: a 2 MiB import, a 2 MiB run request."""
    admin = auth("admin")
    response = client.post("/api/v1/sites", data=padded(SITE, DEFAULT_BODY_BYTES), content_type="application/json",
                           headers=admin)
    assert response.status_code == 201, response.get_json()
    rows = [{**SITE, "site_id": "SITE-2"}]
    response = client.post("/api/v1/sites/import", data=padded(rows, 2 * DEFAULT_BODY_BYTES),
                           content_type="application/json", headers=admin)
    assert response.get_json() == {"created": 1, "updated": 0, "unchanged": 0}
    response = client.post("/api/v1/compute/run", data=padded({"as_of": "1999-12-31"}, 2 * DEFAULT_BODY_BYTES),
                           content_type="application/json", headers=auth("operate"))
    assert response.status_code == 422 and "as_of" in response.get_json()["error"]["details"]["json"]
    assert create(client, admin).status_code == 409  # the first one was stored
