"""Celery beat schedules, built from settings by pure functions."""
