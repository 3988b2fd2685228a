"""One JSON error format for every error: `{"error": {"code", "message", "details"}}`."""

from __future__ import annotations

import logging
from http import HTTPStatus

import kombu.exceptions
import psycopg
import redis
from flask import Flask, jsonify, request
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError

log = logging.getLogger(__name__)

CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    503: "service_unavailable",
}


class ApiError(HTTPException):
    """An error a view raises on purpose, with Lux's code, message and details."""

    def __init__(self, status: int, message: str, details: object = None, code: str | None = None) -> None:
        super().__init__(message)
        self.code = status
        self.error_code = code or CODES.get(status, "error")
        self.details = details


def unknown_site(site_id: str) -> ApiError:
    """The 404 of a site_id no site has."""
    return ApiError(404, f"No site with site_id {site_id!r}.")


def error_response(status: int, message: str, details: object = None, code: str | None = None):
    """Build the JSON error response."""
    body = {"error": {"code": code or CODES.get(status, "error"), "message": message, "details": details}}
    return jsonify(body), status


def _summarise(messages: object) -> str:
    """'field: message' pairs from webargs/marshmallow messages, for the human-readable line."""
    parts: list[str] = []

    def walk(prefix: str, value: object) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            parts.append(f"{prefix}: {' '.join(value)}")

    if isinstance(messages, dict) and len(messages) == 1 and next(iter(messages)) in {"json", "query"}:
        messages = next(iter(messages.values()))
    walk("", messages)
    return "; ".join(parts[:5]) + (f" (and {len(parts) - 5} more)" if len(parts) > 5 else "")


def too_large(limit: int | None) -> ApiError:
    """The 413 of a request body larger than its endpoint takes (see api.bodies)."""
    return ApiError(413, f"The request body exceeds the limit of {limit} bytes.", {"limit_bytes": limit})


def invalid_request(messages: dict) -> ApiError:
    """The 422 of arguments a view finds wrong once parsed: the body and message the parser's own 422 has."""
    return ApiError(422, "Invalid request: " + _summarise(messages), messages)


def handle_http_exception(error: HTTPException):
    """Werkzeug/webargs/ApiError exceptions → JSON."""
    if isinstance(error, ApiError):
        return error_response(error.code, error.description, error.details, error.error_code)
    if isinstance(error, InternalServerError) or error.code is None or error.code >= 500:
        return error_response(500, "Internal server error.", code="internal_error")
    if error.code == 413:  # Werkzeug's, for a body past the request's max_content_length
        return handle_http_exception(too_large(request.max_content_length))
    data = getattr(error, "data", None) or {}
    messages = data.get("messages")
    if error.code == 422 and messages:
        return handle_http_exception(invalid_request(messages))
    if messages:  # webargs: malformed JSON body and similar
        return error_response(error.code, "Malformed request: " + _summarise(messages), messages)
    message = data.get("message") or HTTPStatus(error.code).description
    return error_response(error.code, message)


RETRY_AFTER_S = 1
TRANSACTION_ROLLBACK = "40"  # SQLSTATE class: a deadlock (40P01), a serialization failure (40001), …


def handle_unavailable(error: Exception):
    """A dependency (PostgreSQL, Redis) is down, or PostgreSQL rolled the request's transaction back against a
    concurrent one (a deadlock, a serialization failure): 503 with Retry-After, the client may retry; nothing of the
    request was kept."""
    sqlstate = getattr(getattr(error, "orig", error), "sqlstate", None) or ""
    if sqlstate.startswith(TRANSACTION_ROLLBACK):
        log.warning("request=rolled_back sqlstate=%s", sqlstate)
        response, status = error_response(503, "The request conflicted with a concurrent one and was rolled back; "
                                               "nothing of it was kept. Retry it.")
    else:
        log.warning("dependency=unavailable error=%s", type(error).__name__)
        response, status = error_response(503, "A backing service is unavailable; retry later.")
    response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response, status


def handle_unexpected(error: Exception):
    """Anything else: log it with its traceback, answer a generic 500 without internals."""
    if isinstance(error, HTTPException):
        return handle_http_exception(error)
    log.exception("request=failed error=%s", type(error).__name__)
    return error_response(500, "Internal server error.", code="internal_error")


def register_error_handlers(app: Flask) -> None:
    """Install the handlers on the app."""
    app.register_error_handler(HTTPException, handle_http_exception)
    for unavailable in (redis.ConnectionError, redis.TimeoutError, OperationalError, psycopg.OperationalError,
                        kombu.exceptions.OperationalError):
        app.register_error_handler(unavailable, handle_unavailable)
    app.register_error_handler(Exception, handle_unexpected)
