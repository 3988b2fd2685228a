"""Shared schemas: free text, pagination arguments and page envelopes."""

from __future__ import annotations

import marshmallow as ma

from lux.ingest import rules

MAX_PAGE_SIZE = 1000
MAX_OFFSET = 2**63 - 1  # PostgreSQL's OFFSET is a bigint


class Text(ma.fields.String):
    """A free-text argument: PostgreSQL text (and its parameters) cannot hold the NUL character, so a value carrying
    one is refused here, naming its field, instead of failing in the database."""

    default_error_messages = {"nul_character": rules.MESSAGES["nul_character"]}

    def _deserialize(self, value, attr, data, **kwargs) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if rules.NUL in text:
            raise self.make_error("nul_character")
        return text


class PageArgsSchema(ma.Schema):
    """`limit` (1–1000, default 100) and `offset` query arguments."""

    limit = ma.fields.Integer(load_default=100, validate=ma.validate.Range(min=1, max=MAX_PAGE_SIZE))
    offset = ma.fields.Integer(load_default=0, validate=ma.validate.Range(min=0, max=MAX_OFFSET))


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
