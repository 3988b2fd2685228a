"""The Celery app, configured from Lux settings: queues, routes, events for Flower, beat."""

from __future__ import annotations

from celery import Celery
from celery.signals import worker_process_init
from kombu import Exchange, Queue

from lux.config import Settings
from lux.db import Database
from lux.logging import configure_logging
from schedules.beat import build_beat_schedule

QUEUES = ("status", "ingest", "compute", "maintenance")
TASK_MODULES = ("worker.tasks.status", "worker.tasks.ingest", "worker.tasks.compute", "worker.tasks.maintenance")


def celery_config(settings: Settings) -> dict:
    """Celery settings derived from Lux settings."""
    return {
        "broker_url": settings.redis_url,
        "result_backend": settings.redis_url,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {"visibility_timeout": 3600},
        "task_queues": [Queue(name, Exchange(name), routing_key=name) for name in QUEUES],
        "task_default_queue": "maintenance",
        "task_routes": {f"lux.{name}.*": {"queue": name, "routing_key": name} for name in QUEUES},
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_expires": 7 * 24 * 3600,
        "result_extended": True,
        "task_track_started": True,
        "task_send_sent_event": True,
        "worker_send_task_events": True,
        "worker_prefetch_multiplier": 1,
        "timezone": settings.timezone,
        "enable_utc": True,
        "beat_schedule": build_beat_schedule(settings),
    }


def configure(app: Celery, settings: Settings) -> None:
    """(Re)configure `app` for `settings` and give it the Database its tasks use."""
    app.conf.update(celery_config(settings))
    app.lux_settings = settings
    app.lux_database = Database(settings)


def create_celery(settings: Settings) -> Celery:
    """Build the Celery app for `settings`; the task modules register themselves on import."""
    app = Celery("lux", include=list(TASK_MODULES))
    configure(app, settings)
    return app


@worker_process_init.connect
def _after_fork(**_kwargs) -> None:
    """A forked pool process must not reuse the parent's database connections."""
    celery_app.lux_database.dispose_after_fork()


_settings = Settings.from_env()
configure_logging(_settings.log_level)
celery_app = create_celery(_settings)
