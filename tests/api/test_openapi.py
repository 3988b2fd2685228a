"""The OpenAPI document describes every endpoint with its schemas, auth and errors."""

import pytest

from lux.tokens import SCOPES

HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


def operations(spec):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, operation


@pytest.fixture
def spec(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def test_every_flask_route_is_documented(app, spec):
    documented = {(path, method.upper()) for path, ops in spec["paths"].items() for method in ops}
    for rule in app.url_map.iter_rules():
        if rule.endpoint in {"static"} or rule.endpoint.startswith("api-docs"):
            continue
        path = rule.rule.replace("<", "{").replace(">", "}")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method) in documented, f"{method} {path} is not in the OpenAPI document"


def test_api_v1_operations_require_a_scope_and_document_401_403(spec):
    for path, method, operation in operations(spec):
        if path.startswith("/api/v1/"):
            assert operation["security"] == [{"bearerAuth": []}], f"{method} {path}"
            assert set(operation["x-required-scope"].split()) <= set(SCOPES), f"{method} {path}"
            assert {"401", "403"} <= set(operation["responses"]), f"{method} {path}"


def test_success_responses_name_their_schema(spec):
    for path, method, operation in operations(spec):
        ok = [code for code in operation["responses"] if code.startswith("2")]
        assert ok, f"{method} {path} documents no success response"
        content = operation["responses"][ok[0]]["content"]["application/json"]
        assert "$ref" in content["schema"], f"{method} {path}"


def test_error_format_is_the_documented_default(spec):
    error = spec["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    body = spec["components"]["schemas"]["ErrorBody"]
    assert set(body["properties"]) == {"code", "message", "details"}


def test_docs_page_is_served(client):
    response = client.get("/api/v1/docs")
    assert response.status_code == 200 and b"swagger" in response.data.lower()
