"""Retention cleanup through a real worker: expired rejects and run records go; recent ones and readings stay."""

from sqlalchemy import text


def test_cleanup_deletes_only_expired_rejects_and_runs(celery_worker, database):
    from worker.tasks.maintenance import cleanup

    with database.engine.begin() as conn:
        conn.execute(text("""
            INSERT INTO ingest_rejects (received_at, request_id, row_index, reason, message, raw)
            VALUES (now() - interval '31 days', 'old', 0, 'future', 'm', '{}'),
                   (now() - interval '29 days', 'recent', 0, 'future', 'm', '{}')"""))
        conn.execute(text("""
            INSERT INTO compute_runs (task, task_id, mode, as_of, started_at, outcome)
            VALUES ('lux.compute.shard', 'old', 'full', '2026-01-01', now() - interval '91 days', 'success'),
                   ('lux.compute.shard', 'recent', 'full', '2026-01-01', now() - interval '89 days', 'success')"""))
        conn.execute(text("INSERT INTO readings (site_pk, reading_at, register_kwh) "
                          "VALUES (1, now() - interval '5 years', 1)"))
    assert cleanup.delay().get(timeout=30) == {"ingest_rejects": 1, "compute_runs": 1}
    with database.engine.connect() as conn:
        assert conn.execute(text("SELECT request_id FROM ingest_rejects")).scalars().all() == ["recent"]
        assert conn.execute(text("SELECT task_id FROM compute_runs")).scalars().all() == ["recent"]
        assert conn.execute(text("SELECT count(*) FROM readings")).scalar_one() == 1
    assert cleanup.delay().get(timeout=30) == {"ingest_rejects": 0, "compute_runs": 0}
