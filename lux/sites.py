"""Site registry: create, update, deactivate, list and bulk import (set-based upsert)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from lux.ingest.journal import mark_dirty
from models import Site

SITE_FIELDS = (
    "site_id", "name", "postcode", "region", "latitude", "longitude", "capacity_kwp", "install_date", "active",
)
# What cached results are computed from: the region (rollups, analyses), the capacity (spike episodes) and whether
# the site is active (every fleet and region figure covers active sites only). A change journals the site for a
# recompute from its first day, whose fleet refresh rebuilds the rollups and snapshots it changed.
RESULT_FIELDS = ("region", "capacity_kwp", "active")


class SiteExists(Exception):
    """A site with this site_id is already registered."""


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int
    unchanged: int
    journal_id: int | None = None  # the journal entry of the updated sites whose RESULT_FIELDS changed, if any
    recomputed: tuple[int, ...] = ()  # those sites' pks


@dataclass(frozen=True)
class Updated:
    """A site after an update, and the journal entry of its recompute when a RESULT_FIELDS value changed."""

    site: Site
    journal_id: int | None


def get_site(session: Session, site_id: str) -> Site | None:
    """The site with external key `site_id`, or None."""
    return session.scalar(select(Site).where(Site.site_id == site_id))


def site_pks_of(session: Session, site_ids: Sequence[str]) -> dict[str, int]:
    """The internal keys of those of `site_ids` that exist: site_id → id."""
    rows = session.execute(select(Site.site_id, Site.id).where(Site.site_id.in_(list(set(site_ids)))))
    return {site_id: pk for site_id, pk in rows}


def list_sites(
    session: Session, *, region: str | None, active: bool | None, limit: int, offset: int
) -> tuple[list[Site], int]:
    """A page of sites ordered by site_id, and the total matching the filters."""
    query = select(Site)
    if region is not None:
        query = query.where(Site.region.is_(None) if region == "unknown" else Site.region == region)
    if active is not None:
        query = query.where(Site.active.is_(active))
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    items = session.scalars(query.order_by(Site.site_id).limit(limit).offset(offset)).all()
    return list(items), int(total or 0)


def create_site(session: Session, fields: dict[str, Any]) -> Site:
    """Register a new site; raises SiteExists if the site_id is taken, also by a registration committed meanwhile
    (the insert itself decides, not an earlier look-up)."""
    site = session.scalar(insert(Site).values(**fields).on_conflict_do_nothing(index_elements=[Site.site_id])
                          .returning(Site))
    if site is None:
        session.rollback()
        raise SiteExists(fields["site_id"])
    session.commit()
    return site


def update_site(session: Session, site: Site, fields: dict[str, Any]) -> Updated:
    """Apply a partial update to a site; one that changes a RESULT_FIELDS value journals the site for its
    recompute in the same transaction."""
    results_change = any(name in RESULT_FIELDS and getattr(site, name) != value for name, value in fields.items())
    for name, value in fields.items():
        setattr(site, name, value)
    site.updated_at = func.now()
    journal_id = mark_dirty(session, [site.id], reason=f"site:{site.id}") if results_change else None
    session.commit()
    session.refresh(site)
    return Updated(site, journal_id)


def import_sites(session: Session, rows: Sequence[dict[str, Any]]) -> ImportResult:
    """Upsert validated site rows by site_id in one statement; re-importing changes nothing. Rows are written in
    site_id order, so imports of overlapping sites running at once wait for each other instead of deadlocking.
    Updated sites whose RESULT_FIELDS values changed are journalled for their recompute, in the same transaction."""
    columns = ", ".join(SITE_FIELDS)
    changed = " OR ".join(f"sites.{c} IS DISTINCT FROM excluded.{c}" for c in SITE_FIELDS[1:])
    updates = ", ".join(f"{c} = excluded.{c}" for c in SITE_FIELDS[1:])
    results = ", ".join(RESULT_FIELDS)
    statement = text(
        f"""
        WITH incoming AS (SELECT * FROM jsonb_populate_recordset(NULL::sites, CAST(:rows AS jsonb))),
        before AS (SELECT s.id, {", ".join(f"s.{c}" for c in RESULT_FIELDS)} FROM sites s
                    WHERE s.site_id IN (SELECT site_id FROM incoming)),
        upserted AS (
            INSERT INTO sites ({columns})
            SELECT {columns} FROM incoming ORDER BY site_id
            ON CONFLICT (site_id) DO UPDATE SET {updates}, updated_at = now() WHERE {changed}
            RETURNING id, (xmax = 0) AS inserted, {results})
        SELECT u.id, u.inserted, ({", ".join(f"b.{c}" for c in RESULT_FIELDS)}) IS DISTINCT FROM
                                 ({", ".join(f"u.{c}" for c in RESULT_FIELDS)}) AS results_change
          FROM upserted u LEFT JOIN before b ON b.id = u.id
        """
    )
    payload = [{name: _jsonable(row.get(name)) for name in SITE_FIELDS} for row in rows]
    written = session.execute(statement, {"rows": json.dumps(payload)}).all()
    recompute = sorted(r.id for r in written if not r.inserted and r.results_change)
    journal_id = mark_dirty(session, recompute, reason="sites-import") if recompute else None
    session.commit()
    created = sum(r.inserted for r in written)
    updated = len(written) - created
    return ImportResult(created=created, updated=updated, unchanged=len(rows) - created - updated,
                        journal_id=journal_id, recomputed=tuple(recompute))


def _jsonable(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value
