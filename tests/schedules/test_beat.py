"""The beat schedule is data: every entry names a registered task and runs in the fleet time zone."""

from celery.schedules import crontab

from schedules.beat import build_beat_schedule


def test_every_entry_names_a_registered_task_and_expires(settings, celery_app):
    schedule = build_beat_schedule(settings)
    assert schedule
    for name, entry in schedule.items():
        assert entry["task"] in celery_app.tasks, name
        assert entry["options"]["expires"] > 0, name


def test_app_uses_the_schedule_in_the_fleet_time_zone(settings, celery_app):
    assert set(celery_app.conf.beat_schedule) == set(build_beat_schedule(settings))
    assert str(celery_app.timezone) == settings.timezone
    entry = celery_app.conf.beat_schedule["worker-selfcheck"]
    assert isinstance(entry["schedule"], crontab)


def test_other_fleet_time_zone_changes_the_app_clock(settings):
    from worker.app import celery_config

    assert celery_config(settings.with_changes(timezone="Europe/Madrid"))["timezone"] == "Europe/Madrid"
