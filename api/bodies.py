"""How large a request body may be: one limit for every endpoint, raised by those that take bulk bodies.

Werkzeug refuses a larger body when the view first reads it (a declared `Content-Length` at once, a chunked body as
it streams past the limit); `api.errors` answers that with the 413 of `too_large`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from flask import request

DEFAULT_BODY_BYTES = 1024 * 1024  # a site, a patch, a PVGIS PVcalc response: a few kB


def body_limit(limit: int) -> Callable:
    """A view decorator, placed above the view's `arguments`: the body of its requests may be up to `limit` bytes
    instead of DEFAULT_BODY_BYTES."""
    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def limited(*args, **kwargs):
            request.max_content_length = limit
            return view(*args, **kwargs)
        return limited
    return decorate
