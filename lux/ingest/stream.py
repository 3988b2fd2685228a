"""Chunked parsing of streamed CSV and NDJSON bodies: one chunk of rows in memory at a time."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Iterator
from typing import Any

import msgspec

from lux.ingest.batch import Chunk, MalformedBatch, decode_json_array, validate
from lux.ingest.rules import Rejection

CSV_COLUMNS = ("site_id", "reading_at", "register_kwh", "signal_level", "network", "meter_serial")
_any = msgspec.json.Decoder()


class BadStreamHeader(ValueError):
    """The CSV header lacks a required column."""


def _chunks_of(lines: Iterable[bytes], size: int) -> Iterator[list[bytes]]:
    batch: list[bytes] = []
    for line in lines:
        if line.strip():
            batch.append(line.rstrip(b"\r\n"))
            if len(batch) == size:
                yield batch
                batch = []
    if batch:
        yield batch


def ndjson_chunks(lines: Iterable[bytes], size: int, now: dt.datetime) -> Iterator[tuple[Chunk, int]]:
    """NDJSON: each chunk decoded as one JSON array (the fast path), line by line only if that fails."""
    offset = 0
    for batch in _chunks_of(lines, size):
        texts = [line.decode("utf-8", errors="replace") for line in batch]
        try:
            values, typed = decode_json_array(b"[" + b",".join(batch) + b"]")
            if len(values) != len(batch):  # a line held more than one value: decode line by line
                raise MalformedBatch("line count mismatch")
            chunk = validate(values, typed, offset, now, texts.__getitem__)
        except MalformedBatch:
            chunk = _line_by_line(batch, texts, offset, now)
        yield chunk, len(batch)
        offset += len(batch)


def _line_by_line(batch: list[bytes], texts: list[str], offset: int, now: dt.datetime) -> Chunk:
    values: list[Any] = []
    bad: list[int] = []
    for position, line in enumerate(batch):
        try:
            values.append(_any.decode(line))
        except (msgspec.DecodeError, msgspec.ValidationError):
            values.append(None)
            bad.append(position)
    chunk = validate(values, False, offset, now, texts.__getitem__)
    bad_indexes = {offset + position for position in bad}
    chunk.rejected = [r for r in chunk.rejected if r[0] not in bad_indexes]
    for position in bad:
        chunk.reject(offset + position, Rejection(None, "malformed_json"), None)
    return chunk


def csv_chunks(lines: Iterable[bytes], size: int, now: dt.datetime) -> Iterator[tuple[Chunk, int]]:
    """CSV with a header naming the columns; numbers are parsed, empty cells are missing values."""
    iterator = iter(lines)
    header_line = next((line for line in iterator if line.strip()), b"")
    header = _line_cells(header_line.decode("utf-8", errors="replace")) or []
    missing = [c for c in ("site_id", "reading_at", "register_kwh") if c not in header]
    if missing:
        raise BadStreamHeader(f"The CSV header must name the columns {', '.join(CSV_COLUMNS)}; missing: "
                              f"{', '.join(missing)}.")
    offset = 0
    for batch in _chunks_of(iterator, size):
        texts = [line.decode("utf-8", errors="replace") for line in batch]
        values = [_csv_row(header, row) for row in _csv_cells(texts)]
        chunk = validate([v if v is not None else {} for v in values], False, offset, now, texts.__getitem__)
        malformed = {offset + i for i, v in enumerate(values) if v is None}
        if malformed:
            chunk.rejected = [r for r in chunk.rejected if r[0] not in malformed]
            for index in sorted(malformed):
                chunk.reject(index, Rejection(None, "malformed_csv"), None)
        yield chunk, len(batch)
        offset += len(batch)


def _csv_cells(texts: list[str]) -> list[list[str] | None]:
    """The cells of each line (None for a line csv cannot read): the chunk in one pass, line by line only if a line
    is unreadable (a carriage return inside a field) or a quoted field runs over a line's end, which would join two
    lines into one row. A reading is one line: each such line is malformed on its own, none is lost."""
    try:
        cells = list(csv.reader(texts))
        if len(cells) == len(texts):
            return cells
    except csv.Error:
        pass
    return [_line_cells(text) for text in texts]


def _line_cells(text: str) -> list[str] | None:
    try:
        return next(csv.reader([text]), [])
    except csv.Error:
        return None


def _csv_row(header: list[str], row: list[str] | None) -> dict[str, Any] | None:
    if row is None or len(row) != len(header):
        return None
    value: dict[str, Any] = {}
    for name, cell in zip(header, row, strict=True):
        if cell == "":
            continue
        if name == "register_kwh":
            value[name] = _number(cell, float)
        elif name == "signal_level":
            value[name] = _number(cell, int)
        else:
            value[name] = cell
    return value


def _number(cell: str, kind: type) -> Any:
    """The cell as a number when it spells one, else the text (which validation then rejects)."""
    try:
        return kind(cell)
    except ValueError:
        return cell
