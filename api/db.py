"""Request-scoped database session, kept on `g` and closed at teardown."""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy.orm import Session

from lux.db import Database


def get_database() -> Database:
    """The app's Database (engine and session factory)."""
    return current_app.extensions["lux_database"]


def get_session() -> Session:
    """The session of this request; views never commit, the service functions they call do."""
    if "db_session" not in g:
        g.db_session = get_database().sessionmaker()
    return g.db_session


def close_session(_exc: BaseException | None = None) -> None:
    """Roll back anything uncommitted and return the connection to the pool."""
    session = g.pop("db_session", None)
    if session is not None:
        session.close()


def register_database(app: Flask, database: Database) -> None:
    """Attach the Database to the app and close sessions after each request."""
    app.extensions["lux_database"] = database
    app.teardown_appcontext(close_session)
