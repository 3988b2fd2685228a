"""Token authentication with scopes: `Authorization: Bearer <token>` or `Token <token>`."""

from __future__ import annotations

import copy
from collections.abc import Callable
from functools import wraps
from typing import TypeVar

from flask import g, request
from flask_smorest.utils import deepupdate

from api.db import get_session
from api.errors import ApiError
from api.extensions import BEARER
from lux.tokens import SCOPES, find_client

F = TypeVar("F", bound=Callable)


def _token_from_header() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() not in {"bearer", "token"} or not token.strip():
        raise ApiError(401, "Authentication required: send 'Authorization: Bearer <token>'.")
    return token.strip()


def requires(*scopes: str) -> Callable[[F], F]:
    """Reject the request unless its token is valid and carries one of `scopes` (401 / 403).

    Put it above `@blp.arguments` so that authentication happens before the body is parsed.
    """
    if not scopes or set(scopes) - set(SCOPES):
        raise ValueError(f"unknown scope in {scopes!r}")
    wanted = " or ".join(f"'{scope}'" for scope in scopes)

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapper(*args, **kwargs):
            client = find_client(get_session(), _token_from_header())
            if client is None:
                raise ApiError(401, "Invalid or revoked token.")
            if not set(scopes) & set(client.scopes):
                raise ApiError(403, f"This token lacks the {wanted} scope.", {"required_scope": " ".join(scopes)})
            g.api_client = client
            return view(*args, **kwargs)

        doc = {  # bearer schemes take no scope list in OpenAPI 3, so the scope goes in an extension
            "security": [{BEARER: []}],
            "x-required-scope": " ".join(scopes),
            "responses": {"401": "UNAUTHORIZED", "403": "FORBIDDEN"},
        }
        wrapper._apidoc = copy.deepcopy(getattr(view, "_apidoc", {}))  # type: ignore[attr-defined]
        wrapper._apidoc["manual_doc"] = deepupdate(wrapper._apidoc.get("manual_doc", {}), doc)  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorator
