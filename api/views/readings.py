"""Meter ingest: a JSON batch, a streamed CSV/NDJSON form, and the rejects kept from both."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from flask import current_app, g, request
from flask.views import MethodView

from api.auth import requires
from api.bodies import body_limit
from api.db import get_database, get_session
from api.errors import ApiError
from api.events import emit_ingest_event
from api.extensions import blueprint
from api.schemas.readings import (
    IngestArgsSchema,
    IngestResultSchema,
    ReadingSchema,
    RejectArgsSchema,
    RejectPageSchema,
)
from lux import ingest
from lux.ingest import rejects, stream

blp = blueprint("readings", __name__, "", "Meter ingest (SPEC §3).")

MAX_BATCH_BYTES = 32 * 1024 * 1024
MAX_STREAM_BYTES = 512 * 1024 * 1024
STREAM_TYPES = {"text/csv": stream.csv_chunks, "application/x-ndjson": stream.ndjson_chunks}
READ_BLOCK = 1 << 20
# A reading is one short line. A longer one (a JSON array sent as NDJSON, a file without line ends) refuses the
# stream: read block by block, an unending line would be copied again with every block and held whole.
MAX_LINE_BYTES = 64 * 1024
COMPONENTS = {"Reading": ReadingSchema}  # bodies parsed in bulk, documented by reference


def _answer(outcome: ingest.Outcome) -> dict:
    """Emit the post-commit event and shape the per-row answer."""
    event = emit_ingest_event(ingest.event_for(outcome, g.request_id), follow_left=outcome.left_to_follow > 0)
    return {
        "request_id": g.request_id, "received": outcome.received, "accepted": outcome.accepted,
        "duplicate": outcome.duplicate, "conflict": outcome.conflict, "replaced": outcome.replaced,
        "rejected": len(outcome.rejected),
        "rejects": [{"index": i, "field": why.field, "reason": why.reason, "message": why.message}
                    for i, why, *_ in outcome.rejected],
        "conflicts": [{**c, "message": "Differs from the stored reading in this field."
                       + ("" if c["applied"] else " Send on_conflict=replace to apply it.")}
                      for c in outcome.conflicts],
        "event": event,
    }


@blp.route("/readings")
class Readings(MethodView):
    @requires("ingest")
    @body_limit(MAX_BATCH_BYTES)
    @blp.arguments(IngestArgsSchema, location="query")
    @blp.doc(requestBody={"required": True, "content": {"application/json": {
        "schema": {"type": "array", "minItems": 1, "maxItems": ingest.MAX_BATCH_ROWS,
                   "items": {"$ref": "#/components/schemas/Reading"}}}}})
    @blp.response(200, IngestResultSchema)
    @blp.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE")
    @blp.alt_response(415, response="UNSUPPORTED_MEDIA_TYPE")
    @blp.alt_response(503, response="SERVICE_UNAVAILABLE")
    def post(self, args):
        """Store a batch of 1 … 50,000 readings; answer per row only after the commit.

        Every row is accepted, a duplicate (same key and values: a no-op), a conflict (same key,
        other values: kept unless `on_conflict=replace`) or rejected with a reason (kept in the
        rejects list). Replaying a batch changes nothing.
        """
        if request.mimetype != "application/json":
            raise ApiError(415, "Send the batch as application/json (a JSON array of readings); "
                                "CSV and NDJSON go to /api/v1/readings/stream.")
        try:
            outcome = ingest.ingest_json(get_database(), request.get_data(cache=False),
                                         replace=args["on_conflict"] == "replace", request_id=g.request_id)
        except (ingest.MalformedBatch, ingest.EmptyBatch) as error:
            raise ApiError(400, str(error)) from None
        except ingest.BatchTooLarge as error:
            raise ApiError(413, str(error), {"limit_rows": error.limit}) from None
        return _answer(outcome)


@blp.route("/readings/stream")
class ReadingStream(MethodView):
    @requires("ingest")
    @body_limit(MAX_STREAM_BYTES)
    @blp.arguments(IngestArgsSchema, location="query")
    @blp.doc(requestBody={"required": True, "content": {
        "text/csv": {"schema": {"type": "string"}, "example":
                     "site_id,reading_at,register_kwh,signal_level,network,meter_serial\n"
                     "SITE-1,2026-06-01T21:30:00+01:00,1234.5,17,EE,MTR1\n"},
        "application/x-ndjson": {"schema": {"type": "string"}, "example":
                                 '{"site_id": "SITE-1", "reading_at": "2026-06-01T21:30:00Z", '
                                 '"register_kwh": 1.5}\n'}}})
    @blp.response(200, IngestResultSchema)
    @blp.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE")
    @blp.alt_response(415, response="UNSUPPORTED_MEDIA_TYPE")
    @blp.alt_response(503, response="SERVICE_UNAVAILABLE")
    def post(self, args):
        """Bulk load CSV (header row first) or NDJSON, read in chunks, with the batch endpoint's semantics.

        Up to 1,000,000 rows in one transaction; the answer comes after the commit.
        """
        parse = STREAM_TYPES.get(request.mimetype)
        if parse is None:
            raise ApiError(415, "Send text/csv or application/x-ndjson.")
        chunks = parse(_lines(request.stream), ingest.CHUNK_ROWS, dt.datetime.now(dt.UTC))
        try:
            outcome = ingest.ingest_stream(get_database(), chunks, replace=args["on_conflict"] == "replace",
                                           request_id=g.request_id)
        except stream.BadStreamHeader as error:
            raise ApiError(400, str(error)) from None
        except ingest.BatchTooLarge as error:
            raise ApiError(413, str(error), {"limit_rows": error.limit}) from None
        if outcome.received == 0:
            raise ApiError(400, "The batch holds no readings.")
        return _answer(outcome)


def _lines(body) -> Iterator[bytes]:
    """Lines of a request body read in 1 MiB blocks; a line longer than MAX_LINE_BYTES is a 413."""
    rest = b""
    while block := body.read(READ_BLOCK):
        lines = (rest + block).split(b"\n")
        rest = lines.pop()
        if len(rest) > MAX_LINE_BYTES or (lines and max(map(len, lines)) > MAX_LINE_BYTES):
            raise ApiError(413, f"A line of the stream is longer than {MAX_LINE_BYTES} bytes; send one reading a "
                                "line.", {"limit_line_bytes": MAX_LINE_BYTES})
        yield from lines
    if rest:
        yield rest


@blp.route("/ingest/rejects")
class Rejects(MethodView):
    @requires("read", "ingest")
    @blp.arguments(RejectArgsSchema, location="query")
    @blp.response(200, RejectPageSchema)
    def get(self, args):
        """Rejected rows with their raw content and reason, newest first (kept 30 days)."""
        items, total = rejects.list_rejects(get_session(), timezone=current_app.config["LUX_SETTINGS"].timezone,
                                            **args)
        return {"items": items, "total": total, "limit": args["limit"], "offset": args["offset"]}
