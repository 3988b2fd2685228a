"""Every Lux table, imported here so `Base.metadata` is complete for Alembic."""

from models.base import Base
from models.compute import (
    Anomaly,
    ComputeLock,
    ComputeRun,
    DailyRollup,
    FleetRefreshRequest,
    FleetSnapshot,
    MonthlyPerformance,
    SiteDay,
    SiteStatus,
    SiteTail,
)
from models.demo import DemoFault
from models.ingest import IngestJournal, IngestReject
from models.ops import ApiClient
from models.readings import Reading
from models.sites import ExpectedGeneration, Site

__all__ = [
    "Anomaly", "ApiClient", "Base", "ComputeLock", "ComputeRun", "DailyRollup", "DemoFault", "ExpectedGeneration",
    "FleetRefreshRequest", "FleetSnapshot", "IngestJournal", "IngestReject", "MonthlyPerformance", "Reading", "Site",
    "SiteDay", "SiteStatus", "SiteTail",
]
