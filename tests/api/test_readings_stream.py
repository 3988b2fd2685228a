"""POST /api/v1/readings/stream: CSV and NDJSON bodies with the batch endpoint's semantics."""

import datetime as dt
import json

import pytest
from sqlalchemy import text

from lux import ingest

HEADER = "site_id,reading_at,register_kwh,signal_level,network,meter_serial\n"


@pytest.fixture
def post(client, auth, database):
    with database.engine.begin() as conn:
        conn.execute(text("INSERT INTO sites (site_id, name, capacity_kwp) VALUES ('S1', 'one', 4), ('S2', 'two', 3)"))
    headers = auth("ingest")

    def send(body: str, content_type: str, on_conflict: str | None = None):
        url = "/api/v1/readings/stream" + (f"?on_conflict={on_conflict}" if on_conflict else "")
        return client.post(url, data=body.encode(), content_type=content_type, headers=headers)

    return send


def count_readings(database) -> int:
    with database.engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM readings")).scalar_one()


def test_csv_outcomes_match_the_batch_endpoint(post, database):
    body = HEADER + (
        "S1,2026-06-01T21:00:00Z,10.5,17,EE,M1\n"
        "S1,2026-06-02T21:00:00Z,11,,,\n"
        "S1,2026-06-02T21:00:00Z,11,,,\n"       # duplicate of the row before
        "S2,2026-06-02T21:00:00,1,,,\n"         # no UTC offset
        "S2,2026-06-03T21:00:00Z,abc,,,\n"      # non-numeric register
        "S2,2026-06-03T21:00:00Z,1,99,,\n"      # 99 = unknown signal
        "S9,2026-06-03T21:00:00Z,1,,,\n"        # unknown site
        "S2,2026-06-04T21:00:00Z\n"             # wrong number of columns
    )
    answer = post(body, "text/csv").get_json()
    assert {k: answer[k] for k in ("received", "accepted", "duplicate", "rejected")} == {
        "received": 8, "accepted": 3, "duplicate": 1, "rejected": 4}
    assert [(r["index"], r["reason"]) for r in answer["rejects"]] == [
        (3, "no_utc_offset"), (4, "invalid_number"), (6, "unknown_site"), (7, "malformed_csv")]
    assert post(body, "text/csv").get_json()["duplicate"] == 4  # a replay changes nothing
    assert count_readings(database) == 3
    with database.engine.connect() as conn:  # CSV rejects keep the site they name, for filtering
        sites = conn.execute(text("SELECT DISTINCT site_id FROM ingest_rejects ORDER BY 1")).scalars().all()
    assert sites == ["S2", "S9", None]


def test_stream_lines_with_a_nul_are_kept_as_rejects_with_the_nul_escaped(post, database):
    csv = HEADER + "S1,2026-06-01T21:00:00Z,10.5,17,EE,M1\nS1,2026-06-02T21:00:00Z,11,17,E\x00E,M1\n"
    ndjson = '{"site_id": "S2", "reading_at": "2026-06-01T21:00:00Z", "register_kwh": 1}\n{"site_id": "S2\x00\n'
    csv_answer, ndjson_answer = post(csv, "text/csv").get_json(), post(ndjson, "application/x-ndjson").get_json()
    assert [(r["index"], r["reason"]) for r in csv_answer["rejects"]] == [(1, "nul_character")]
    assert [(r["index"], r["reason"]) for r in ndjson_answer["rejects"]] == [(1, "malformed_json")]
    assert csv_answer["accepted"] == ndjson_answer["accepted"] == 1 and count_readings(database) == 2
    with database.engine.connect() as conn:
        raws = conn.execute(text("SELECT raw FROM ingest_rejects ORDER BY id")).scalars().all()
    assert raws == ["S1,2026-06-02T21:00:00Z,11,17,E\\u0000E,M1", '{"site_id": "S2\\u0000']


def test_csv_lines_csv_cannot_read_alone_are_each_malformed_and_every_line_is_counted(post, database):
    """A carriage return inside a field made csv raise for the whole chunk (a 500), and a quoted field left open at a
    line's end joined the next line into the same row, so one line went uncounted."""
    body = HEADER + (
        "S1,2026-06-01T21:00:00Z,1,,,\n"
        "S1,2026-06-02T21:00:00Z,2,,E\rE,\n"     # a carriage return inside a field
        'S1,2026-06-03T21:00:00Z,3,,"EE\n'        # a quote open at the line's end …
        'E",M\n'                                  # … closed on the next line
        "S1,2026-06-04T21:00:00Z,4,,,\n"
    )
    answer = post(body, "text/csv").get_json()
    assert {k: answer[k] for k in ("received", "accepted", "rejected")} == {"received": 5, "accepted": 2, "rejected": 3}
    assert [(r["index"], r["reason"]) for r in answer["rejects"]] == [
        (1, "malformed_csv"), (2, "malformed_csv"), (3, "malformed_csv")]
    assert count_readings(database) == 2


def test_ndjson_with_a_broken_line(post, database):
    lines = [json.dumps({"site_id": "S1", "reading_at": f"2026-06-0{d}T21:00:00Z", "register_kwh": d})
             for d in range(1, 5)]
    lines.insert(2, '{"site_id": "S1", "reading_at": ')
    answer = post("\n".join(lines) + "\n", "application/x-ndjson").get_json()
    assert answer["accepted"] == 4 and answer["rejected"] == 1
    assert answer["rejects"][0] | {"message": ""} == {"index": 2, "field": None, "reason": "malformed_json",
                                                      "message": ""}


def test_a_long_stream_spans_chunks_and_keeps_first_wins(post, database, monkeypatch):
    monkeypatch.setattr(ingest, "CHUNK_ROWS", 1000)
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    rows = [f"S1,{(start + dt.timedelta(hours=h)).isoformat()},{h},,," for h in range(3500)]
    rows.append(f"S1,{start.isoformat()},999,,,")  # repeats the first key, in the last chunk, other value
    answer = post(HEADER + "\n".join(rows) + "\n", "text/csv", on_conflict="replace").get_json()
    assert (answer["received"], answer["accepted"], answer["conflict"], answer["replaced"]) == (3501, 3500, 1, 0)
    assert answer["conflicts"][0]["index"] == 3500
    with database.engine.connect() as conn:
        first = conn.execute(text("SELECT register_kwh FROM readings ORDER BY reading_at LIMIT 1")).scalar_one()
    assert first == 0.0


def test_stream_errors(post):
    assert post("a,b\n1,2\n", "text/csv").status_code == 400
    assert post(HEADER, "text/csv").status_code == 400  # no rows
    assert post("x", "application/xml").status_code == 415


@pytest.mark.parametrize("content_type", ["text/csv", "application/x-ndjson"])
@pytest.mark.parametrize("long_line", ["at the end", "in the middle"])
def test_a_line_longer_than_the_limit_refuses_the_stream_and_stores_nothing(post, database, content_type,
                                                                             long_line):
    """One reading is one short line: a longer one (a JSON array sent as NDJSON) is a 413, not minutes of copying."""
    good = ("S1,2026-06-01T21:00:00Z,1,,," if content_type == "text/csv"
            else json.dumps({"site_id": "S1", "reading_at": "2026-06-01T21:00:00Z", "register_kwh": 1}))
    long = "[" + ",".join([good] * 4000) + "]"  # 116 kB or more
    lines = [good, long] if long_line == "at the end" else [good, long, good]
    body = (HEADER if content_type == "text/csv" else "") + "\n".join(lines)
    response = post(body, content_type)
    assert response.status_code == 413, response.get_json()
    assert response.get_json()["error"]["details"] == {"limit_line_bytes": 64 * 1024}
    assert count_readings(database) == 0


def test_stream_row_limit_stores_nothing(post, database, monkeypatch):
    monkeypatch.setattr(ingest, "MAX_STREAM_ROWS", 10)
    rows = "".join(f"S1,2026-06-01T21:{m:02d}:00Z,{m},,,\n" for m in range(11))
    response = post(HEADER + rows, "text/csv")
    assert response.status_code == 413 and "10" in response.get_json()["error"]["message"]
    assert count_readings(database) == 0
