"""Reading shapes. The fields call the ingest rules, so the schema and the bulk path agree."""

from __future__ import annotations

import datetime as dt

import marshmallow as ma

from api.schemas.common import PageArgsSchema, Text, page_schema
from lux.ingest import rules


class _RuleField(ma.fields.Field):
    """A field whose value is checked by one function of `lux.ingest.rules`."""

    def __init__(self, check, **kwargs) -> None:
        # `deserialize` below decides about null itself; allow_none only shapes the OpenAPI document.
        super().__init__(allow_none=not kwargs.get("required", False), **kwargs)
        self.check = check

    def deserialize(self, value, attr=None, data=None, **kwargs):
        if value is ma.missing:
            return super().deserialize(value, attr, data, **kwargs)
        if value is None and self.required:
            raise ma.ValidationError(rules.MESSAGES["required"])
        result = self.check(value)
        if isinstance(result, rules.Rejection):
            raise ma.ValidationError(result.message)
        return result


def _site_id(value):
    if not isinstance(value, str) or not rules.SITE_ID_RE.match(value):
        return rules.Rejection("site_id", "invalid_site_id")
    return value


def _timestamp(value):
    parsed = rules.parse_timestamp(value)
    if isinstance(parsed, rules.Rejection):
        return parsed
    return rules.check_timestamp_range(parsed, dt.datetime.now(dt.UTC)) or parsed


class ReadingSchema(ma.Schema):
    """One meter reading (SPEC §2). `signal_level` 99 means unknown and is stored as null."""

    class Meta:
        unknown = ma.EXCLUDE

    site_id = _RuleField(_site_id, required=True, metadata={"type": "string", "example": "SITE-1"})
    reading_at = _RuleField(_timestamp, required=True, metadata={
        "type": "string", "format": "date-time", "example": "2026-06-01T21:30:00+01:00",
        "description": "RFC 3339 with a UTC offset; from 2000-01-01 to 24 hours ahead"})
    register_kwh = _RuleField(rules.check_register, required=True, metadata={
        "type": "number", "minimum": 0, "maximum": rules.MAX_REGISTER_KWH, "description": "Cumulative register"})
    signal_level = _RuleField(rules.check_signal, metadata={
        "type": "integer", "nullable": True, "description": "GSM CSQ 0–31; 99 = unknown"})
    network = _RuleField(lambda v: rules.check_text("network", v), metadata={
        "type": "string", "nullable": True, "maxLength": rules.MAX_TEXT})
    meter_serial = _RuleField(lambda v: rules.check_text("meter_serial", v), metadata={
        "type": "string", "nullable": True, "maxLength": rules.MAX_TEXT})


class IngestArgsSchema(ma.Schema):
    on_conflict = ma.fields.String(
        load_default="reject", validate=ma.validate.OneOf(["reject", "replace"]),
        metadata={"description": "`replace` overwrites stored readings whose values differ"})


class RowProblemSchema(ma.Schema):
    index = ma.fields.Integer(required=True, metadata={"description": "Position of the row in the batch"})
    field = ma.fields.String(allow_none=True)
    reason = ma.fields.String(metadata={"description": "Rejection reason code"})
    message = ma.fields.String(required=True)
    applied = ma.fields.Boolean(metadata={"description": "For conflicts: whether the row replaced the stored one"})


class IngestResultSchema(ma.Schema):
    request_id = ma.fields.String(required=True)
    received = ma.fields.Integer(required=True)
    accepted = ma.fields.Integer(required=True)
    duplicate = ma.fields.Integer(required=True)
    conflict = ma.fields.Integer(required=True, metadata={"description": "Rows differing from a stored reading"})
    replaced = ma.fields.Integer(required=True, metadata={"description": "Conflicts applied (on_conflict=replace)"})
    rejected = ma.fields.Integer(required=True)
    rejects = ma.fields.List(ma.fields.Nested(RowProblemSchema), required=True)
    conflicts = ma.fields.List(ma.fields.Nested(RowProblemSchema), required=True)
    event = ma.fields.String(required=True, metadata={
        "description": "`queued`: the recompute event was sent; `deferred`: the broker was unreachable and the "
                       "periodic sweep will pick the sites up; `none`: nothing was written"})


class RejectSchema(ma.Schema):
    id = ma.fields.Integer()
    received_at = ma.fields.DateTime()
    request_id = ma.fields.String()
    row_index = ma.fields.Integer()
    site_id = ma.fields.String(allow_none=True)
    reason = ma.fields.String()
    field = ma.fields.String(allow_none=True)
    message = ma.fields.String()
    raw = ma.fields.String(metadata={"description": "The row as it was received"})


class RejectArgsSchema(PageArgsSchema):
    site_id = Text()
    reason = Text()
    request_id = Text()
    date = ma.fields.Date(metadata={"description": "Day received (fleet time zone)"})


RejectPageSchema = page_schema(RejectSchema, "RejectPage")
