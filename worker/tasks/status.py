"""Status queue task: the communication status of the sites of new readings that their ingest left, ahead of their
recompute.

An ingest continues its sites' statuses in its own transaction, but leaves those whose status row a recompute held
(lux.ingest); the recompute of the same sites (`lux.ingest.process_events`) rebuilds every result and may wait
behind a backlog. This task has a queue and worker of its own, so those sites' new readings show in their statuses
first.
"""

from __future__ import annotations

import logging
import time

import redis

from lux.compute.modes import run_follow
from worker.app import celery_app
from worker.base import LuxTask

log = logging.getLogger(__name__)

FOLLOW_RETRY_S = 0.5  # a follow that left sites held sends the next one this long after, unless one is pending

# One follow waits at a time, however many batches commit meanwhile: the API sends a follow only when it sets this
# key (`follow_wanted`), and a follow clears it before it takes the journal entries, so a batch committed before the
# clearing is in that follow and one committed after sends the next. The key expires, so a lost follow holds back
# the statuses of later batches for a minute at most (their recompute writes them in any case); while a follow
# waits longer than that, one more is sent each time the key expires.
PENDING_KEY = "lux:status:follow-pending"
PENDING_TTL_S = 60


def follow_wanted(client: redis.Redis) -> bool:
    """Mark a follow pending; True when none was, and the caller is to send one."""
    return bool(client.set(PENDING_KEY, 1, nx=True, ex=PENDING_TTL_S))


@celery_app.task(bind=True, base=LuxTask, name="lux.status.follow", ignore_result=True)
def follow(self: LuxTask) -> dict:
    """Write the status of the sites left to follow of every journal entry since the last follow, continued from their
    stored statuses by their new readings. One follow takes a whole burst, and one waits at a time (`PENDING_KEY`).
    Sites whose status row a recompute is writing are kept for the next follow, which is sent shortly unless one is
    pending already (the recompute writes their status too)."""
    client = self.app.backend.client
    client.delete(PENDING_KEY)
    started = time.perf_counter()
    result = run_follow(self.app.lux_database)
    if result["held"] and follow_wanted(client):
        follow.apply_async(countdown=FOLLOW_RETRY_S)
    log.info("task=%s sites=%s written=%s held=%s seconds=%.3f", self.name, result["sites"], result["written"],
             result["held"], time.perf_counter() - started)
    return result
