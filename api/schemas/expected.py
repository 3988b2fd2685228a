"""Expected generation shapes (SPEC §2): 12 monthly kWh values, or a PVGIS PVcalc response.

The request schemas document the two accepted bodies; the body itself is parsed by
`lux.expected.parse_expected`, which the CLI shares, so the API and `lux pvgis import` agree.
"""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from lux.expected import MAX_MONTHLY_KWH, MONTHS


class MonthlyKwhSchema(ma.Schema):
    """Twelve expected monthly values in kWh, January first (a bare JSON list of 12 numbers is also accepted)."""

    monthly_kwh = ma.fields.List(
        ma.fields.Float(validate=validate.Range(min=0, max=MAX_MONTHLY_KWH)), required=True,
        validate=validate.Length(equal=MONTHS),
        metadata={"example": [95, 140, 250, 330, 390, 400, 395, 345, 270, 180, 110, 80]},
    )


class _PvgisSchema(ma.Schema):
    """PVGIS objects carry more members than Lux reads; the document allows them."""

    class Meta:
        unknown = ma.INCLUDE


class PvgisMonthSchema(_PvgisSchema):
    """One month of a PVGIS PVcalc result; other members (`E_d`, `H(i)_m`, `SD_m`, …) are ignored."""

    month = ma.fields.Integer(required=True, validate=validate.Range(min=1, max=MONTHS))
    E_m = ma.fields.Float(required=True, validate=validate.Range(min=0, max=MAX_MONTHLY_KWH),
                          metadata={"description": "Expected energy in the month (kWh)"})


class PvgisMonthlySchema(_PvgisSchema):
    fixed = ma.fields.List(ma.fields.Nested(PvgisMonthSchema), required=True,
                           metadata={"description": "One entry per month 1..12, fixed mounting"})


class PvgisOutputsSchema(_PvgisSchema):
    monthly = ma.fields.Nested(PvgisMonthlySchema, required=True, metadata={
        "description": "Some PVGIS versions give the list of months here directly instead of under `fixed`"})


class PvgisPvcalcSchema(_PvgisSchema):
    """A PVGIS PVcalc JSON response (`outputformat=json`); only `outputs.monthly` is read."""

    outputs = ma.fields.Nested(PvgisOutputsSchema, required=True)


class ExpectedGenerationSchema(ma.Schema):
    """A site's expected monthly generation."""

    site_id = ma.fields.String(required=True)
    source = ma.fields.String(required=True, metadata={
        "description": "`manual` (12 values), `pvgis` (a PVGIS PVcalc response) or `demo` (the seeded demo fleet)"})
    monthly_kwh = ma.fields.List(
        ma.fields.Float(allow_none=True), required=True, validate=validate.Length(equal=MONTHS),
        metadata={"description": "kWh per month, January first; null for a month that has no value"})
    updated_at = ma.fields.DateTime(required=True, metadata={"description": "When the values last changed"})
