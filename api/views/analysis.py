"""Analysis: connection, readings and performance across the fleet, and anomaly episodes (SPEC §7)."""

from __future__ import annotations

from flask.views import MethodView

from api.auth import requires
from api.db import get_session
from api.extensions import blueprint
from api.schemas.results import (
    AnomalyArgsSchema,
    AnomalyPageSchema,
    AsOfArgsSchema,
    ConnectionAnalysisSchema,
    ConnectionArgsSchema,
    PerformanceArgsSchema,
    PerformancePageSchema,
    ReadingsAnalysisSchema,
)
from api.views.dashboard import snapshot_body, snapshot_or_404
from lux.compute import results
from lux.compute.results import Page

blp = blueprint("analysis", __name__, "", "Fleet analyses and anomaly episodes, read from the cached results.")


def page_body(page: Page, args: dict) -> dict:
    """A page envelope with its freshness stamps."""
    return {"items": page.items, "total": page.total, "limit": args["limit"], "offset": args["offset"],
            "as_of": page.as_of, "computed_at": page.computed_at}


@blp.route("/analysis/connection")
class ConnectionAnalysis(MethodView):
    @requires("read")
    @blp.arguments(ConnectionArgsSchema, location="query")
    @blp.response(200, ConnectionAnalysisSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, args):
        """The connection snapshot (networks, signal bands, regions) and a page of sites' current connection.

        `as_of`, `computed_at` and `summary` come from the snapshot; each site row carries its own stamps.
        """
        snapshot = snapshot_or_404("connection-analysis", args.pop("as_of", None))
        page = results.connection_sites(get_session(), **args)
        return {**page_body(page, args), "summary": snapshot.payload,
                "as_of": snapshot.as_of, "computed_at": snapshot.computed_at}


@blp.route("/analysis/readings")
class ReadingsAnalysis(MethodView):
    @requires("read")
    @blp.arguments(AsOfArgsSchema, location="query")
    @blp.response(200, ReadingsAnalysisSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, args):
        """Per region: readings, average daily generation, anomalies and the performance score (last 30 days)."""
        return snapshot_body("readings-analysis", args.get("as_of"))


@blp.route("/analysis/performance")
class PerformanceAnalysis(MethodView):
    @requires("read")
    @blp.arguments(PerformanceArgsSchema, location="query")
    @blp.response(200, PerformancePageSchema)
    def get(self, args):
        """Monthly performance against PVGIS by site and month, with each site's energy-weighted range summary."""
        return page_body(results.performance(get_session(), **args), args)


@blp.route("/anomalies")
class Anomalies(MethodView):
    @requires("read")
    @blp.arguments(AnomalyArgsSchema, location="query")
    @blp.response(200, AnomalyPageSchema)
    def get(self, args):
        """Anomaly episodes, newest first; `open` ones have no `end_day`."""
        return page_body(results.anomalies(get_session(), **args), args)
