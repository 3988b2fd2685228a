"""Tokens are shown once, stored hashed, scoped, and revocable."""

import datetime as dt

import pytest
from sqlalchemy import select

from lux import tokens
from models import ApiClient


def test_token_is_stored_only_as_its_hash(database):
    with database.session_scope() as session:
        secret = tokens.create_client(session, "meter-head-end", ["ingest"])
    with database.session_scope() as session:
        client = session.scalar(select(ApiClient))
        assert client.token_hash == tokens.hash_token(secret) != secret
        assert secret not in (client.token_hash, client.token_prefix)
        assert tokens.find_client(session, secret).name == "meter-head-end"


def test_unknown_scopes_and_duplicate_names_are_refused(database):
    with database.session_scope() as session:
        with pytest.raises(tokens.TokenError, match="unknown"):
            tokens.create_client(session, "x", ["read", "superuser"])
        tokens.create_client(session, "dash", ["read"])
        with pytest.raises(tokens.TokenError, match="already exists"):
            tokens.create_client(session, "dash", ["read"])


def test_revoked_token_is_401(client, database):
    with database.session_scope() as session:
        secret = tokens.create_client(session, "old", ["read"])
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/v1/sites", headers=headers).status_code == 200
    with database.session_scope() as session:
        session.scalar(select(ApiClient)).revoked_at = dt.datetime.now(dt.UTC)
    assert client.get("/api/v1/sites", headers=headers).status_code == 401


@pytest.mark.parametrize("header", ["Basic abc", "Bearer", "Bearer    ", "lux_token_without_scheme"])
def test_malformed_authorization_headers_are_401(client, header):
    response = client.get("/api/v1/sites", headers={"Authorization": header})
    assert response.status_code == 401
