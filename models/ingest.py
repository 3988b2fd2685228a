"""What ingest keeps besides readings: rejected rows, and which sites await recomputation."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Date, DateTime, Identity, Index, Integer, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class IngestReject(Base):
    """A rejected row, kept with its raw content and reason (queryable for 30 days)."""

    __tablename__ = "ingest_rejects"
    __table_args__ = (Index("ix_ingest_rejects_site_id_received_at", "site_id", "received_at"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    received_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), index=True)
    request_id: Mapped[str] = mapped_column(Text, index=True)
    row_index: Mapped[int] = mapped_column(Integer)
    site_id: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    field: Mapped[str | None] = mapped_column(Text)
    message: Mapped[str] = mapped_column(Text)
    raw: Mapped[str] = mapped_column(Text)


class DirtySite(Base):
    """A site with readings written since its results were last computed, from `from_day` (fleet-local) on.

    Written in the same transaction as the readings, so a lost event is never a lost update:
    the periodic sweep finds every row left here.
    """

    __tablename__ = "dirty_sites"

    site_pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    from_day: Mapped[dt.date] = mapped_column(Date)
    marked_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), index=True)
