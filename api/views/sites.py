"""Sites: create, get, list, update, deactivate, bulk import (JSON list or CSV)."""

from __future__ import annotations

import csv
import io

import marshmallow as ma
from flask import request
from flask.views import MethodView

from api.auth import requires
from api.bodies import body_limit
from api.db import get_session
from api.errors import ApiError, unknown_site
from api.events import emit_recompute
from api.extensions import blueprint
from api.schemas.sites import (
    ImportResultSchema,
    SiteListArgsSchema,
    SitePageSchema,
    SiteSchema,
    SiteUpdateSchema,
)
from lux import sites
from models import Site

blp = blueprint("sites", __name__, "/sites", "Site registry (SPEC §2).")

MAX_IMPORT_ROWS = 50_000
MAX_IMPORT_BYTES = 64 * 1024 * 1024  # MAX_IMPORT_ROWS rows of up to 1.3 kB (a name of 200 escaped characters)


def site_or_404(site_id: str) -> Site:
    """The site with `site_id`, or a 404 answer."""
    site = sites.get_site(get_session(), site_id)
    if site is None:
        raise unknown_site(site_id)
    return site


@blp.route("")
class SiteCollection(MethodView):
    @requires("read")
    @blp.arguments(SiteListArgsSchema, location="query")
    @blp.response(200, SitePageSchema)
    def get(self, args):
        """List sites, filtered by region and active, ordered by site_id."""
        items, total = sites.list_sites(
            get_session(), region=args.get("region"), active=args.get("active"),
            limit=args["limit"], offset=args["offset"],
        )
        return {"items": items, "total": total, "limit": args["limit"], "offset": args["offset"]}

    @requires("admin")
    @blp.no_query()
    @blp.arguments(SiteSchema)
    @blp.response(201, SiteSchema)
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE")
    def post(self, fields):
        """Register a site."""
        try:
            return sites.create_site(get_session(), fields)
        except sites.SiteExists:
            raise ApiError(409, f"A site with site_id {fields['site_id']!r} already exists.") from None


@blp.route("/<site_id>")
class SiteItem(MethodView):
    @requires("read")
    @blp.no_query()
    @blp.response(200, SiteSchema)
    def get(self, site_id):
        """One site."""
        return site_or_404(site_id)

    @requires("admin")
    @blp.no_query()
    @blp.arguments(SiteUpdateSchema(partial=True))
    @blp.response(200, SiteSchema)
    @blp.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE")
    def patch(self, fields, site_id):
        """Change some fields of a site; a new region, capacity or activity has its results recomputed."""
        return _updated(sites.update_site(get_session(), site_or_404(site_id), fields))

    @requires("admin")
    @blp.no_query()
    @blp.response(200, SiteSchema)
    def delete(self, site_id):
        """Deactivate a site (its readings and results are kept, the fleet's figures recomputed without it; PATCH
        `active` to reactivate)."""
        return _updated(sites.update_site(get_session(), site_or_404(site_id), {"active": False}))


def _updated(updated: sites.Updated) -> Site:
    """The updated site, its recompute sent when the update journalled one."""
    emit_recompute(updated.journal_id, [updated.site.id])
    return updated.site


IMPORT_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/Site"}}},
        "text/csv": {
            "schema": {"type": "string"},
            "example": "site_id,name,postcode,region,latitude,longitude,capacity_kwp,install_date,active\n"
            "SITE-1,Rose Farm,EX1 1AA,South West,50.7,-3.5,4.2,2021-05-01,true\n",
        },
    },
}


@blp.route("/import")
class SiteImport(MethodView):
    @requires("admin")
    @body_limit(MAX_IMPORT_BYTES)
    @blp.no_query()
    @blp.doc(requestBody=IMPORT_BODY)
    @blp.response(200, ImportResultSchema)
    @blp.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE")
    def post(self):
        """Create or update many sites by site_id, all or nothing: any invalid row rejects the import (422).

        Updated sites with a new region, capacity or activity have their results recomputed.
        """
        rows = _parse_import_body()
        if not rows:
            raise ApiError(400, "The import holds no sites.")
        if len(rows) > MAX_IMPORT_ROWS:
            raise ApiError(413, f"At most {MAX_IMPORT_ROWS} sites per import.")
        try:
            valid = SiteSchema(many=True).load(rows)
        except ma.ValidationError as error:
            raise ApiError(422, f"{len(error.messages)} row(s) are invalid; nothing was imported.",
                           {"rows": error.messages}) from None
        duplicates = _duplicate_indexes(valid)
        if duplicates:
            raise ApiError(422, "A site_id appears more than once; nothing was imported.",
                           {"rows": {i: {"site_id": ["Duplicate site_id in this import."]} for i in duplicates}})
        result = sites.import_sites(get_session(), valid)
        emit_recompute(result.journal_id, result.recomputed)
        return result


def _parse_import_body() -> list:
    mimetype = request.mimetype
    if mimetype == "text/csv":
        text = request.get_data(as_text=True)
        reader = csv.DictReader(io.StringIO(text, newline=""))  # csv reads the line ends itself
        try:
            return [{k: (v if v != "" else None) for k, v in row.items() if k} for row in reader]
        except csv.Error as error:
            raise ApiError(400, f"Malformed CSV body: {error}.") from None
    if mimetype == "application/json":
        body = request.get_json(silent=True)
        if body is None:
            raise ApiError(400, "Malformed JSON body.")
        if not isinstance(body, list):
            raise ApiError(400, "The JSON body must be a list of sites.")
        return body
    raise ApiError(415, "Send application/json (a list of sites) or text/csv.")


def _duplicate_indexes(rows: list[dict]) -> list[int]:
    seen: set[str] = set()
    duplicates = []
    for index, row in enumerate(rows):
        if row["site_id"] in seen:
            duplicates.append(index)
        seen.add(row["site_id"])
    return duplicates
