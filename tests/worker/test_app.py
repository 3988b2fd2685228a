"""The Celery app: queues, routing, reliability settings, and tasks run by a real worker."""

import pytest
from kombu import Queue

from worker.app import QUEUES, celery_config


def test_queues_and_routing_by_name_prefix(celery_app):
    assert {q.name for q in celery_app.conf.task_queues} == {"status", "ingest", "compute", "maintenance"}
    router = celery_app.amqp.router
    for queue in QUEUES:
        assert router.route({}, f"lux.{queue}.anything")["queue"].name == queue


def test_every_lux_task_is_idempotent_acks_late_and_named(celery_app):
    tasks = {name: task for name, task in celery_app.tasks.items() if name.startswith("lux.")}
    assert tasks, "no Lux task is registered"
    for name, task in tasks.items():
        assert name.split(".")[1] in QUEUES, name
        assert task.acks_late and task.reject_on_worker_lost, name


def test_flower_sees_everything(settings):
    config = celery_config(settings)
    assert config["worker_send_task_events"] and config["task_send_sent_event"] and config["task_track_started"]
    assert config["timezone"] == settings.timezone
    assert config["broker_url"] == settings.redis_url
    assert all(isinstance(q, Queue) for q in config["task_queues"])


def test_selfcheck_runs_in_a_real_worker(celery_app, celery_worker, database):
    from worker.tasks.maintenance import selfcheck

    with database.raw_connection() as conn:
        conn.execute("INSERT INTO sites (site_id, name, capacity_kwp, active) VALUES "
                     "('A', 'a', 3, true), ('B', 'b', 4, false)")
        conn.execute("INSERT INTO readings (site_pk, reading_at, register_kwh) "
                     "SELECT id, now(), 1 FROM sites")
    result = selfcheck.delay()
    assert result.get(timeout=30) == {"schema_at_head": True, "sites": 2, "active_sites": 1, "readings": 2}
    assert result.state == "SUCCESS"


def test_worker_failure_is_reported_not_swallowed(celery_app, celery_worker, database):
    """A task whose database is gone fails visibly (state FAILURE), it does not return a made-up answer."""
    from worker.tasks.maintenance import selfcheck

    with database.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE readings RENAME TO readings_away")
    try:
        result = selfcheck.delay()
        with pytest.raises(Exception, match="readings"):
            result.get(timeout=30)
        assert result.state == "FAILURE"
    finally:
        with database.engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE readings_away RENAME TO readings")
