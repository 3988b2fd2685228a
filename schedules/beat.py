"""The beat schedule as data: `build_beat_schedule(settings)` returns the dict Celery reads."""

from __future__ import annotations

from celery.schedules import crontab

from lux.config import Settings


def build_beat_schedule(settings: Settings) -> dict:
    """Periodic tasks, with crontabs in the fleet time zone (Celery's `timezone` setting).

    Every minute the sweep recomputes sites whose ingest event was lost; just after midnight the
    rollover moves every status and running episode to the new day; at 05:00, after the morning
    reads, the full recompute rebuilds the fleet in shards as a safety net.
    """
    return {
        "ingest-sweep": {
            "task": "lux.ingest.sweep",
            "schedule": crontab(minute="*"),
            "kwargs": {"older_than_s": 30},
            "options": {"expires": 55},
        },
        "compute-rollover": {
            "task": "lux.compute.rollover",
            "schedule": crontab(hour=0, minute=5),
            "options": {"expires": 3 * 3600},
        },
        "compute-full": {
            "task": "lux.compute.full",
            "schedule": crontab(hour=5, minute=0),
            "options": {"expires": 3 * 3600},
        },
        "retention-cleanup": {
            "task": "lux.maintenance.cleanup",
            "schedule": crontab(hour=3, minute=30),
            "options": {"expires": 3600},
        },
        "worker-selfcheck": {
            "task": "lux.maintenance.selfcheck",
            "schedule": crontab(minute="*/5"),
            "options": {"expires": 4 * 60},
        },
    }
