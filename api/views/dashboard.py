"""Dashboard: the latest (or a given day's) fleet snapshots, read as computed (SPEC §7)."""

from __future__ import annotations

import datetime as dt

from flask.views import MethodView

from api.auth import requires
from api.db import get_session
from api.errors import ApiError
from api.extensions import blueprint
from api.schemas.results import AsOfArgsSchema, FleetSummarySchema, ProductionMetricsSchema, QuickStatsSchema
from lux.compute import results
from lux.compute.results import Snapshot

blp = blueprint("dashboard", __name__, "/dashboard", "Fleet dashboard snapshots, precomputed by the workers.")


def snapshot_or_404(kind: str, as_of: dt.date | None) -> Snapshot:
    """The `kind` snapshot of `as_of` (default: the latest); 404 when none has been computed."""
    snapshot = results.get_snapshot(get_session(), kind, as_of)
    if snapshot is None:
        day = f" for as_of {as_of.isoformat()}" if as_of else ""
        raise ApiError(404, f"No {kind} snapshot{day} has been computed yet; run a computation (POST "
                            "/api/v1/compute/run or `lux compute`) to build it.",
                       {"kind": kind, "as_of": as_of.isoformat() if as_of else None}, code="not_computed")
    return snapshot


def snapshot_body(kind: str, as_of: dt.date | None) -> dict:
    """The snapshot's document with its `as_of` and `computed_at`."""
    snapshot = snapshot_or_404(kind, as_of)
    return {**snapshot.payload, "as_of": snapshot.as_of, "computed_at": snapshot.computed_at}


@blp.route("/quick-stats")
class QuickStats(MethodView):
    @requires("read")
    @blp.arguments(AsOfArgsSchema, location="query")
    @blp.response(200, QuickStatsSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, args):
        """Fleet counts: sites, statuses, open anomalies, generation yesterday and month to date, underperformers."""
        return snapshot_body("quick-stats", args.get("as_of"))


@blp.route("/fleet-summary")
class FleetSummary(MethodView):
    @requires("read")
    @blp.arguments(AsOfArgsSchema, location="query")
    @blp.response(200, FleetSummarySchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, args):
        """Per region (`Unknown` for none): sites, capacity, statuses, generation, month-to-date ratio."""
        return snapshot_body("fleet-summary", args.get("as_of"))


@blp.route("/production-metrics")
class ProductionMetrics(MethodView):
    @requires("read")
    @blp.arguments(AsOfArgsSchema, location="query")
    @blp.response(200, ProductionMetricsSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, args):
        """Fleet generation of the last 30 days, month to date against expected, top and bottom 10 sites by ratio."""
        return snapshot_body("production-metrics", args.get("as_of"))
