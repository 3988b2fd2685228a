"""Claiming dirty sites for recomputation, by event or by the periodic sweep."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

CLAIM = text("""
    DELETE FROM dirty_sites
     WHERE site_pk IN (
           SELECT site_pk FROM dirty_sites
            WHERE (CAST(:pks AS int[]) IS NULL OR site_pk = ANY(CAST(:pks AS int[])))
              AND marked_at <= now() - make_interval(secs => :older_than)
            ORDER BY site_pk
            LIMIT :limit
              FOR UPDATE SKIP LOCKED)
    RETURNING site_pk, from_day
""")


def claim_dirty_sites(session: Session, site_pks: list[int] | None, *, older_than_s: float = 0.0,
                      limit: int = 100_000) -> dict[int, str]:
    """Take dirty marks off (in the caller's transaction): site_pk → earliest local day to recompute.

    Rows locked by another claimer are skipped, so concurrent claimers never take the same site;
    if the caller's transaction rolls back, the marks come back and the sweep retries them.
    """
    rows = session.execute(CLAIM, {"pks": site_pks, "older_than": older_than_s, "limit": limit})
    return {pk: day.isoformat() for pk, day in rows}
