"""Turn a decoded batch into clean rows and rejections, in bulk where the batch allows it.

Fast path: msgspec decodes the JSON array straight into typed structs (types, offsets and
bounds checked in C); one pass over the structs then does what msgspec cannot (site lookup,
time window, the signal's 99). Any batch msgspec refuses goes row by row through
`rules.check_row`, which is the reference both paths agree with.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import msgspec

from lux.ingest import rules
from lux.ingest.rules import CleanRow, Rejection


class TypedReading(msgspec.Struct):
    """What the fast path accepts without further type checks (unknown keys are ignored)."""

    site_id: Annotated[str, msgspec.Meta(pattern=rules.SITE_ID_RE.pattern)]
    reading_at: Annotated[dt.datetime, msgspec.Meta(tz=True)]
    register_kwh: Annotated[float, msgspec.Meta(ge=0, le=rules.MAX_REGISTER_KWH)]
    signal_level: Annotated[int, msgspec.Meta(ge=0, le=rules.SIGNAL_UNKNOWN)] | None = None
    network: Annotated[str, msgspec.Meta(max_length=rules.MAX_TEXT)] | None = None
    meter_serial: Annotated[str, msgspec.Meta(max_length=rules.MAX_TEXT)] | None = None


_typed_decoder = msgspec.json.Decoder(list[TypedReading])
_any_decoder = msgspec.json.Decoder()
ESCAPED_NUL = b"\\u0000"  # how JSON writes NUL inside a string (a raw NUL byte is not JSON)


# A rejected row: its batch index, why, its raw text, and the site it names (if it names one usably).
Rejected = tuple[int, Rejection, str, str | None]


class MalformedBatch(ValueError):
    """The body is not a JSON array (or not JSON at all)."""


@dataclass
class Chunk:
    """One validated piece of a batch: clean rows and rejected rows, by index in the batch."""

    offset: int
    raw_of: Callable[[int], str]  # position in this chunk → the row's raw text
    indexes: list[int] = field(default_factory=list)  # batch index of each clean row
    rows: list[CleanRow] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)

    def raw(self, index: int) -> str:
        """Raw text of the row at batch index `index`."""
        return self.raw_of(index - self.offset)

    def reject(self, index: int, why: Rejection, site_id: str | None) -> None:
        self.rejected.append((index, why, self.raw(index), site_id))


def decode_json_array(body: bytes) -> tuple[list[Any], bool]:
    """(values, typed): typed structs when every element passes the typed schema, else plain values.

    A body holding an escaped NUL (`\\u0000`) is never typed: the typed schema would pass it in a text field, and only
    the per-row rules reject it (PostgreSQL text cannot hold it).
    """
    try:
        if ESCAPED_NUL not in body:
            try:
                return _typed_decoder.decode(body), True
            except msgspec.ValidationError:
                pass
        try:
            values = _any_decoder.decode(body)
        except msgspec.ValidationError:  # e.g. a number too large for a double: let the stdlib decide
            values = json.loads(body)
    except msgspec.DecodeError as error:
        raise MalformedBatch(f"Malformed JSON: {error}") from None
    if not isinstance(values, list):
        raise MalformedBatch("The body must be a JSON array of readings.")
    return values, False


def validate(values: list[Any], typed: bool, offset: int, now: dt.datetime, raw_of: Callable[[int], str]) -> Chunk:
    """Validate decoded values; `offset` is the batch index of values[0]; `raw_of(i)` gives row i's raw text."""
    chunk = Chunk(offset, raw_of)
    if typed:
        _validate_typed(chunk, values, now)
        return chunk
    for index, raw in enumerate(values, start=offset):
        result = rules.check_row(raw, now)
        if isinstance(result, Rejection):
            chunk.reject(index, result, rules.site_of(raw))
        else:
            chunk.indexes.append(index)
            chunk.rows.append(result)
    return chunk


def _validate_typed(chunk: Chunk, values: list[TypedReading], now: dt.datetime) -> None:
    """What msgspec could not check: the time window and the signal's 99 (unknown)."""
    earliest, latest = rules.EARLIEST, now + rules.FUTURE_SLACK
    if all(earliest <= v.reading_at <= latest and (v.signal_level or 0) <= 31 for v in values):
        chunk.indexes = list(range(chunk.offset, chunk.offset + len(values)))
        chunk.rows = [(v.site_id, v.reading_at, v.register_kwh, v.signal_level, v.network, v.meter_serial)
                      for v in values]
        return
    for index, v in enumerate(values, start=chunk.offset):
        at, signal = v.reading_at, v.signal_level
        if at < earliest or at > latest:
            chunk.reject(index, rules.check_timestamp_range(at, now), v.site_id)
            continue
        if signal is not None and signal > 31:
            if signal != rules.SIGNAL_UNKNOWN:
                chunk.reject(index, Rejection("signal_level", "signal_range"), v.site_id)
                continue
            signal = None
        chunk.indexes.append(index)
        chunk.rows.append((v.site_id, at, v.register_kwh, signal, v.network, v.meter_serial))


def lazy_raw(body: bytes) -> Callable[[int], str]:
    """`raw_of(i)`: the JSON text of element i of the array in `body`, decoded only if a row is rejected."""
    cache: list[list[Any]] = []

    def raw_of(index: int) -> str:
        if not cache:
            try:
                cache.append(_any_decoder.decode(body))
            except msgspec.ValidationError:
                cache.append(json.loads(body))
        return json.dumps(cache[0][index], default=str)

    return raw_of
