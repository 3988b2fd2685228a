"""Expected generation of a site: 12 monthly kWh values, set by hand or from a PVGIS PVcalc response."""

from __future__ import annotations

import json

from flask import request
from flask.views import MethodView

from api.auth import requires
from api.db import get_session
from api.errors import ApiError
from api.events import emit_recompute
from api.extensions import blueprint
from api.schemas.expected import ExpectedGenerationSchema, MonthlyKwhSchema, PvgisPvcalcSchema
from api.views.sites import site_or_404
from lux import expected
from models import Site

blp = blueprint("expected", __name__, "/sites", "Expected monthly generation of a site (SPEC §2, PVGIS).")

COMPONENTS = {"MonthlyKwh": MonthlyKwhSchema, "PvgisPvcalc": PvgisPvcalcSchema}  # bodies parsed by lux.expected
PUT_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {"oneOf": [
        {"$ref": "#/components/schemas/MonthlyKwh"},
        {"type": "array", "items": {"type": "number", "minimum": 0}, "minItems": 12, "maxItems": 12,
         "description": "Twelve monthly kWh values, January first"},
        {"$ref": "#/components/schemas/PvgisPvcalc"},
    ]}}},
}



def _answer(site: Site, stored: expected.Expected) -> dict:
    return {"site_id": site.site_id, "source": stored.source, "monthly_kwh": stored.monthly_kwh,
            "updated_at": stored.updated_at}


def _json_body() -> object:
    if request.mimetype != "application/json":
        raise ApiError(415, "Send application/json: {\"monthly_kwh\": [12 numbers]}, a list of 12 numbers "
                            "or a PVGIS PVcalc JSON response.")
    try:
        return json.loads(request.get_data(cache=False))
    except ValueError as error:
        raise ApiError(400, f"Malformed JSON body: {error}") from None


@blp.route("/<site_id>/expected-generation")
class SiteExpectedGeneration(MethodView):
    @requires("read")
    @blp.no_query()
    @blp.response(200, ExpectedGenerationSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, site_id):
        """The expected monthly generation of a site (404 when the site or its values do not exist)."""
        site = site_or_404(site_id)
        stored = expected.get_expected(get_session(), site.id)
        if stored is None:
            raise ApiError(404, f"Site {site_id!r} has no expected generation; PUT it first.")
        return _answer(site, stored)

    @requires("admin")
    @blp.no_query()
    @blp.doc(requestBody=PUT_BODY)
    @blp.response(200, ExpectedGenerationSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE")
    @blp.alt_response(415, response="UNSUPPORTED_MEDIA_TYPE")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def put(self, site_id):
        """Set the 12 monthly values of a site, from `{"monthly_kwh": [...]}`, a bare list or a PVGIS response.

        All 12 months are replaced at once; a PVGIS response (`outputs.monthly.fixed[].E_m`) is
        stored with source `pvgis`, the other forms with source `manual`. Sending the same values
        again changes nothing, `updated_at` included. Invalid content is 422 with every problem in
        `details.problems`.
        """
        site = site_or_404(site_id)
        payload = _json_body()
        try:
            values = expected.parse_expected(payload)
        except expected.ExpectedGenerationError as error:
            raise ApiError(422, str(error), {"problems": error.problems}) from None
        stored = expected.store_expected(get_session(), site.id, values, expected.source_of(payload))
        emit_recompute(stored.journal_id, [site.id])  # changed values: the site's performance is recomputed
        return _answer(site, stored)
