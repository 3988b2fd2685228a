"""Read queries over the cached results, for the API: one SQL statement per call, never an aggregate.

A page query returns its rows, the total matching the filters and the freshness stamps together,
so a page beyond the end still reports the total.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from lux.compute.snapshots import signal_band_sql
from lux.compute.sqlparts import UNKNOWN, region_sql

PAGE_HEAD = ("SELECT count(*) AS page_total, max(as_of) AS page_as_of, max(computed_at) AS page_computed_at "
             "FROM filtered")


@dataclass(frozen=True)
class Snapshot:
    kind: str
    as_of: dt.date
    computed_at: dt.datetime
    payload: dict[str, Any]


@dataclass(frozen=True)
class Page:
    """Rows of one page, the total matching the filters, and the newest `as_of` / `computed_at` among them."""

    items: list[dict[str, Any]]
    total: int
    as_of: dt.date | None
    computed_at: dt.datetime | None


def _is_unknown(name: str) -> bool:
    return name.strip().upper() in {UNKNOWN.upper(), "TBC", ""}


def _region_condition(region: str) -> str:
    """A condition on `s.region`; `Unknown` (any case) or `TBC` select sites without a region."""
    return "(s.region IS NULL OR btrim(s.region) IN ('TBC', ''))" if _is_unknown(region) else "s.region = :region"


def _where(conditions: list[str]) -> str:
    return " AND ".join(conditions) if conditions else "true"


def _page(session: Session, *, rows: str, order_by: str, binds: dict[str, Any], limit: int, offset: int,
          ctes: str = "", head: str = PAGE_HEAD) -> Page | None:
    """One page of `rows` (SQL selecting the filtered rows) with `head`'s total and stamps; None if `head` is empty."""
    statement = text(f"""
        WITH {ctes} filtered AS ({rows})
        SELECT h.*, p.*
          FROM ({head}) h
          LEFT JOIN LATERAL (SELECT filtered.*, true AS page_row FROM filtered
                              ORDER BY {order_by} LIMIT :limit OFFSET :offset) p ON true
    """)
    result = session.execute(statement, {**binds, "limit": limit, "offset": offset}).mappings().all()
    if not result:
        return None
    head_row = result[0]
    items = [{k: v for k, v in row.items() if not k.startswith("page_")} for row in result if row["page_row"]]
    return Page(items=items, total=int(head_row["page_total"]), as_of=head_row["page_as_of"],
                computed_at=head_row["page_computed_at"])


def _listing(session: Session, **query: Any) -> Page:
    """`_page` with the default head, which always yields its one row."""
    page = _page(session, **query)
    assert page is not None
    return page


def get_snapshot(session: Session, kind: str, as_of: dt.date | None = None) -> Snapshot | None:
    """The snapshot of `kind` for `as_of`, or the latest one when `as_of` is None."""
    condition = "" if as_of is None else "AND as_of = :as_of"
    row = session.execute(text(f"""
        SELECT kind, as_of, computed_at, payload FROM fleet_snapshots
         WHERE kind = :kind {condition} ORDER BY as_of DESC LIMIT 1
    """), {"kind": kind, "as_of": as_of}).mappings().first()
    return None if row is None else Snapshot(**row)


def communication_status(session: Session, site_id: str) -> dict[str, Any] | None:
    """The site's status row (status fields null when not computed yet); None for an unknown site."""
    row = session.execute(text(f"""
        SELECT s.site_id, st.status, st.days, st.last_day, st.last_reading_at, st.last_register_kwh,
               st.signal_level, {signal_band_sql("st.signal_level")} AS signal_quality, st.network,
               st.as_of, st.computed_at
          FROM sites s LEFT JOIN site_status st ON st.site_pk = s.id
         WHERE s.site_id = :site_id
    """), {"site_id": site_id}).mappings().first()
    return None if row is None else dict(row)


def site_days(session: Session, site_id: str, *, limit: int, offset: int, from_day: dt.date | None = None,
              to_day: dt.date | None = None, as_of: dt.date | None = None) -> Page | None:
    """A page of the site's days in date order; None for an unknown site.

    With `as_of`, only days whose value was settled by then (`segment_end ≤ as_of`). The page's
    `as_of` is the one asked for, else the site's latest computed as-of; `computed_at` is the
    site's last computation.
    """
    filters = {"from_day": "sd.day >= :from_day", "to_day": "sd.day <= :to_day", "as_of": "sd.segment_end <= :as_of"}
    binds = {"site_id": site_id, "from_day": from_day, "to_day": to_day, "as_of": as_of}
    conditions = [sql for name, sql in filters.items() if binds[name] is not None]
    return _page(
        session,
        ctes="site AS (SELECT s.id, st.as_of, st.computed_at FROM sites s "
             "LEFT JOIN site_status st ON st.site_pk = s.id WHERE s.site_id = :site_id),",
        rows=f"""SELECT sd.day, sd.generation_kwh, sd.estimated, sd.rollback, sd.segment_end, sd.closing_at,
                        sd.closing_kwh, sd.network, sd.readings,
                        CASE WHEN sd.signal_n > 0 THEN sd.signal_sum::float8 / sd.signal_n END AS signal_level
                   FROM site_days sd JOIN site ON site.id = sd.site_pk
                  WHERE {_where(conditions)}""",
        head=f"SELECT (SELECT count(*) FROM filtered) AS page_total, "
             f"{'CAST(:as_of AS date)' if as_of else 'site.as_of'} AS page_as_of, "
             "site.computed_at AS page_computed_at FROM site",
        order_by="day", binds=binds, limit=limit, offset=offset,
    )


def connection_sites(session: Session, *, limit: int, offset: int, region: str | None = None,
                     network: str | None = None, status: str | None = None, quality: str | None = None) -> Page:
    """A page of active sites with a computed status: region, network, signal level and band, status.

    `network=Unknown` selects sites whose latest reading named no network.
    """
    conditions = ["s.active"]
    if network is not None:
        conditions.append("st.network IS NULL" if _is_unknown(network) else "st.network = :network")
    if status is not None:
        conditions.append("st.status = :status")
    if region is not None:
        conditions.append(_region_condition(region))
    return _listing(
        session,
        rows=f"""SELECT * FROM (
                   SELECT s.site_id, {region_sql("s.region")} AS region, st.network, st.signal_level,
                          {signal_band_sql("st.signal_level")} AS quality, st.status, st.days, st.last_reading_at,
                          st.as_of, st.computed_at
                     FROM sites s JOIN site_status st ON st.site_pk = s.id
                    WHERE {_where(conditions)}) c
                  WHERE {"quality = :quality" if quality is not None else "true"}""",
        order_by="site_id", binds={"region": region, "network": network, "status": status, "quality": quality},
        limit=limit, offset=offset,
    )


ANOMALY_FILTERS = {
    "site_id": "s.site_id = :site_id",
    "type": "an.type = :type",
    "start": "(an.end_day IS NULL OR an.end_day >= :start)",
    "end": "an.start_day <= :end",
}


def anomalies(session: Session, *, limit: int, offset: int, site_id: str | None = None, type: str | None = None,
              region: str | None = None, open: bool | None = None, start: dt.date | None = None,
              end: dt.date | None = None) -> Page:
    """A page of anomaly episodes, newest first; `start`/`end` keep episodes overlapping that range."""
    binds = {"site_id": site_id, "type": type, "start": start, "end": end, "region": region}
    conditions = [sql for name, sql in ANOMALY_FILTERS.items() if binds[name] is not None]
    if region is not None:
        conditions.append(_region_condition(region))
    if open is not None:
        conditions.append("an.end_day IS NULL" if open else "an.end_day IS NOT NULL")
    return _listing(
        session,
        rows=f"""SELECT s.site_id, {region_sql("s.region")} AS region, an.type, an.start_day, an.end_day,
                        an.end_day IS NULL AS open, an.details, an.as_of, an.computed_at
                   FROM anomalies an JOIN sites s ON s.id = an.site_pk
                  WHERE {_where(conditions)}""",
        order_by="start_day DESC, site_id, type", binds=binds, limit=limit, offset=offset,
    )


PERFORMANCE_FILTERS = {
    "site_id": "s.site_id = :site_id",
    "from_month": "mp.month >= :from_month",
    "to_month": "mp.month <= :to_month",
}


def performance(session: Session, *, limit: int, offset: int, region: str | None = None, site_id: str | None = None,
                from_month: dt.date | None = None, to_month: dt.date | None = None,
                performance_threshold: float | None = None) -> Page:
    """A page of monthly performance rows (by site, then month), each with its site's summary over the range.

    The summary (`range_*`) covers every month of the site in the range, before the threshold
    filter; its ratio is energy-weighted over months with expected generation.
    `performance_threshold` keeps only months whose ratio is below it.
    """
    binds = {"region": region, "site_id": site_id, "from_month": from_month, "to_month": to_month,
             "threshold": performance_threshold}
    conditions = [sql for name, sql in PERFORMANCE_FILTERS.items() if binds[name] is not None]
    if region is not None:
        conditions.append(_region_condition(region))
    return _listing(
        session,
        ctes=f"""ranged AS (
                   SELECT s.site_id, s.name, {region_sql("s.region")} AS region, s.capacity_kwp, mp.site_pk, mp.month,
                          mp.actual_kwh, mp.covered_days, mp.expected_kwh, mp.ratio_pct, mp.as_of, mp.computed_at
                     FROM monthly_performance mp JOIN sites s ON s.id = mp.site_pk
                    WHERE {_where(conditions)}),
                 summarised AS (
                   SELECT ranged.*, sum(actual_kwh) OVER w AS range_actual_kwh,
                          sum(expected_kwh) OVER w AS range_expected_kwh,
                          100 * sum(actual_kwh) FILTER (WHERE expected_kwh IS NOT NULL) OVER w
                              / NULLIF(sum(expected_kwh) OVER w, 0) AS range_ratio_pct,
                          count(*) OVER w AS range_months
                     FROM ranged WINDOW w AS (PARTITION BY site_pk)),""",
        rows=f"""SELECT * FROM summarised
                  WHERE {"ratio_pct < :threshold" if performance_threshold is not None else "true"}""",
        order_by="site_id, month", binds=binds, limit=limit, offset=offset,
    )
