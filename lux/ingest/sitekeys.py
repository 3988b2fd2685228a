"""site_id → internal site key, cached per process and database.

A key never changes while its site exists, and sites are deactivated, not deleted. Only a
DELETE, a TRUNCATE or a change of site_id (none of which Lux's API does) could make a cached key
wrong; each bumps the `sites_generation` sequence, and a changed generation empties the cache.
Only hits are cached: a site registered a moment ago is always looked up.
"""

from __future__ import annotations

import threading

import psycopg


class SiteKeys:
    """The cache for one database."""

    def __init__(self) -> None:
        self.generation: tuple | None = None
        self.keys: dict[str, int] = {}

    def lookup(self, conn: psycopg.Connection, ids: set[str]) -> dict[str, int]:
        """A mapping holding the key of every known site among `ids` (and possibly others)."""
        generation = conn.execute("SELECT last_value, is_called FROM sites_generation").fetchone()
        if generation != self.generation:
            self.keys = {}
            self.generation = generation
        keys = self.keys
        missing = [site_id for site_id in ids if site_id not in keys]
        if missing:
            keys.update(conn.execute(
                "SELECT site_id, id FROM sites WHERE site_id = ANY(string_to_array(%s, ','))",  # ids hold no comma
                (",".join(missing),)).fetchall())
        return keys


_caches: dict[tuple, SiteKeys] = {}
_lock = threading.Lock()


def site_keys_for(conn: psycopg.Connection) -> SiteKeys:
    """The cache of the database `conn` is connected to."""
    info = conn.info
    identity = (info.host, info.port, info.dbname)
    with _lock:
        return _caches.setdefault(identity, SiteKeys())
