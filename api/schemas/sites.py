"""Site shapes and validation per SPEC §2."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from api.schemas.common import PageArgsSchema, Text, page_schema
from lux.ingest.rules import SITE_ID_RE
from lux.postcodes import REGIONS, normalise_postcode

UNKNOWN_REGION_ALIASES = {"", "TBC"}


class PostcodeField(ma.fields.String):
    """A UK postcode, normalised to upper case with one space (e.g. `SW1A 1AA`)."""

    def _deserialize(self, value, attr, data, **kwargs):
        raw = super()._deserialize(value, attr, data, **kwargs)
        postcode = normalise_postcode(raw)
        if postcode is None:
            raise ma.ValidationError("Not a valid UK postcode.")
        return postcode


class RegionField(ma.fields.String):
    """A UK region name; null, empty or the legacy `TBC` mean unknown (stored as null)."""

    def _deserialize(self, value, attr, data, **kwargs):
        raw = super()._deserialize(value, attr, data, **kwargs).strip()
        if raw.upper() in UNKNOWN_REGION_ALIASES:
            return None
        if raw not in REGIONS:
            raise ma.ValidationError(f"Must be one of: {', '.join(REGIONS)} (or null / TBC for unknown).")
        return raw


class SiteSchema(ma.Schema):
    """A PV site."""

    site_id = ma.fields.String(
        required=True,
        validate=validate.Regexp(SITE_ID_RE, error="Must be 1–64 characters of A-Z a-z 0-9 _ . -"),
    )
    name = Text(required=True, validate=validate.Length(min=1, max=200))
    postcode = PostcodeField(allow_none=True, load_default=None)
    region = RegionField(allow_none=True, load_default=None)
    latitude = ma.fields.Float(allow_none=True, load_default=None, validate=validate.Range(-90, 90))
    longitude = ma.fields.Float(allow_none=True, load_default=None, validate=validate.Range(-180, 180))
    capacity_kwp = ma.fields.Float(
        required=True, validate=validate.Range(min=0, min_inclusive=False, max=100_000)
    )
    install_date = ma.fields.Date(allow_none=True, load_default=None)
    active = ma.fields.Boolean(load_default=True)
    created_at = ma.fields.DateTime(dump_only=True)
    updated_at = ma.fields.DateTime(dump_only=True)


class SiteUpdateSchema(SiteSchema):
    """Fields of a site that can be changed (all optional; site_id is fixed)."""

    class Meta:
        exclude = ("site_id",)


class SiteListArgsSchema(PageArgsSchema):
    region = Text(metadata={"description": "Region name, or `unknown` for sites without one"})
    active = ma.fields.Boolean()


class ImportResultSchema(ma.Schema):
    created = ma.fields.Integer(required=True)
    updated = ma.fields.Integer(required=True)
    unchanged = ma.fields.Integer(required=True)


SitePageSchema = page_schema(SiteSchema, "SitePage")
