"""Tasks the API sends (the post-commit ingest event, operators' runs) through its own broker connections."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import kombu
import redis
from celery import Task
from celery.result import AsyncResult
from flask import Flask, current_app, g

from lux.config import Settings
from lux.ingest.journal import BEFORE_ANY_READING, journal_event
from worker.tasks.ingest import process_events
from worker.tasks.status import PENDING_KEY, follow, follow_wanted

log = logging.getLogger(__name__)


def register_events(app: Flask, settings: Settings) -> None:
    """A small pool of broker connections that fail fast when Redis is down."""
    connection = kombu.Connection(
        settings.redis_url, connect_timeout=2,
        transport_options={"socket_connect_timeout": 2, "socket_timeout": 5, "max_retries": 0},
    )
    app.extensions["lux_broker"] = connection.Pool(limit=16)


def send_task(task: Task, *args: object, **options: object) -> AsyncResult:
    """Send `task` through the API's broker pool: raises at once (no retries) if Redis is unreachable."""
    with current_app.extensions["lux_broker"].acquire(block=True, timeout=2) as connection:
        return task.apply_async(args, connection=connection, retry=False, **options)


def emit_ingest_event(event: dict | None, *, follow_left: bool) -> str:
    """Send the event to the ingest queue (the recompute of its sites) and, when the request left sites to follow
    (`follow_left`: their status rows were held by a run), a follow to the status queue unless one is pending (either
    takes the statuses of those sites and of every batch's before);
    'queued', 'deferred' (broker unreachable: the sweep will pick it up) or 'none'."""
    if event is None:
        return "none"
    days = event["sites_by_day"]
    sites = sum(len(pks) for pks in days.values())
    try:
        if follow_left:
            _send_follow(current_app.extensions["lux_redis"])
        send_task(process_events, event, ignore_result=True,
                  argsrepr=f"request_id={event['request_id']} sites={sites} from={min(days)}")
    except Exception as error:  # any broker failure: readings and journal entry are committed; the sweep finds it
        log.warning("event=deferred request_id=%s sites=%s error=%s", event["request_id"], sites,
                    type(error).__name__)
        return "deferred"
    return "queued"


def emit_recompute(journal_id: int | None, site_pks: Sequence[int]) -> str:
    """Send the event of a journal entry that names sites to recompute from their first day without new readings
    (`mark_dirty`'s: changed expected generation, a site's region, capacity or activity); 'none' without one."""
    if journal_id is None:
        return "none"
    return emit_ingest_event(journal_event(g.request_id, journal_id, {BEFORE_ANY_READING.isoformat(): list(site_pks)}),
                             follow_left=False)


def _send_follow(client: redis.Redis) -> None:
    """Send a follow unless one is pending; a send that fails clears the mark it set, so that the next batch that
    leaves sites to follow sends one instead of waiting for the mark to expire."""
    if not follow_wanted(client):
        return
    try:
        send_task(follow, ignore_result=True)
    except Exception:
        client.delete(PENDING_KEY)
        raise
