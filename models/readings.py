"""Meter readings: one cumulative register value per site and instant."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, DateTime, Double, Integer, SmallInteger, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class Reading(Base):
    """A meter reading; natural key (site, reading_at), with reading_at stored in UTC."""

    __tablename__ = "readings"
    __table_args__ = (
        CheckConstraint("register_kwh >= 0", name="register_non_negative"),
        CheckConstraint("signal_level BETWEEN 0 AND 31", name="signal_range"),
    )

    # No foreign key: ingest checks sites set-based, sites are deactivated rather than deleted, and a
    # per-row FK trigger would halve bulk-load speed.
    site_pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    reading_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    register_kwh: Mapped[float] = mapped_column(Double)
    signal_level: Mapped[int | None] = mapped_column(SmallInteger)
    network: Mapped[str | None] = mapped_column(Text)
    meter_serial: Mapped[str | None] = mapped_column(Text)
