"""Write validated readings: a direct COPY when the rows are new, a set-based merge otherwise.

All chunks of one request are written inside one transaction by one `BatchWriter`. The fast path
COPYs straight into `readings` inside a savepoint; any unique violation (a replay, a correction,
a key repeated in the batch) rolls the savepoint back and the rows go through the staging table,
where one statement per step classifies every row as accepted, duplicate, conflict or replaced.
"""

from __future__ import annotations

import datetime as dt
import operator
from dataclasses import dataclass, field

import psycopg

from lux.ingest.batch import Chunk, Rejected
from lux.ingest.rules import Rejection
from lux.ingest.sitekeys import site_keys_for

READING_TYPES = ["int4", "timestamptz", "float8", "int2", "text", "text"]
READING_COLUMNS = "site_pk, reading_at, register_kwh, signal_level, network, meter_serial"
VALUES = "(s.register_kwh, s.signal_level, s.network, s.meter_serial)"
STORED = "(r.register_kwh, r.signal_level, r.network, r.meter_serial)"
# Which field makes two rows with the same key differ (the first that does).
DIFFERS = """CASE WHEN s.register_kwh IS DISTINCT FROM {o}.register_kwh THEN 'register_kwh'
                  WHEN s.signal_level IS DISTINCT FROM {o}.signal_level THEN 'signal_level'
                  WHEN s.network IS DISTINCT FROM {o}.network THEN 'network'
                  ELSE 'meter_serial' END"""

STAGE_DDL = """
CREATE TEMP TABLE IF NOT EXISTS ingest_stage (
    idx int NOT NULL, site_pk int NOT NULL, reading_at timestamptz NOT NULL, register_kwh float8 NOT NULL,
    signal_level int2, network text, meter_serial text, outcome text, differs text
) ON COMMIT DELETE ROWS
"""
# Every statement that writes readings writes them in key order, so two requests sharing keys wait
# for each other in the same order and cannot deadlock.
KEY_ORDER = operator.itemgetter(0, 1)


@dataclass
class Outcome:
    """What happened to every row of a request."""

    received: int = 0
    accepted: int = 0
    duplicate: int = 0
    conflict: int = 0
    replaced: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    conflicts: list[dict] = field(default_factory=list)  # index, field, applied
    dirty: dict[int, dt.datetime] = field(default_factory=dict)  # site_pk → earliest reading written (to recompute)
    sites_by_day: dict[str, list[int]] = field(default_factory=dict)  # earliest local day → site_pks
    journal_id: int | None = None
    left_to_follow: int = 0  # sites written whose status row a run held: the status follow continues them

    def note_written(self, writes) -> None:
        """Fold (site_pk, reading_at, …) rows into the earliest write per site."""
        dirty = self.dirty
        for pk, at, *_ in writes:
            if pk not in dirty or at < dirty[pk]:
                dirty[pk] = at

    def note_written_in_key_order(self, rows: list[tuple]) -> None:
        """`note_written` for rows sorted by key: each site's first row is its earliest (built in C)."""
        earliest = dict(map(KEY_ORDER, reversed(rows)))
        if self.dirty:
            self.note_written(earliest.items())
        else:
            self.dirty = earliest


class BatchWriter:
    """Writes the chunks of one request in the caller's transaction."""

    def __init__(self, conn: psycopg.Connection, *, replace: bool, streaming: bool = False) -> None:
        self.conn = conn
        self.replace = replace
        self.outcome = Outcome()
        self.staged = False
        self.batch_duplicates = streaming  # whether a key may repeat in what was staged
        self.found_stored = False  # whether the direct COPY found a key already stored (a replay, most likely)

    def add(self, chunk: Chunk, received: int, *, last: bool = True) -> None:
        """Write one validated chunk; `last` False means more chunks follow (stage, merge at the end)."""
        self.outcome.received += received
        self.outcome.rejected.extend(chunk.rejected)
        indexes, rows = self._with_site_keys(chunk)
        if not rows:
            return
        if not self.staged and last and not self.replace and self._copy_direct(rows):
            return
        if not self.batch_duplicates:
            self.batch_duplicates = len({(row[0], row[1]) for row in rows}) < len(rows)
        self._stage(indexes, rows)

    def finish(self) -> Outcome:
        """Merge whatever was staged; return the outcome (the caller commits)."""
        if self.staged:
            self._merge()
        return self.outcome

    def _with_site_keys(self, chunk: Chunk) -> tuple[list[int], list[tuple]]:
        """Rows as COPY tuples keyed by the internal site id; unknown sites become rejections."""
        ids = {row[0] for row in chunk.rows}
        known = site_keys_for(self.conn).lookup(self.conn, ids)
        if all(site_id in known for site_id in ids):
            return chunk.indexes, [(known[r[0]], r[1], r[2], r[3], r[4], r[5]) for r in chunk.rows]
        indexes, rows = [], []
        unknown = Rejection("site_id", "unknown_site")
        for index, r in zip(chunk.indexes, chunk.rows, strict=True):
            pk = known.get(r[0])
            if pk is None:
                self.outcome.rejected.append((index, unknown, chunk.raw(index), r[0]))
            else:
                indexes.append(index)
                rows.append((pk, r[1], r[2], r[3], r[4], r[5]))
        return indexes, rows

    def _copy_direct(self, rows: list[tuple]) -> bool:
        """COPY new rows straight into readings; False (and nothing written) if any key exists.

        A replay would fail the COPY at its first row after paying for the setup; probing the first
        and last keys first sends it to the merge at once.
        """
        first, last = rows[0], rows[-1]
        if self.conn.execute(
            "SELECT EXISTS (SELECT 1 FROM readings WHERE (site_pk, reading_at) IN ((%s, %s), (%s, %s)))",
            (first[0], first[1], last[0], last[1]),
        ).fetchone()[0]:
            self.found_stored = True
            return False
        try:
            with self.conn.transaction(), self.conn.cursor() as cur, cur.copy(
                f"COPY readings ({READING_COLUMNS}) FROM STDIN (FORMAT BINARY)"
            ) as copy:
                copy.set_types(READING_TYPES)
                write = copy.write_row
                ordered = sorted(rows, key=KEY_ORDER)
                for row in ordered:
                    write(row)
        except psycopg.errors.UniqueViolation:
            self.found_stored = True
            return False
        self.outcome.accepted += len(rows)
        self.outcome.note_written_in_key_order(ordered)
        return True

    def _stage(self, indexes: list[int], rows: list[tuple]) -> None:
        if not self.staged:
            self.conn.execute(STAGE_DDL)
            self.staged = True
        with self.conn.cursor() as cur, cur.copy(
            f"COPY ingest_stage (idx, {READING_COLUMNS}) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["int4", *READING_TYPES])
            for index, row in zip(indexes, rows, strict=True):
                copy.write_row((index, *row))

    def _merge(self) -> None:
        """Classify and write every staged row with a handful of set-based statements."""
        if self.batch_duplicates:
            self._classify_repeats()
        if self.replace:
            self._classify_against_stored()
            self._upsert()
            self._collect()
        else:
            self._insert_and_classify()

    def _classify_repeats(self) -> None:
        """A key's later rows in the batch are duplicates or conflicts of its first row."""
        self.conn.execute(f"""
            UPDATE ingest_stage s
               SET outcome = CASE WHEN {VALUES} IS NOT DISTINCT FROM (f.register_kwh, f.signal_level, f.network,
                                       f.meter_serial) THEN 'duplicate' ELSE 'conflict' END,
                   differs = {DIFFERS.format(o="f")}
              FROM (SELECT idx, first_value(idx) OVER (PARTITION BY site_pk, reading_at ORDER BY idx) AS first_idx
                      FROM ingest_stage) d
              JOIN ingest_stage f ON f.idx = d.first_idx
             WHERE s.idx = d.idx AND d.idx <> d.first_idx""")

    def _classify_against_stored(self) -> None:
        """Rows whose key is already stored are duplicates (same values) or conflicts."""
        self.conn.execute(f"""
            UPDATE ingest_stage s
               SET outcome = CASE WHEN {VALUES} IS NOT DISTINCT FROM {STORED} THEN 'duplicate' ELSE 'conflict' END,
                   differs = {DIFFERS.format(o="r")}
              FROM readings r
             WHERE r.site_pk = s.site_pk AND r.reading_at = s.reading_at AND s.outcome IS NULL""")

    def _insert_and_classify(self) -> None:
        """Insert the unclassified rows whose key is new, then classify every row against the stored ones.

        When the direct COPY found a stored key (most likely a replay) the rows are classified first, and the
        insert runs only if some key is new: a replay then costs the one classifying query. Rows that were
        staged for other reasons (a stream, a key repeated in the batch) are mostly new: insert first.
        ON CONFLICT DO NOTHING waits for a concurrent writer of the same key to finish, so after the
        insert every key it skipped is committed and visible to the classifying query.
        """
        counted = self._classified() if self.found_stored else None
        if counted is None or "unclassified" in counted:
            self.conn.execute(f"""
                WITH ins AS (
                    INSERT INTO readings ({READING_COLUMNS})
                    SELECT {READING_COLUMNS} FROM ingest_stage WHERE outcome IS NULL ORDER BY site_pk, reading_at
                    ON CONFLICT (site_pk, reading_at) DO NOTHING
                    RETURNING site_pk, reading_at)
                UPDATE ingest_stage s SET outcome = 'accepted'
                  FROM ins WHERE s.site_pk = ins.site_pk AND s.reading_at = ins.reading_at AND s.outcome IS NULL""")
            counted = self._classified()
            if "unclassified" in counted:
                raise RuntimeError("ingest merge left rows unclassified")
        o = self.outcome
        for outcome, (count, conflicts) in counted.items():
            setattr(o, outcome, getattr(o, outcome) + count)
            o.conflicts.extend({"index": i, "field": f, "applied": False} for i, f in conflicts or [])
        o.conflicts.sort(key=lambda c: c["index"])
        if o.accepted:
            self._collect_written()

    def _classified(self) -> dict[str, tuple[int, list | None]]:
        """outcome → (rows, conflicts as [index, field]); staged rows not yet classified whose key is not
        stored count as 'unclassified'."""
        return {outcome: (count, conflicts) for outcome, count, conflicts in self.conn.execute(f"""
            SELECT outcome, count(*), json_agg(json_build_array(idx, differs) ORDER BY idx)
                   FILTER (WHERE outcome = 'conflict')
              FROM (SELECT idx, outcome, differs FROM ingest_stage WHERE outcome IS NOT NULL
                    UNION ALL
                    SELECT s.idx,
                           CASE WHEN r.site_pk IS NULL THEN 'unclassified'
                                WHEN {VALUES} IS NOT DISTINCT FROM {STORED} THEN 'duplicate'
                                ELSE 'conflict' END,
                           {DIFFERS.format(o="r")}
                      FROM ingest_stage s
                      LEFT JOIN readings r ON r.site_pk = s.site_pk AND r.reading_at = s.reading_at
                     WHERE s.outcome IS NULL) AS classified
             GROUP BY outcome""")}

    def _upsert(self) -> None:
        """on_conflict=replace: insert new keys, overwrite conflicting ones, leave duplicates alone."""
        self.conn.execute(f"""
            WITH up AS (
                INSERT INTO readings ({READING_COLUMNS})
                SELECT {READING_COLUMNS} FROM ingest_stage
                 WHERE outcome IS NULL OR (outcome = 'conflict' AND idx IN (
                       SELECT min(idx) FROM ingest_stage GROUP BY site_pk, reading_at))
                 ORDER BY site_pk, reading_at
                ON CONFLICT (site_pk, reading_at) DO UPDATE
                   SET register_kwh = excluded.register_kwh, signal_level = excluded.signal_level,
                       network = excluded.network, meter_serial = excluded.meter_serial
                 WHERE (readings.register_kwh, readings.signal_level, readings.network, readings.meter_serial)
                       IS DISTINCT FROM (excluded.register_kwh, excluded.signal_level, excluded.network,
                                         excluded.meter_serial)
                RETURNING site_pk, reading_at, (xmax = 0) AS inserted)
            UPDATE ingest_stage s SET outcome = CASE WHEN up.inserted THEN 'accepted' ELSE 'replaced' END
              FROM up WHERE s.site_pk = up.site_pk AND s.reading_at = up.reading_at
               AND s.idx = (SELECT min(idx) FROM ingest_stage m
                             WHERE m.site_pk = s.site_pk AND m.reading_at = s.reading_at)""")

    def _collect(self) -> None:
        """Read the classification back: counts, conflicts by index, earliest write per site."""
        counts = dict(self.conn.execute(
            "SELECT outcome, count(*) FROM ingest_stage GROUP BY outcome").fetchall())
        o = self.outcome
        o.accepted += counts.get("accepted", 0)
        o.duplicate += counts.get("duplicate", 0)
        o.conflict += counts.get("conflict", 0)
        o.replaced += counts.get("replaced", 0)
        for index, outcome, differs in self.conn.execute(
            "SELECT idx, outcome, differs FROM ingest_stage WHERE outcome IN ('conflict', 'replaced') ORDER BY idx"
        ):
            o.conflicts.append({"index": index, "field": differs, "applied": outcome == "replaced"})
        self._collect_written()

    def _collect_written(self) -> None:
        """Earliest reading written per site, for the journal."""
        self.outcome.note_written(self.conn.execute(
            "SELECT site_pk, min(reading_at) FROM ingest_stage WHERE outcome IN ('accepted', 'replaced') "
            "GROUP BY site_pk"))

