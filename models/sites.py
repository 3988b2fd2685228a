"""Sites and their expected (PVGIS) monthly generation."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Double,
    ForeignKey,
    Identity,
    Integer,
    SmallInteger,
    String,
    Text,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base

SITE_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"  # PostgreSQL regex: `$` is the end of the string


class Site(Base):
    """A PV site with its generation meter; `site_id` is the external key, `id` the internal one."""

    __tablename__ = "sites"
    __table_args__ = (
        CheckConstraint("capacity_kwp > 0", name="capacity_positive"),
        CheckConstraint(f"site_id ~ '{SITE_ID_PATTERN}'", name="site_id_format"),
        CheckConstraint("latitude BETWEEN -90 AND 90", name="latitude_range"),
        CheckConstraint("longitude BETWEEN -180 AND 180", name="longitude_range"),
    )

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    site_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(Text)
    postcode: Mapped[str | None] = mapped_column(String(10))
    region: Mapped[str | None] = mapped_column(Text, index=True)
    latitude: Mapped[float | None] = mapped_column(Double)
    longitude: Mapped[float | None] = mapped_column(Double)
    capacity_kwp: Mapped[float] = mapped_column(Double)
    install_date: Mapped[dt.date | None] = mapped_column(Date)
    active: Mapped[bool] = mapped_column(Boolean, server_default="true")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ExpectedGeneration(Base):
    """Expected generation of a site for one calendar month (kWh), e.g. from PVGIS PVcalc."""

    __tablename__ = "expected_generation"
    __table_args__ = (
        CheckConstraint("month BETWEEN 1 AND 12", name="month_range"),
        CheckConstraint("expected_kwh >= 0", name="expected_non_negative"),
    )

    site_pk: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True)
    month: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    expected_kwh: Mapped[float] = mapped_column(Double)
    source: Mapped[str] = mapped_column(Text, server_default="manual")
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
