"""Faults the demo seeder injected, so tests and computations can be checked against them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Date, ForeignKey, Identity, Integer, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class DemoFault(Base):
    """One injected fault: which site, what kind, over which local days."""

    __tablename__ = "demo_faults"

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    site_pk: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(Text)
    start_day: Mapped[dt.date] = mapped_column(Date)
    end_day: Mapped[dt.date | None] = mapped_column(Date)
    details: Mapped[dict] = mapped_column(JSONB, server_default="{}")
