"""Lux's Celery app and tasks. Imports `lux` and `models`, never `api`."""
