"""What a worker reports when asked whether it can do its job."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lux.migrate import is_at_head
from models import Reading, Site


def run_selfcheck(session: Session) -> dict:
    """Schema revision status and fleet counts, read through the caller's session."""
    return {
        "schema_at_head": is_at_head(session.get_bind()),
        "sites": session.scalar(select(func.count()).select_from(Site)),
        "active_sites": session.scalar(select(func.count()).select_from(Site).where(Site.active)),
        "readings": session.scalar(select(func.count()).select_from(Reading)),
    }
