"""Request logging: a request id, a timing line per request and an `X-Response-Time` header."""

from __future__ import annotations

import logging
import re
import time
import uuid

from flask import Flask, Response, g, request

log = logging.getLogger("lux.api.request")

# A client's X-Request-ID is kept (logged, echoed, stored with its rejects and journal entry) when it is 1–64 visible
# ASCII characters; any other gets a fresh id, so no control character reaches a log line, a header or the database.
CLIENT_REQUEST_ID = re.compile(r"[\x21-\x7e]{1,64}")


def _start() -> None:
    g.request_started = time.perf_counter()
    incoming = request.headers.get("X-Request-ID", "")
    g.request_id = incoming if CLIENT_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex


def _finish(response: Response) -> Response:
    elapsed_ms = (time.perf_counter() - g.get("request_started", time.perf_counter())) * 1000
    response.headers["X-Response-Time"] = f"{elapsed_ms:.1f}ms"
    response.headers["X-Request-ID"] = g.get("request_id", "")
    client = g.get("api_client")
    log.info(
        "method=%s path=%s status=%s duration_ms=%.1f client=%s request_id=%s",
        request.method, request.path, response.status_code, elapsed_ms,
        client.name if client else "-", g.get("request_id", "-"),
    )
    return response


def register_request_logging(app: Flask) -> None:
    """Time every request and log it as one key=value line."""
    app.before_request(_start)
    app.after_request(_finish)
