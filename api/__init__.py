"""Lux's HTTP API: a thin Flask app that parses, authorizes, calls `lux` and serializes."""

from __future__ import annotations

import redis
from flask import Flask

from api.bodies import DEFAULT_BODY_BYTES
from api.db import register_database
from api.errors import register_error_handlers
from api.events import register_events
from api.extensions import LuxApi, configure_routing, openapi_config
from api.requestlog import register_request_logging
from api.views import analysis, dashboard, expected, health, readings, results, runs, sites
from lux.config import Settings
from lux.db import Database
from lux.logging import configure_logging

VERSION = "0.1.0"


def create_app(settings: Settings | None = None) -> Flask:
    """Build the API for `settings` (default: from the environment)."""
    settings = settings or Settings.from_env()
    configure_logging(settings.log_level)
    app = Flask("lux.api")
    app.config.update(openapi_config(VERSION), LUX_SETTINGS=settings, MAX_CONTENT_LENGTH=DEFAULT_BODY_BYTES)
    register_database(app, Database(settings))
    register_redis(app, settings)
    register_events(app, settings)
    register_error_handlers(app)
    register_request_logging(app)
    configure_routing(app)
    register_blueprints(app)
    return app


def register_redis(app: Flask, settings: Settings) -> None:
    """One Redis client per app (connections are pooled)."""
    app.extensions["lux_redis"] = redis.Redis.from_url(
        settings.redis_url, socket_connect_timeout=2, socket_timeout=5
    )


def register_blueprints(app: Flask) -> None:
    """Mount every endpoint family and publish the OpenAPI document."""
    api = LuxApi(app)
    for module in (health, sites, expected, results, readings, analysis, dashboard, runs):
        for name, schema in getattr(module, "COMPONENTS", {}).items():
            api.spec.components.schema(name, schema=schema)
        api.register_blueprint(module.blp)
