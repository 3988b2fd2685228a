"""Cached results of the computation engine (see docs/COMPUTATION.md) and the record of its runs."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Double,
    Identity,
    Index,
    Integer,
    SmallInteger,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class SiteDay(Base):
    """One site and local day between its first and last reading: closing register and generation."""

    __tablename__ = "site_days"

    site_pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    closing_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    closing_kwh: Mapped[float | None] = mapped_column(Double)
    closing_signal: Mapped[int | None] = mapped_column(SmallInteger)
    network: Mapped[str | None] = mapped_column(Text)
    readings: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    signal_sum: Mapped[int] = mapped_column(Integer, server_default="0")
    signal_n: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    generation_kwh: Mapped[float | None] = mapped_column(Double)
    estimated: Mapped[bool] = mapped_column(Boolean, server_default="false")
    rollback: Mapped[bool] = mapped_column(Boolean, server_default="false")
    segment_end: Mapped[dt.date] = mapped_column(Date)
    flat_since: Mapped[dt.date | None] = mapped_column(Date)


class SiteTail(Base):
    """The latest computed reading day of a site: what its status as of any later day needs.

    Kept by the daily rebuild for every site it recomputes (`last_day` null: no reading yet), so the
    status and the rebuild's anchor read one row per site instead of probing `site_days`. `ref_kwh`
    is the closing register of the latest reading day on or before `last_day − zero_read_days`,
    for the `zero_read_days` stored beside it. `recent_days` / `recent_kwh` are the last
    `zero_read_days + 1` reading days, newest first, and their closing registers (null in tails written
    before migration 0006): the reference reading is always among them, so a run that only appends days
    finds the next one there. Pages keep room for HOT updates (fillfactor 50, migration 0005).
    """

    __tablename__ = "site_tails"

    site_pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_day: Mapped[dt.date | None] = mapped_column(Date)
    closing_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    closing_kwh: Mapped[float | None] = mapped_column(Double)
    closing_signal: Mapped[int | None] = mapped_column(SmallInteger)
    network: Mapped[str | None] = mapped_column(Text)
    flat_since: Mapped[dt.date | None] = mapped_column(Date)
    ref_kwh: Mapped[float | None] = mapped_column(Double)
    zero_read_days: Mapped[int] = mapped_column(SmallInteger)
    recent_days: Mapped[list[dt.date] | None] = mapped_column(ARRAY(Date))
    recent_kwh: Mapped[list[float] | None] = mapped_column(ARRAY(Double))


class SiteStatus(Base):
    """Communication status of a site as of the latest as-of day computed.

    Every row is rewritten at each change of day, so the table has no index but its key and leaves room
    in its pages (fillfactor 50, set by migration 0005) for those updates to stay HOT.
    """

    __tablename__ = "site_status"

    site_pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    as_of: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(Text)
    days: Mapped[int | None] = mapped_column(Integer)
    last_day: Mapped[dt.date | None] = mapped_column(Date)
    last_reading_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_register_kwh: Mapped[float | None] = mapped_column(Double)
    signal_level: Mapped[float | None] = mapped_column(Double)
    network: Mapped[str | None] = mapped_column(Text)
    computed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # What a status of new readings continues from (see status.FOLLOWED): the flat run of `last_day`, and the
    # last zero_read_days + 1 reading days with their closing registers, newest first (null: not known here),
    # for the `zero_read_days` stored beside them.
    flat_since: Mapped[dt.date | None] = mapped_column(Date)
    recent_days: Mapped[list[dt.date] | None] = mapped_column(ARRAY(Date))
    recent_kwh: Mapped[list[float] | None] = mapped_column(ARRAY(Double))
    zero_read_days: Mapped[int | None] = mapped_column(SmallInteger)


class Anomaly(Base):
    """An anomaly episode; `end_day` is null while it is still running as of `as_of`."""

    __tablename__ = "anomalies"
    __table_args__ = (Index("ix_anomalies_type_start_day", "type", "start_day"),)

    site_pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    type: Mapped[str] = mapped_column(Text, primary_key=True)
    start_day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    end_day: Mapped[dt.date | None] = mapped_column(Date)
    details: Mapped[dict] = mapped_column(JSONB, server_default="{}")
    as_of: Mapped[dt.date] = mapped_column(Date)
    computed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class MonthlyPerformance(Base):
    """Actual against expected generation of a site in one calendar month.

    A site's current month is rewritten every night it reports: its pages leave room (fillfactor 50,
    migration 0007) so those updates stay HOT.
    """

    __tablename__ = "monthly_performance"
    __table_args__ = (Index("ix_monthly_performance_month", "month"),)

    site_pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    month: Mapped[dt.date] = mapped_column(Date, primary_key=True)  # first day of the month
    actual_kwh: Mapped[float] = mapped_column(Double)
    covered_days: Mapped[int] = mapped_column(SmallInteger)
    expected_kwh: Mapped[float | None] = mapped_column(Double)
    ratio_pct: Mapped[float | None] = mapped_column(Double)
    as_of: Mapped[dt.date] = mapped_column(Date)
    computed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class DailyRollup(Base):
    """Per day totals of the active sites of the fleet (`area = 'fleet'`) and of each region."""

    __tablename__ = "daily_rollups"

    area: Mapped[str] = mapped_column(Text, primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    sites: Mapped[int] = mapped_column(Integer)
    reporting_sites: Mapped[int] = mapped_column(Integer)
    valued_sites: Mapped[int] = mapped_column(Integer)
    estimated_sites: Mapped[int] = mapped_column(Integer)
    readings: Mapped[int] = mapped_column(Integer)
    generation_kwh: Mapped[float] = mapped_column(Double)
    rated_generation_kwh: Mapped[float] = mapped_column(Double)  # of site days with expected generation
    expected_kwh: Mapped[float] = mapped_column(Double)  # their expected share: expected_kwh[month] / days in month
    computed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class FleetSnapshot(Base):
    """A fleet-wide document (quick stats, summaries, analyses) computed at the end of a run."""

    __tablename__ = "fleet_snapshots"

    kind: Mapped[str] = mapped_column(Text, primary_key=True)
    as_of: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    payload: Mapped[dict] = mapped_column(JSONB)
    computed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class FleetRefreshRequest(Base):
    """Fleet rollups and snapshots owed after an incremental recompute, from `from_day` on.

    Written in the recompute's transaction, taken by `lux.compute.fleet_refresh` (a few seconds
    later, for every request pending, so a burst of ingest events costs one refresh) or the sweep.
    """

    __tablename__ = "fleet_refresh_requests"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    requested_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    from_day: Mapped[dt.date] = mapped_column(Date)


class ComputeLock(Base):
    """One row per site, locked by the run recomputing it: one recompute at a time per site."""

    __tablename__ = "compute_locks"

    site_pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)


class ComputeRun(Base):
    """The record of one computation run."""

    __tablename__ = "compute_runs"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    task: Mapped[str] = mapped_column(Text)
    task_id: Mapped[str | None] = mapped_column(Text, unique=True)  # a redelivered task updates its own record
    mode: Mapped[str] = mapped_column(Text)  # incremental | full | rollover | explicit
    as_of: Mapped[dt.date] = mapped_column(Date)
    shard: Mapped[str | None] = mapped_column(Text)  # "k/n"
    sites: Mapped[int | None] = mapped_column(Integer)
    from_day: Mapped[dt.date | None] = mapped_column(Date)
    to_day: Mapped[dt.date | None] = mapped_column(Date)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), index=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    rows_written: Mapped[int | None] = mapped_column(BigInteger)
    outcome: Mapped[str] = mapped_column(Text, server_default="running")  # queued | running | success | failure
    error: Mapped[str | None] = mapped_column(Text)
