"""A site's computed results: communication status and daily generation (SPEC §4, §7)."""

from __future__ import annotations

from flask.views import MethodView

from api.auth import requires
from api.db import get_session
from api.errors import ApiError, unknown_site
from api.extensions import blueprint
from api.schemas.results import CommunicationStatusSchema, SiteDayPageSchema, SiteDaysArgsSchema
from api.views.analysis import page_body
from lux.compute import results

blp = blueprint("site-results", __name__, "/sites", "A site's computed results.")


@blp.route("/<site_id>/communication-status")
class CommunicationStatus(MethodView):
    @requires("read")
    @blp.no_query()
    @blp.response(200, CommunicationStatusSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, site_id):
        """The site's communication status (healthy, zero_read, no_coms) as of the latest computation."""
        status = results.communication_status(get_session(), site_id)
        if status is None:
            raise unknown_site(site_id)
        if status["status"] is None:
            raise ApiError(404, f"No communication status has been computed yet for site {site_id!r}.",
                           code="not_computed")
        return status


@blp.route("/<site_id>/daily")
class SiteDaily(MethodView):
    @requires("read")
    @blp.arguments(SiteDaysArgsSchema, location="query")
    @blp.response(200, SiteDayPageSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, args, site_id):
        """The site's days in date order: generation (estimated over gaps), closing reading, mean signal."""
        page = results.site_days(get_session(), site_id, **args)
        if page is None:
            raise unknown_site(site_id)
        return {**page_body(page, args), "site_id": site_id}
