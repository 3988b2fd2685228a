"""Shapes of the computed results: site status and days, analyses, anomalies, dashboard snapshots."""

from __future__ import annotations

import datetime as dt

import marshmallow as ma
from marshmallow import validate

from api.schemas.common import PageArgsSchema, Text
from lux.compute.snapshots import ANOMALY_TYPES, SIGNAL_BANDS, STATUSES


class JsonDate(ma.fields.Date):
    """A date that may already be an ISO string (dates inside JSON snapshot documents)."""

    def _serialize(self, value, attr, obj, **kwargs):
        return value if isinstance(value, str) else super()._serialize(value, attr, obj, **kwargs)


class MonthField(ma.fields.String):
    """A calendar month, `YYYY-MM` (or any date in it), loaded as the first day of the month."""

    def __init__(self, **kwargs) -> None:
        super().__init__(metadata={"pattern": r"^\d{4}-\d{2}(-\d{2})?$", "example": "2026-06"}, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        raw = super()._deserialize(value, attr, data, **kwargs).strip()
        try:
            day = dt.date.fromisoformat(raw if len(raw) > 7 else raw + "-01")
        except ValueError:
            raise ma.ValidationError("Not a valid month: use YYYY-MM.") from None
        return day.replace(day=1)


def _ordered(first: str, second: str):
    """A schema validator: the `first` bound is not after the `second`."""

    def check(self, data, **kwargs) -> None:
        if data.get(first) is not None and data.get(second) is not None and data[first] > data[second]:
            raise ma.ValidationError(f"Must not be after '{self.fields[second].data_key or second}'.",
                                     self.fields[first].data_key or first)

    return ma.validates_schema(check)


def stamped(fields: dict[str, ma.fields.Field], name: str) -> type[ma.Schema]:
    """A result schema carrying `as_of` and `computed_at` besides `fields`."""
    return ma.Schema.from_dict({
        "as_of": ma.fields.Date(allow_none=True, metadata={"description": "Fleet day the result is as of"}),
        "computed_at": ma.fields.DateTime(allow_none=True, metadata={"description": "When it was computed"}),
        **fields,
    }, name=name)


def result_page(item_schema: type[ma.Schema], name: str, **extra: ma.fields.Field) -> type[ma.Schema]:
    """A page `{items, total, limit, offset}` with the freshness stamps `as_of` and `computed_at`."""
    return stamped({
        "items": ma.fields.List(ma.fields.Nested(item_schema), required=True),
        "total": ma.fields.Integer(required=True, metadata={"description": "Rows matching the filters"}),
        "limit": ma.fields.Integer(required=True),
        "offset": ma.fields.Integer(required=True),
        **extra,
    }, name)


# --- arguments ---------------------------------------------------------------------------------

class AsOfArgsSchema(ma.Schema):
    as_of = ma.fields.Date(metadata={"description": "A specific as-of day; default: the latest computed"})


class SiteDaysArgsSchema(PageArgsSchema):
    from_day = ma.fields.Date(data_key="from", metadata={"description": "First day (inclusive)"})
    to_day = ma.fields.Date(data_key="to", metadata={"description": "Last day (inclusive)"})
    as_of = ma.fields.Date(metadata={"description": "Only values settled by this day (`segment_end ≤ as_of`)"})

    check_range = _ordered("from_day", "to_day")


class ConnectionArgsSchema(PageArgsSchema, AsOfArgsSchema):
    region = Text(metadata={"description": "Region name, or `Unknown`"})
    network = Text(metadata={"description": "Network operator, or `Unknown`"})
    status = ma.fields.String(validate=validate.OneOf(STATUSES))
    quality = ma.fields.String(validate=validate.OneOf(SIGNAL_BANDS), metadata={"description": "Signal band"})


class PerformanceArgsSchema(PageArgsSchema):
    region = Text(metadata={"description": "Region name, or `Unknown`"})
    site_id = Text()
    from_month = MonthField(data_key="from")
    to_month = MonthField(data_key="to")
    performance_threshold = ma.fields.Float(
        validate=validate.Range(min=0, max=1000),
        metadata={"description": "Keep only months whose ratio (%) is below this"},
    )

    check_range = _ordered("from_month", "to_month")


class AnomalyArgsSchema(PageArgsSchema):
    site_id = Text()
    type = ma.fields.String(validate=validate.OneOf(ANOMALY_TYPES))
    region = Text(metadata={"description": "Region name, or `Unknown`"})
    open = ma.fields.Boolean(metadata={"description": "true: still running (no end_day); false: ended"})
    start = ma.fields.Date(metadata={"description": "Keep episodes still running on or after this day"})
    end = ma.fields.Date(metadata={"description": "Keep episodes started on or before this day"})

    check_range = _ordered("start", "end")


# --- site results ------------------------------------------------------------------------------

class CommunicationStatusSchema(ma.Schema):
    """Communication status of a site (SPEC §4)."""

    site_id = ma.fields.String(required=True)
    status = ma.fields.String(required=True, metadata={"enum": list(STATUSES)})
    days = ma.fields.Integer(allow_none=True, metadata={"description": "Days since the last reading, or of flat "
                                                                       "register for zero_read"})
    last_day = ma.fields.Date(allow_none=True)
    last_reading_at = ma.fields.DateTime(allow_none=True)
    last_register_kwh = ma.fields.Float(allow_none=True)
    signal_level = ma.fields.Float(allow_none=True, metadata={"description": "CSQ of the latest reading"})
    signal_quality = ma.fields.String(allow_none=True, metadata={"enum": list(SIGNAL_BANDS)})
    network = ma.fields.String(allow_none=True)
    as_of = ma.fields.Date(required=True)
    computed_at = ma.fields.DateTime(required=True)


class SiteDaySchema(ma.Schema):
    """One local day of a site: generation and the closing reading."""

    day = ma.fields.Date(required=True)
    generation_kwh = ma.fields.Float(allow_none=True, metadata={"description": "Null on the first day and rollbacks"})
    estimated = ma.fields.Boolean(metadata={"description": "Spread over a multi-day gap"})
    rollback = ma.fields.Boolean()
    segment_end = ma.fields.Date(metadata={"description": "The reading day that settled the value"})
    closing_at = ma.fields.DateTime(allow_none=True)
    closing_kwh = ma.fields.Float(allow_none=True)
    network = ma.fields.String(allow_none=True)
    readings = ma.fields.Integer()
    signal_level = ma.fields.Float(allow_none=True, metadata={"description": "Mean CSQ of the day's readings"})


SiteDayPageSchema = result_page(SiteDaySchema, "SiteDayPage", site_id=ma.fields.String(required=True))


# --- analysis ----------------------------------------------------------------------------------

class NetworkShareSchema(ma.Schema):
    network = ma.fields.String()
    sites = ma.fields.Integer()
    average_signal = ma.fields.Float(allow_none=True)


class SignalQualitySchema(ma.Schema):
    """Active sites per SPEC §4 band of their signal level."""

    Poor = ma.fields.Integer()
    Average = ma.fields.Integer()
    Good = ma.fields.Integer()
    Excellent = ma.fields.Integer()
    Unknown = ma.fields.Integer()


class RegionConnectionSchema(ma.Schema):
    region = ma.fields.String()
    sites = ma.fields.Integer()
    average_signal = ma.fields.Float(allow_none=True)
    no_coms = ma.fields.Integer()


class ConnectionSummarySchema(ma.Schema):
    networks = ma.fields.List(ma.fields.Nested(NetworkShareSchema))
    signal_quality = ma.fields.Nested(SignalQualitySchema)
    regions = ma.fields.List(ma.fields.Nested(RegionConnectionSchema))


class ConnectionSiteSchema(ma.Schema):
    """A site's connection, usable as scatter data."""

    site_id = ma.fields.String()
    region = ma.fields.String()
    network = ma.fields.String(allow_none=True)
    signal_level = ma.fields.Float(allow_none=True)
    quality = ma.fields.String(allow_none=True, metadata={"enum": list(SIGNAL_BANDS)})
    status = ma.fields.String()
    days = ma.fields.Integer(allow_none=True)
    last_reading_at = ma.fields.DateTime(allow_none=True)
    as_of = ma.fields.Date()
    computed_at = ma.fields.DateTime()


ConnectionAnalysisSchema = result_page(
    ConnectionSiteSchema, "ConnectionAnalysis",
    summary=ma.fields.Nested(ConnectionSummarySchema, required=True,
                             metadata={"description": "The connection-analysis snapshot"}),
)


class RegionReadingsSchema(ma.Schema):
    region = ma.fields.String()
    sites = ma.fields.Integer()
    total_readings = ma.fields.Integer(metadata={"description": "Readings up to as_of"})
    average_daily_generation_kwh = ma.fields.Float(allow_none=True, metadata={
        "description": "Mean generation of a site-day with a value, last 30 days"})
    anomalies = ma.fields.Integer(metadata={"description": "Episodes running at some time in the last 30 days"})
    open_anomalies = ma.fields.Integer()
    performance_score = ma.fields.Float(allow_none=True, metadata={
        "description": "Energy-weighted ratio to expected (%), last 30 days"})


ReadingsAnalysisSchema = stamped({
    "window_start": JsonDate(metadata={"description": "First day of the 30-day window"}),
    "regions": ma.fields.List(ma.fields.Nested(RegionReadingsSchema)),
}, "ReadingsAnalysis")


class PerformanceRowSchema(ma.Schema):
    """A site's month against PVGIS, with the site's energy-weighted summary over the requested range."""

    site_id = ma.fields.String()
    name = ma.fields.String()
    region = ma.fields.String()
    capacity_kwp = ma.fields.Float()
    month = ma.fields.Date(metadata={"description": "First day of the month"})
    actual_kwh = ma.fields.Float()
    covered_days = ma.fields.Integer()
    expected_kwh = ma.fields.Float(allow_none=True)
    ratio_pct = ma.fields.Float(allow_none=True)
    range_actual_kwh = ma.fields.Float()
    range_expected_kwh = ma.fields.Float(allow_none=True)
    range_ratio_pct = ma.fields.Float(allow_none=True, metadata={"description": "Σactual / Σexpected × 100"})
    range_months = ma.fields.Integer()
    as_of = ma.fields.Date()
    computed_at = ma.fields.DateTime()


PerformancePageSchema = result_page(PerformanceRowSchema, "PerformancePage")


class AnomalySchema(ma.Schema):
    """An anomaly episode; `end_day` is null while it is still running."""

    site_id = ma.fields.String()
    region = ma.fields.String()
    type = ma.fields.String(metadata={"enum": list(ANOMALY_TYPES)})
    start_day = ma.fields.Date()
    end_day = ma.fields.Date(allow_none=True)
    open = ma.fields.Boolean()
    details = ma.fields.Dict()
    as_of = ma.fields.Date()
    computed_at = ma.fields.DateTime()


AnomalyPageSchema = result_page(AnomalySchema, "AnomalyPage")


# --- dashboard ---------------------------------------------------------------------------------

def _counts(keys: tuple[str, ...], name: str) -> type[ma.Schema]:
    return ma.Schema.from_dict({key: ma.fields.Integer() for key in keys}, name=name)


StatusCountsSchema = _counts((*STATUSES, "not_computed"), "StatusCounts")

QuickStatsSchema = stamped({
    "total_sites": ma.fields.Integer(),
    "active_sites": ma.fields.Integer(),
    "status_counts": ma.fields.Nested(StatusCountsSchema),
    "open_anomalies": ma.fields.Nested(_counts(ANOMALY_TYPES, "AnomalyCounts")),
    "open_anomalies_total": ma.fields.Integer(),
    "generation_yesterday_kwh": ma.fields.Float(metadata={"description": "Fleet generation on as_of − 1"}),
    "generation_month_to_date_kwh": ma.fields.Float(),
    "underperforming_sites": ma.fields.Integer(metadata={
        "description": "Sites whose month-to-date ratio is below performance_threshold"}),
    "performance_threshold": ma.fields.Float(),
    "month_start": JsonDate(),
}, "QuickStats")


class RegionSummarySchema(ma.Schema):
    region = ma.fields.String()
    sites = ma.fields.Integer()
    capacity_kwp = ma.fields.Float()
    status_counts = ma.fields.Nested(StatusCountsSchema)
    generation_7d_kwh = ma.fields.Float()
    generation_30d_kwh = ma.fields.Float()
    performance_ratio_pct = ma.fields.Float(allow_none=True, metadata={
        "description": "Month to date, energy-weighted (%)"})


FleetSummarySchema = stamped({
    "month_start": JsonDate(),
    "regions": ma.fields.List(ma.fields.Nested(RegionSummarySchema)),
}, "FleetSummary")


class FleetDaySchema(ma.Schema):
    """One day of the fleet rollup (null fields: no rollup for that day)."""

    day = JsonDate()
    generation_kwh = ma.fields.Float(allow_none=True)
    sites = ma.fields.Integer(allow_none=True)
    reporting_sites = ma.fields.Integer(allow_none=True)
    valued_sites = ma.fields.Integer(allow_none=True)
    estimated_sites = ma.fields.Integer(allow_none=True)
    readings = ma.fields.Integer(allow_none=True)


class MonthToDateSchema(ma.Schema):
    month_start = JsonDate()
    actual_kwh = ma.fields.Float()
    expected_kwh = ma.fields.Float(allow_none=True)
    ratio_pct = ma.fields.Float(allow_none=True, metadata={"description": "Over sites with expected generation"})
    sites_with_expected = ma.fields.Integer()


class RankedSiteSchema(ma.Schema):
    site_id = ma.fields.String()
    name = ma.fields.String()
    region = ma.fields.String()
    actual_kwh = ma.fields.Float()
    expected_kwh = ma.fields.Float()
    ratio_pct = ma.fields.Float()


ProductionMetricsSchema = stamped({
    "daily": ma.fields.List(ma.fields.Nested(FleetDaySchema), metadata={"description": "The last 30 days"}),
    "month_to_date": ma.fields.Nested(MonthToDateSchema),
    "top_sites": ma.fields.List(ma.fields.Nested(RankedSiteSchema)),
    "bottom_sites": ma.fields.List(ma.fields.Nested(RankedSiteSchema)),
}, "ProductionMetrics")
