"""Reading back rejected rows."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import IngestReject


def list_rejects(session: Session, *, timezone: str, limit: int, offset: int, site_id: str | None = None,
                 reason: str | None = None, request_id: str | None = None,
                 date: dt.date | None = None) -> tuple[list[IngestReject], int]:
    """A page of rejects, newest first, and the total matching the filters."""
    query = select(IngestReject)
    if site_id is not None:
        query = query.where(IngestReject.site_id == site_id)
    if reason is not None:
        query = query.where(IngestReject.reason == reason)
    if request_id is not None:
        query = query.where(IngestReject.request_id == request_id)
    if date is not None:
        local_day = func.date(func.timezone(timezone, IngestReject.received_at))
        query = query.where(local_day == date)
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    items = session.scalars(query.order_by(IngestReject.id.desc()).limit(limit).offset(offset)).all()
    return list(items), int(total or 0)
