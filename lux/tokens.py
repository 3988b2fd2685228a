"""API client tokens: created once, stored as SHA-256, looked up by hash."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import ApiClient

SCOPES = ("ingest", "read", "operate", "admin")
TOKEN_PREFIX = "lux_"


class TokenError(ValueError):
    """A token request Lux cannot honour (unknown scope, duplicate name)."""


def hash_token(token: str) -> str:
    """SHA-256 hex digest of a token (tokens are random, so a fast hash is the right one)."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_client(session: Session, name: str, scopes: list[str], token: str | None = None) -> str:
    """Create an API client and return its token; only its hash is stored, so it is shown once.

    `token` lets the demo stack re-register the token it keeps under var/ after a database reset.
    """
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise TokenError(f"scopes must be a non-empty subset of {', '.join(SCOPES)}; unknown: {unknown}")
    if session.scalar(select(ApiClient.id).where(ApiClient.name == name)) is not None:
        raise TokenError(f"an API client named {name!r} already exists")
    token = token or TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiClient(name=name, token_hash=hash_token(token), token_prefix=token[:12], scopes=sorted(set(scopes)))
    )
    session.flush()
    return token


def find_client(session: Session, token: str) -> ApiClient | None:
    """The active client holding `token`, or None."""
    return session.scalar(
        select(ApiClient).where(ApiClient.token_hash == hash_token(token), ApiClient.revoked_at.is_(None))
    )
