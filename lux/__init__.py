"""Lux core: configuration, database helpers and everything that is neither HTTP nor Celery."""
