"""Replaying any delivered batches, in any order, any number of times, leaves the stored state as it was."""

import datetime as dt
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from lux.ingest import ingest_json

INSTANTS = [dt.datetime(2026, 3, 29, h, tzinfo=dt.UTC) for h in (0, 1, 2, 23)]  # around the spring DST change
OFFSETS = [dt.UTC, dt.timezone(dt.timedelta(hours=1)), dt.timezone(dt.timedelta(hours=-3))]

reading = st.builds(
    lambda site, instant, offset, kwh, signal: {
        "site_id": site, "reading_at": instant.astimezone(offset).isoformat(), "register_kwh": kwh,
        "signal_level": signal},
    st.sampled_from(["P1", "P2", "NOPE"]), st.sampled_from(INSTANTS), st.sampled_from(OFFSETS),
    st.sampled_from([1.0, 2.0, -1.0]), st.sampled_from([None, 10, 99, 50]),
)
batches = st.lists(st.lists(reading, min_size=1, max_size=6), min_size=1, max_size=4)


def snapshot(database):
    with database.engine.connect() as conn:
        return conn.execute(text("SELECT site_pk, reading_at, register_kwh, signal_level FROM readings "
                                 "ORDER BY 1, 2")).all()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=batches, data=st.data())
def test_replays_change_nothing(database, batches, data):
    with database.engine.begin() as conn:
        conn.execute(text("TRUNCATE readings, ingest_rejects, ingest_journal"))
        conn.execute(text("INSERT INTO sites (site_id, name, capacity_kwp) VALUES ('P1', 'p', 3), ('P2', 'p', 3) "
                          "ON CONFLICT (site_id) DO NOTHING"))
    bodies = [json.dumps(batch).encode() for batch in batches]
    for body in bodies:
        ingest_json(database, body, replace=False, request_id="first")
    delivered = snapshot(database)

    replays = data.draw(st.lists(st.sampled_from(bodies), min_size=1, max_size=6))
    for body in replays:
        outcome = ingest_json(database, body, replace=False, request_id="replay")
        assert outcome.accepted == 0 and outcome.replaced == 0
    assert snapshot(database) == delivered

    for body in data.draw(st.permutations(bodies)):  # replace mode: a replay of the same batch is a no-op
        ingest_json(database, body, replace=True, request_id="fix")
        state = snapshot(database)
        again = ingest_json(database, body, replace=True, request_id="fix-again")
        assert again.accepted == 0 and again.replaced == 0 and snapshot(database) == state
