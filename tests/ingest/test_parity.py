"""The bulk validator gives every row the field and message the marshmallow ReadingSchema gives it."""

import datetime as dt
import json

import marshmallow as ma
from hypothesis import given, settings
from hypothesis import strategies as st

from api.schemas.readings import ReadingSchema
from lux.ingest.batch import decode_json_array, validate

FIELDS = ("site_id", "reading_at", "register_kwh", "signal_level", "network", "meter_serial")
NOW = dt.datetime.now(dt.UTC)

timestamps = st.one_of(
    st.datetimes(min_value=dt.datetime(2000, 1, 2), max_value=dt.datetime(2026, 1, 1),
                 timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=1)),
                                            dt.timezone(dt.timedelta(hours=-5, minutes=-30))]),
                 ).map(dt.datetime.isoformat),
    st.datetimes(min_value=dt.datetime(2001, 1, 1), max_value=dt.datetime(2025, 1, 1)).map(dt.datetime.isoformat),
    st.sampled_from(["1999-12-31T23:00:00Z", "2099-01-01T00:00:00Z", "yesterday", "2026-13-01T00:00:00Z",
                     "2026-06-01", "", "2026-06-01 21:00:00+01:00", "2026-06-01T21:00:00.5+00:00"]),
    st.integers(), st.none(),
)
values = {
    "site_id": st.one_of(st.from_regex(r"\A[A-Za-z0-9_.-]{1,64}\Z"), st.text(max_size=70), st.integers(), st.none(),
                         st.sampled_from(["S1\n", "", "a" * 65])),
    "reading_at": timestamps,
    "register_kwh": st.one_of(st.floats(min_value=-10, max_value=2e9, allow_nan=False), st.integers(-5, 10**10),
                              st.booleans(), st.text(max_size=5), st.none()),
    "signal_level": st.one_of(st.integers(-3, 120), st.floats(0, 40, allow_nan=False), st.sampled_from(["12", True]),
                              st.none()),
    "network": st.one_of(st.text(max_size=70), st.integers(), st.none()),
    "meter_serial": st.one_of(st.text(max_size=70), st.none()),
}
mostly_valid = st.fixed_dictionaries(
    {"site_id": st.from_regex(r"\A[A-Za-z0-9_.-]{1,64}\Z"), "reading_at": timestamps,
     "register_kwh": st.floats(min_value=0, max_value=1e9)},
    optional={"signal_level": st.one_of(st.integers(0, 31), st.just(99), st.integers(32, 98)),
              "network": st.text(max_size=64), "meter_serial": st.one_of(st.text(max_size=66), st.none())},
)
rows = st.one_of(st.fixed_dictionaries({}, optional=values), mostly_valid)


def schema_verdict(row: dict):
    """(field, message) of the first failing field in field order, or the loaded values."""
    try:
        loaded = ReadingSchema().load(row)
    except ma.ValidationError as error:
        field = next(f for f in FIELDS if f in error.messages)
        return field, error.messages[field][0]
    return tuple(loaded.get(f) for f in FIELDS)


def bulk_verdicts(batch: list[dict]) -> list:
    body = json.dumps(batch).encode()
    decoded, typed = decode_json_array(body)
    chunk = validate(decoded, typed, 0, NOW, lambda i: "")
    verdicts: list = [None] * len(batch)
    for index, why, *_ in chunk.rejected:
        verdicts[index] = (why.field, why.message)
    for index, row in zip(chunk.indexes, chunk.rows, strict=True):
        verdicts[index] = row
    return verdicts


def normalise(verdict):
    """Loaded values: timestamps compared as instants, numbers as floats."""
    if len(verdict) == 2:
        return verdict
    site, at, register, *rest = verdict
    return (site, at.astimezone(dt.UTC) if isinstance(at, dt.datetime) else at, float(register), *rest)


@settings(max_examples=300, deadline=None)
@given(st.lists(rows, min_size=1, max_size=6))
def test_bulk_path_agrees_with_the_schema(batch):
    expected = [normalise(schema_verdict(row)) for row in batch]
    assert [normalise(v) for v in bulk_verdicts(batch)] == expected  # mixed batch: per-row path
    for row, want in zip(batch, expected, strict=True):
        single = bulk_verdicts([row])[0]  # a batch of one valid row takes the typed path
        assert normalise(single) == want


def test_a_valid_batch_takes_the_typed_path():
    row = {"site_id": "S1", "reading_at": "2026-01-01T00:00:00Z", "register_kwh": 1, "signal_level": 99}
    assert decode_json_array(json.dumps([row]).encode())[1] is True
