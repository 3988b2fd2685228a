"""Shapes of computation runs: the explicit run request, task state, and the run history."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from api.schemas.common import PageArgsSchema, Text, page_schema
from lux.ingest.rules import SITE_ID_RE

MODES = ("incremental", "full", "rollover", "explicit")
OUTCOMES = ("queued", "running", "success", "failure")
MAX_RUN_SITES = 100_000


class ComputeRunRequestSchema(ma.Schema):
    """`POST /compute/run`: every field is optional."""

    as_of = ma.fields.Date(load_default=None, metadata={
        "description": "As-of day, from 2000-01-01 to today in the fleet time zone (the default)"})
    sites = ma.fields.List(
        ma.fields.String(validate=validate.Regexp(SITE_ID_RE, error="Not a valid site_id.")),
        load_default=None, validate=validate.Length(min=1, max=MAX_RUN_SITES),
        metadata={"description": "site_ids to recompute (default: every site)"},
    )
    from_day = ma.fields.Date(data_key="from", load_default=None, metadata={
        "description": "Rebuild from this day (default: each site's first day); not after `to`"})
    to_day = ma.fields.Date(data_key="to", load_default=None, metadata={
        "description": "End of a backfill range: fleet rollups are rebuilt up to it; not after `as_of`"})


class QueuedSchema(ma.Schema):
    task_id = ma.fields.String(required=True)
    task = ma.fields.String(required=True)
    status_url = ma.fields.String(required=True)


class RunSchema(ma.Schema):
    id = ma.fields.Integer()
    task = ma.fields.String()
    task_id = ma.fields.String(allow_none=True)
    mode = ma.fields.String(metadata={"enum": list(MODES)})
    as_of = ma.fields.Date()
    shard = ma.fields.String(allow_none=True, metadata={"description": "`k/n` for a shard of a full run"})
    sites = ma.fields.Integer(allow_none=True)
    from_day = ma.fields.Date(allow_none=True)
    to_day = ma.fields.Date(allow_none=True)
    started_at = ma.fields.DateTime()
    finished_at = ma.fields.DateTime(allow_none=True)
    rows_written = ma.fields.Integer(allow_none=True)
    outcome = ma.fields.String(metadata={"enum": list(OUTCOMES)})
    error = ma.fields.String(allow_none=True)


class RunListArgsSchema(PageArgsSchema):
    task = Text(load_default=None)
    mode = ma.fields.String(load_default=None, validate=validate.OneOf(MODES))
    outcome = ma.fields.String(load_default=None, validate=validate.OneOf(OUTCOMES))


RunPageSchema = page_schema(RunSchema, "RunPage")


class TaskStateSchema(ma.Schema):
    task_id = ma.fields.String(required=True)
    state = ma.fields.String(required=True, metadata={"description": "PENDING, STARTED, SUCCESS, FAILURE, RETRY"})
    result = ma.fields.Raw(allow_none=True, metadata={"description": "The task's return value once SUCCESS"})
    error = ma.fields.String(allow_none=True)
    date_done = ma.fields.DateTime(allow_none=True)
    runs = ma.fields.List(ma.fields.Nested(RunSchema), metadata={"description": "Run records of this task"})
