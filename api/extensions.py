"""The OpenAPI layer: flask-smorest configured for Lux's error format and token auth."""

from __future__ import annotations

from collections.abc import Callable

import marshmallow as ma
from flask import Flask
from flask_smorest import Api
from flask_smorest import Blueprint as SmorestBlueprint
from webargs.flaskparser import FlaskParser
from werkzeug.routing import UnicodeConverter

API_PREFIX = "/api/v1"
BEARER = "bearerAuth"


class ErrorBodySchema(ma.Schema):
    code = ma.fields.String(required=True, metadata={"description": "Machine-readable error code"})
    message = ma.fields.String(required=True, metadata={"description": "What went wrong, for people"})
    details = ma.fields.Raw(
        allow_none=True, metadata={"description": "Structured details, e.g. validation messages by field"}
    )


class ErrorSchema(ma.Schema):
    """Every error Lux returns: `{"error": {"code", "message", "details"}}`."""

    error = ma.fields.Nested(ErrorBodySchema, required=True)


class LuxApi(Api):
    """flask-smorest's Api with Lux's error envelope; handlers live in `api.errors`."""

    ERROR_SCHEMA = ErrorSchema

    def _register_error_handlers(self) -> None:
        """Lux registers its own handlers (api.errors.register_error_handlers)."""


def openapi_config(version: str) -> dict:
    """Flask config keys that place the OpenAPI document and docs page under /api/v1."""
    return {
        "API_TITLE": "Lux",
        "API_VERSION": version,
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": API_PREFIX,
        "OPENAPI_JSON_PATH": "openapi.json",
        "OPENAPI_SWAGGER_UI_PATH": "docs",
        "OPENAPI_SWAGGER_UI_URL": "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/",
        "API_SPEC_OPTIONS": {
            "info": {
                "description": "Lux: ingest meter readings and read precomputed fleet results. "
                "Authenticate with `Authorization: Bearer <token>` (or `Token <token>`).",
            },
            "components": {"securitySchemes": {BEARER: {"type": "http", "scheme": "bearer"}}},
        },
    }


class PathSegment(UnicodeConverter):
    """The default path converter, as werkzeug's but for the NUL character, which no site_id or task id holds and
    PostgreSQL text cannot: a path carrying one matches no route (404) instead of failing in the database."""

    def __init__(self, url_map, *args, **kwargs) -> None:
        super().__init__(url_map, *args, **kwargs)
        self.regex = self.regex.replace("[^/]", "[^/\\x00]", 1)


def configure_routing(app: Flask) -> None:
    """Before any route is added: PathSegment is the converter of every `<name>` in a route, and a path with an empty
    segment (`/sites//daily`) matches no route (404, as JSON) instead of redirecting to the path without it."""
    app.url_map.converters.update(default=PathSegment, string=PathSegment)
    app.url_map.merge_slashes = False


class StrictQueryParser(FlaskParser):
    """A query parameter the view does not take is an error (422 naming it), as an unknown body field is: a misspelt
    filter must not answer with unfiltered data."""

    DEFAULT_UNKNOWN_BY_LOCATION = {**FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION,
                                   "query": ma.RAISE, "querystring": ma.RAISE}


class NoQueryArgsSchema(ma.Schema):
    """The query of a view that takes no query parameters."""


class Blueprint(SmorestBlueprint):
    """flask-smorest's Blueprint parsing arguments with StrictQueryParser."""

    ARGUMENTS_PARSER = StrictQueryParser()

    def no_query(self) -> Callable[[Callable], Callable]:
        """Decorates a view that takes no query parameters: any given is a 422, as for views that take some."""
        return self.arguments(NoQueryArgsSchema, location="query", as_kwargs=True)


def blueprint(name: str, import_name: str, url_prefix: str, description: str) -> Blueprint:
    """A blueprint mounted under /api/v1."""
    return Blueprint(name, import_name, url_prefix=API_PREFIX + url_prefix, description=description)
