"""Site registry: create, update, deactivate, list and bulk import (set-based upsert)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from models import Site

SITE_FIELDS = (
    "site_id", "name", "postcode", "region", "latitude", "longitude", "capacity_kwp", "install_date", "active",
)


class SiteExists(Exception):
    """A site with this site_id is already registered."""


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int
    unchanged: int


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


def update_site(session: Session, site: Site, fields: dict[str, Any]) -> Site:
    """Apply a partial update to a site."""
    for name, value in fields.items():
        setattr(site, name, value)
    site.updated_at = func.now()
    session.commit()
    session.refresh(site)
    return site


def import_sites(session: Session, rows: Sequence[dict[str, Any]]) -> ImportResult:
    """Upsert validated site rows by site_id in one statement; re-importing changes nothing. Rows are written in
    site_id order, so imports of overlapping sites running at once wait for each other instead of deadlocking."""
    columns = ", ".join(SITE_FIELDS)
    changed = " OR ".join(f"sites.{c} IS DISTINCT FROM excluded.{c}" for c in SITE_FIELDS[1:])
    updates = ", ".join(f"{c} = excluded.{c}" for c in SITE_FIELDS[1:])
    statement = text(
        f"""
        INSERT INTO sites ({columns})
        SELECT {columns} FROM jsonb_populate_recordset(NULL::sites, CAST(:rows AS jsonb)) ORDER BY site_id
        ON CONFLICT (site_id) DO UPDATE SET {updates}, updated_at = now() WHERE {changed}
        RETURNING (xmax = 0) AS inserted
        """
    )
    payload = [{name: _jsonable(row.get(name)) for name in SITE_FIELDS} for row in rows]
    inserted = [r.inserted for r in session.execute(statement, {"rows": json.dumps(payload)})]
    session.commit()
    created = sum(inserted)
    updated = len(inserted) - created
    return ImportResult(created=created, updated=updated, unchanged=len(rows) - created - updated)


def _jsonable(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value
