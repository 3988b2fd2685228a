"""What ingest keeps besides readings: rejected rows, and a journal of what awaits recomputation."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, CheckConstraint, Date, DateTime, Identity, Index, Integer, SmallInteger, Text, func
from sqlalchemy.dialects.postgresql import ARRAY
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


class IngestJournal(Base):
    """One committed ingest request: the sites it wrote and, for each, the earliest local day it touched.

    Written in the same transaction as the readings, so a lost event is never a lost update: the
    event and the periodic sweep both claim entries from here. One row per request (arrays, not a
    row per site) keeps the cost off the ingest hot path; claimers coalesce entries per site.
    `follow_pks` / `follow_days`: the sites (and earliest days) whose statuses the status follow still
    has to continue; the ingest continued the others itself. Null: every site of the entry.
    `earliest_at`: the earliest reading the request wrote, of any site (null: not known, as for `mark_dirty`).
    """

    __tablename__ = "ingest_journal"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), index=True)
    request_id: Mapped[str] = mapped_column(Text)
    site_pks: Mapped[list[int]] = mapped_column(ARRAY(Integer))
    from_days: Mapped[list[dt.date]] = mapped_column(ARRAY(Date))
    follow_pks: Mapped[list[int] | None] = mapped_column(ARRAY(Integer))
    follow_days: Mapped[list[dt.date] | None] = mapped_column(ARRAY(Date))
    earliest_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class StatusFollowCursor(Base):
    """The newest ingest journal entry whose sites' statuses were followed (`lux.status.follow`): one row.

    Each follow takes the entries after it (those no recompute has claimed yet), so however many
    events a burst sends, each entry's sites are followed once, in as few runs as the worker can.
    The sites a follow found held by a run wait here for the next follow (`held_pks`, with the earliest
    day of their new readings and since when they are held).
    """

    __tablename__ = "status_follow_cursor"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    journal_id: Mapped[int] = mapped_column(BigInteger)
    held_pks: Mapped[list[int]] = mapped_column(ARRAY(Integer), server_default="{}")
    held_days: Mapped[list[dt.date]] = mapped_column(ARRAY(Date), server_default="{}")
    held_since: Mapped[list[dt.datetime]] = mapped_column(ARRAY(DateTime(timezone=True)), server_default="{}")
