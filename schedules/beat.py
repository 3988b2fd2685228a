"""The beat schedule as data: `build_beat_schedule(settings)` returns the dict Celery reads."""

from __future__ import annotations

from celery.schedules import crontab

from lux.config import Settings


def build_beat_schedule(settings: Settings) -> dict:
    """Periodic tasks, with crontabs in the fleet time zone (Celery's `timezone` setting)."""
    return {
        "ingest-sweep": {
            "task": "lux.ingest.sweep",
            "schedule": crontab(minute="*"),
            "kwargs": {"older_than_s": 30},
            "options": {"expires": 55},
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
