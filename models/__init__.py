"""Every Lux table, imported here so `Base.metadata` is complete for Alembic."""

from models.base import Base
from models.demo import DemoFault
from models.ingest import IngestJournal, IngestReject
from models.ops import ApiClient
from models.readings import Reading
from models.sites import ExpectedGeneration, Site

__all__ = ["ApiClient", "Base", "DemoFault", "ExpectedGeneration", "IngestJournal", "IngestReject", "Reading", "Site"]
