"""Shared schemas: pagination arguments and page envelopes."""

from __future__ import annotations

import marshmallow as ma

MAX_PAGE_SIZE = 1000


class PageArgsSchema(ma.Schema):
    """`limit` (1–1000, default 100) and `offset` query arguments."""

    limit = ma.fields.Integer(load_default=100, validate=ma.validate.Range(min=1, max=MAX_PAGE_SIZE))
    offset = ma.fields.Integer(load_default=0, validate=ma.validate.Range(min=0))


def page_schema(item_schema: type[ma.Schema], name: str) -> type[ma.Schema]:
    """A page envelope `{items, total, limit, offset}` around `item_schema`."""
    return ma.Schema.from_dict(
        {
            "items": ma.fields.List(ma.fields.Nested(item_schema), required=True),
            "total": ma.fields.Integer(required=True),
            "limit": ma.fields.Integer(required=True),
            "offset": ma.fields.Integer(required=True),
        },
        name=name,
    )
