"""What makes a reading valid (SPEC §2–§3), as one function per row with fixed messages.

`check_row` is the per-row reference used for any row the fast path cannot vouch for; the
marshmallow `ReadingSchema` in the API publishes the same rules, and the tests prove both give
the same field and message for every input.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from typing import Any

import msgspec

# \Z, not $: in Python `$` also matches before a trailing newline.
SITE_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}\Z")
MAX_TEXT = 64
SIGNAL_UNKNOWN = 99
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
FUTURE_SLACK = dt.timedelta(hours=24)
MAX_REGISTER_KWH = 1e9
# PostgreSQL text cannot hold this character: a row carrying it in a text field is rejected, not stored.
NUL = "\x00"

# reason → (message); the field is reported beside it.
MESSAGES = {
    "required": "Missing data for required field.",
    "invalid_site_id": "Must be 1–64 characters of A-Z a-z 0-9 _ . -",
    "unknown_site": "No site with this site_id.",
    "invalid_datetime": "Not a valid RFC 3339 date-time.",
    "no_utc_offset": "Timestamp has no UTC offset.",
    "before_2000": "Timestamp is before 2000-01-01.",
    "future": "Timestamp is more than 24 hours in the future.",
    "invalid_number": "Not a valid number.",
    "not_finite": "Must be a finite number.",
    "negative_register": "Must be greater than or equal to 0.",
    "register_too_large": "Must be less than or equal to 1000000000.",
    "invalid_integer": "Not a valid integer.",
    "signal_range": "Must be between 0 and 31, or 99 for unknown.",
    "invalid_string": "Not a valid string.",
    "too_long": "Longer than maximum length 64.",
    "nul_character": "Must not contain the NUL character (U+0000).",
    "not_an_object": "A reading must be a JSON object.",
    "malformed_json": "Not valid JSON.",
    "malformed_csv": "Wrong number of columns.",
}


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why one row was rejected: the field at fault (None for the whole row) and a reason code."""

    field: str | None
    reason: str

    @property
    def message(self) -> str:
        return MESSAGES[self.reason]


def site_of(raw: Any) -> str | None:
    """The site_id a raw row names, when it names one usably (rejects are filtered by it; PostgreSQL text holds no
    NUL)."""
    site = raw.get("site_id") if isinstance(raw, dict) else None
    return site if isinstance(site, str) and len(site) <= MAX_TEXT and NUL not in site else None


def parse_timestamp(value: Any) -> dt.datetime | Rejection:
    """An aware datetime from an RFC 3339 string, or why not."""
    if not isinstance(value, str):
        return Rejection("reading_at", "invalid_datetime")
    try:
        parsed = msgspec.convert(value, dt.datetime)
    except msgspec.ValidationError:
        return Rejection("reading_at", "invalid_datetime")
    if parsed.tzinfo is None:
        return Rejection("reading_at", "no_utc_offset")
    return parsed


def check_timestamp_range(at: dt.datetime, now: dt.datetime) -> Rejection | None:
    """Out-of-range reasons for a parsed timestamp (SPEC §3)."""
    if at < EARLIEST:
        return Rejection("reading_at", "before_2000")
    if at > now + FUTURE_SLACK:
        return Rejection("reading_at", "future")
    return None


def check_register(value: Any) -> float | Rejection:
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return Rejection("register_kwh", "invalid_number")
    number = float(value)
    if not math.isfinite(number):
        return Rejection("register_kwh", "not_finite")
    if number < 0:
        return Rejection("register_kwh", "negative_register")
    if number > MAX_REGISTER_KWH:
        return Rejection("register_kwh", "register_too_large")
    return number


def check_signal(value: Any) -> int | Rejection | None:
    """CSQ 0–31; 99 (unknown) and null are stored as null."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        return Rejection("signal_level", "invalid_integer")
    if value == SIGNAL_UNKNOWN:
        return None
    if not 0 <= value <= 31:
        return Rejection("signal_level", "signal_range")
    return value


def check_text(field: str, value: Any) -> str | Rejection | None:
    if value is None:
        return None
    if not isinstance(value, str):
        return Rejection(field, "invalid_string")
    if len(value) > MAX_TEXT:
        return Rejection(field, "too_long")
    if NUL in value:
        return Rejection(field, "nul_character")
    return value


# A row that passed every per-row rule, the site still to be looked up:
# (site_id, reading_at, register_kwh, signal_level, network, meter_serial). A plain tuple: the
# bulk path builds one per row, and tuples are the cheapest Python object to build.
CleanRow = tuple[str, dt.datetime, float, int | None, str | None, str | None]


def check_row(raw: Any, now: dt.datetime) -> CleanRow | Rejection:
    """Validate one decoded row; the first failing field in field order decides the reason."""
    if not isinstance(raw, dict):
        return Rejection(None, "not_an_object")
    site_id = raw.get("site_id")
    if site_id is None:
        return Rejection("site_id", "required")
    if not isinstance(site_id, str) or not SITE_ID_RE.match(site_id):
        return Rejection("site_id", "invalid_site_id")
    if raw.get("reading_at") is None:
        return Rejection("reading_at", "required")
    at = parse_timestamp(raw["reading_at"])
    if isinstance(at, Rejection):
        return at
    out_of_range = check_timestamp_range(at, now)
    if out_of_range:
        return out_of_range
    if raw.get("register_kwh") is None:
        return Rejection("register_kwh", "required")
    checked = [
        check_register(raw["register_kwh"]),
        check_signal(raw.get("signal_level")),
        check_text("network", raw.get("network")),
        check_text("meter_serial", raw.get("meter_serial")),
    ]
    failure = next((value for value in checked if isinstance(value, Rejection)), None)
    if failure:
        return failure
    return (site_id, at, *checked)  # type: ignore[return-value]
