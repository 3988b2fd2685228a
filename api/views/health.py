"""Liveness and readiness probes."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView

from api.db import get_database
from api.extensions import Blueprint
from api.schemas.health import HealthSchema, ReadySchema

blp = Blueprint("health", __name__, description="Process and dependency health.")


@blp.route("/healthz")
class Health(MethodView):
    @blp.response(200, HealthSchema)
    def get(self):
        """The API process is up (no dependency is checked)."""
        return {"status": "ok"}


@blp.route("/readyz")
class Ready(MethodView):
    @blp.response(200, ReadySchema)
    @blp.alt_response(503, schema=ReadySchema)
    def get(self):
        """PostgreSQL and Redis both answer; 503 naming the one that does not."""
        checks = {"database": _check(get_database().ping), "redis": _check(_ping_redis)}
        ready = all(value == "ok" for value in checks.values())
        return {"status": "ready" if ready else "unavailable", "checks": checks}, (200 if ready else 503)


def _ping_redis() -> None:
    current_app.extensions["lux_redis"].ping()


def _check(probe) -> str:
    try:
        probe()
    except Exception as error:  # any failure means "not ready"; the name says which
        return f"error: {type(error).__name__}"
    return "ok"
