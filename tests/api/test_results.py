"""Reading computed results over HTTP: site status and days, analyses, anomalies, dashboard snapshots.

The cached tables are filled with SQL by hand; daily rollups are computed from the site days with
`recompute_rollups` and snapshots built with `build_snapshots`.
"""

import datetime as dt

import pytest
from sqlalchemy import text

from lux.compute.engine import recompute_rollups
from lux.compute.params import Params
from lux.compute.snapshots import build_snapshots

D = dt.date(2026, 6, 10)
SITES = {"S1": ("South West", 4.0), "S2": ("TBC", 2.0), "S3": ("London", 3.0), "S4": ("London", 1.0)}
STATUS = [  # site, status, days, signal, network
    ("S1", "healthy", 0, 22.0, "EE"), ("S2", "no_coms", 5, 8.0, None), ("S3", "zero_read", 4, 14.0, "EE"),
]
DAYS = [  # site, day, generation, estimated, segment_end, readings, signal_sum, signal_n
    ("S1", "2026-06-01", None, False, "2026-06-01", 1, 20, 1),
    ("S1", "2026-06-02", 3.0, False, "2026-06-02", 2, 41, 2),
    ("S1", "2026-06-03", 2.5, True, "2026-06-04", 0, 0, 0),
    ("S1", "2026-06-04", 2.5, True, "2026-06-04", 1, 18, 1),
    ("S1", "2026-06-05", 4.0, False, "2026-06-05", 1, 19, 1),
]
MONTHS = [  # site, month, actual, covered_days, expected, ratio
    ("S1", "2026-04-01", 90.0, 30, 100.0, 90.0), ("S1", "2026-05-01", 60.0, 31, 100.0, 60.0),
    ("S1", "2026-06-01", 75.0, 30, 100.0, 75.0), ("S2", "2026-05-01", 50.0, 31, None, None),
    ("S3", "2026-05-01", 50.0, 31, 100.0, 50.0),
]
ANOMALIES = [  # site, type, start, end, details
    ("S1", "gap", "2026-05-02", "2026-05-04", '{"days": 3}'), ("S1", "spike", "2026-06-05", None, "{}"),
    ("S2", "stuck_register", "2026-05-20", None, '{"register_kwh": 10.5, "days": 21}'),
    ("S3", "low_signal", "2026-06-01", "2026-06-03", '{"min_mean_csq": 8.5}'),
]


def day(value: str | None) -> dt.date | None:
    return value and dt.date.fromisoformat(value)


def seed(session) -> None:
    pk = {}
    for site_id, (region, capacity) in SITES.items():
        pk[site_id] = session.execute(text(
            "INSERT INTO sites (site_id, name, region, capacity_kwp) VALUES (:s, :n, :r, :c) RETURNING id"),
            {"s": site_id, "n": f"Site {site_id}", "r": region, "c": capacity}).scalar_one()
    for site_id, status, days, signal, network in STATUS:
        session.execute(text(
            "INSERT INTO site_status (site_pk, as_of, status, days, last_day, last_reading_at, last_register_kwh, "
            "signal_level, network, computed_at) VALUES (:p, :a, :s, :d, :a - :d, '2026-06-10T20:00:00Z', 123.5, "
            ":l, :n, '2026-06-10T21:00:00Z')"),
            {"p": pk[site_id], "a": D, "s": status, "d": days, "l": signal, "n": network})
    for site_id, value, kwh, estimated, segment_end, readings, signal_sum, signal_n in DAYS:
        session.execute(text(
            "INSERT INTO site_days (site_pk, day, generation_kwh, estimated, segment_end, readings, signal_sum, "
            "signal_n) VALUES (:p, :d, :g, :e, :s, :r, :ss, :sn)"),
            {"p": pk[site_id], "d": day(value), "g": kwh, "e": estimated, "s": day(segment_end), "r": readings,
             "ss": signal_sum, "sn": signal_n})
    for site_id, month, actual, covered, expected, ratio in MONTHS:
        session.execute(text(
            "INSERT INTO monthly_performance (site_pk, month, actual_kwh, covered_days, expected_kwh, ratio_pct, "
            "as_of, computed_at) VALUES (:p, :m, :a, :c, :e, :r, :d, '2026-06-10T21:00:00Z')"),
            {"p": pk[site_id], "m": day(month), "a": actual, "c": covered, "e": expected, "r": ratio, "d": D})
    for site_id, kind, start, end, details in ANOMALIES:
        session.execute(text(
            "INSERT INTO anomalies (site_pk, type, start_day, end_day, details, as_of) "
            "VALUES (:p, :t, :s, :e, CAST(:j AS jsonb), :d)"),
            {"p": pk[site_id], "t": kind, "s": day(start), "e": day(end), "j": details, "d": D})


@pytest.fixture
def fleet(database):
    with database.session_scope() as session:
        seed(session)


@pytest.fixture
def computed(database, fleet):
    """The fleet with rollups and snapshots as of D − 1 and D."""
    with database.session_scope() as session:
        for as_of in (D - dt.timedelta(days=1), D):
            recompute_rollups(session, as_of)
            build_snapshots(session, Params(), as_of)


@pytest.fixture
def read(client, auth):
    headers = auth("read")

    def get(path: str, **query):
        return client.get(f"/api/v1{path}", query_string=query, headers=headers)

    return get


def error_fields(response) -> set[str]:
    return set(response.get_json()["error"]["details"]["query"])


# --- site results ------------------------------------------------------------------------------

def test_communication_status(read, fleet):
    response = read("/sites/S3/communication-status")
    assert response.status_code == 200
    assert response.get_json() == {
        "site_id": "S3", "status": "zero_read", "days": 4, "last_day": "2026-06-06",
        "last_reading_at": "2026-06-10T20:00:00+00:00", "last_register_kwh": 123.5, "signal_level": 14.0,
        "signal_quality": "Average", "network": "EE", "as_of": "2026-06-10",
        "computed_at": "2026-06-10T21:00:00+00:00",
    }


def test_communication_status_404s(read, fleet):
    unknown = read("/sites/NOPE/communication-status")
    assert unknown.status_code == 404 and "NOPE" in unknown.get_json()["error"]["message"]
    uncomputed = read("/sites/S4/communication-status")
    assert uncomputed.status_code == 404 and uncomputed.get_json()["error"]["code"] == "not_computed"


def test_site_daily_in_date_order_with_mean_signal(read, fleet):
    body = read("/sites/S1/daily").get_json()
    assert body["total"] == 5 and body["site_id"] == "S1"
    assert body["as_of"] == "2026-06-10" and body["computed_at"] == "2026-06-10T21:00:00+00:00"
    assert [d["day"] for d in body["items"]] == [f"2026-06-0{i}" for i in range(1, 6)]
    first, second, gap = body["items"][:3]
    assert first["generation_kwh"] is None and first["segment_end"] == "2026-06-01"
    assert second["generation_kwh"] == 3.0 and second["signal_level"] == 20.5 and second["readings"] == 2
    assert gap["estimated"] is True and gap["signal_level"] is None and gap["segment_end"] == "2026-06-04"


def test_site_daily_filters_and_pagination(read, fleet):
    ranged = read("/sites/S1/daily", **{"from": "2026-06-02", "to": "2026-06-04"}).get_json()
    assert [d["day"] for d in ranged["items"]] == ["2026-06-02", "2026-06-03", "2026-06-04"]
    # as of 06-03 the 06-03 value is not settled yet (its segment ends on 06-04)
    as_of = read("/sites/S1/daily", as_of="2026-06-03").get_json()
    assert [d["day"] for d in as_of["items"]] == ["2026-06-01", "2026-06-02"] and as_of["as_of"] == "2026-06-03"
    page = read("/sites/S1/daily", limit=2, offset=3).get_json()
    assert [d["day"] for d in page["items"]] == ["2026-06-04", "2026-06-05"] and page["total"] == 5
    beyond = read("/sites/S1/daily", offset=50).get_json()
    assert beyond["items"] == [] and beyond["total"] == 5 and beyond["offset"] == 50


def test_site_daily_errors(read, fleet):
    assert read("/sites/NOPE/daily").status_code == 404
    no_days = read("/sites/S4/daily")
    assert no_days.status_code == 200 and no_days.get_json()["items"] == [] and no_days.get_json()["as_of"] is None
    backwards = read("/sites/S1/daily", **{"from": "2026-06-05", "to": "2026-06-01"})
    assert backwards.status_code == 422 and error_fields(backwards) == {"from"}
    bad = read("/sites/S1/daily", **{"from": "yesterday", "limit": 1001})
    assert bad.status_code == 422 and error_fields(bad) == {"from", "limit"}


# --- analysis ----------------------------------------------------------------------------------

def test_connection_analysis_summary_and_sites(read, computed):
    body = read("/analysis/connection").get_json()
    assert body["as_of"] == "2026-06-10" and body["computed_at"]
    assert body["summary"]["signal_quality"] == {"Poor": 1, "Average": 1, "Good": 0, "Excellent": 1, "Unknown": 1}
    assert body["total"] == 3  # S4 has no status
    s2 = next(item for item in body["items"] if item["site_id"] == "S2")
    assert s2 == {"site_id": "S2", "region": "Unknown", "network": None, "signal_level": 8.0, "quality": "Poor",
                  "status": "no_coms", "days": 5, "last_reading_at": "2026-06-10T20:00:00+00:00",
                  "as_of": "2026-06-10", "computed_at": "2026-06-10T21:00:00+00:00"}


@pytest.mark.parametrize(("query", "sites"), [
    ({"region": "London"}, ["S3"]),
    ({"region": "unknown"}, ["S2"]),
    ({"network": "EE"}, ["S1", "S3"]),
    ({"network": "Unknown"}, ["S2"]),
    ({"status": "healthy"}, ["S1"]),
    ({"quality": "Excellent"}, ["S1"]),
    ({"network": "EE", "quality": "Average"}, ["S3"]),
    ({"limit": 1, "offset": 1}, ["S2"]),
])
def test_connection_analysis_filters(read, computed, query, sites):
    assert [item["site_id"] for item in read("/analysis/connection", **query).get_json()["items"]] == sites


def test_connection_analysis_errors(read, fleet):
    missing = read("/analysis/connection")
    assert missing.status_code == 404 and "connection-analysis" in missing.get_json()["error"]["message"]
    bad = read("/analysis/connection", status="asleep", quality="Great")
    assert bad.status_code == 422 and error_fields(bad) == {"status", "quality"}


def test_readings_analysis(read, computed):
    body = read("/analysis/readings").get_json()
    assert body["as_of"] == "2026-06-10" and body["window_start"] == "2026-05-12"
    regions = {r["region"]: r for r in body["regions"]}
    assert regions["South West"]["average_daily_generation_kwh"] == 3.0  # (3 + 2.5 + 2.5 + 4) / 4
    # S1's gap (05-02…05-04) ended before the 30-day window (05-12…06-10)
    assert regions["South West"]["anomalies"] == 1 and regions["South West"]["open_anomalies"] == 1
    assert regions["London"]["anomalies"] == 1 and regions["London"]["open_anomalies"] == 0


def test_performance_rows_carry_the_site_range_summary(read, fleet):
    body = read("/analysis/performance", **{"from": "2026-05", "to": "2026-06"}).get_json()
    assert [(r["site_id"], r["month"]) for r in body["items"]] == [
        ("S1", "2026-05-01"), ("S1", "2026-06-01"), ("S2", "2026-05-01"), ("S3", "2026-05-01")]
    s1 = body["items"][0]
    assert (s1["range_actual_kwh"], s1["range_expected_kwh"], s1["range_months"]) == (135, 200, 2)
    assert s1["range_ratio_pct"] == pytest.approx(67.5)
    assert s1["region"] == "South West" and s1["capacity_kwp"] == 4.0
    s2 = body["items"][2]
    assert s2["region"] == "Unknown" and s2["ratio_pct"] is None and s2["range_ratio_pct"] is None
    assert body["as_of"] == "2026-06-10" and body["computed_at"] == "2026-06-10T21:00:00+00:00"


def test_performance_threshold_keeps_low_months_but_not_the_summary(read, fleet):
    body = read("/analysis/performance", performance_threshold=70, **{"from": "2026-05-15"}).get_json()
    assert [(r["site_id"], r["ratio_pct"]) for r in body["items"]] == [("S1", 60), ("S3", 50)]
    assert body["items"][0]["range_ratio_pct"] == pytest.approx(67.5)  # May and June, not only May
    assert body["total"] == 2


@pytest.mark.parametrize(("query", "rows"), [
    ({"region": "Unknown"}, [("S2", "2026-05-01")]),
    ({"site_id": "S1", "to": "2026-04"}, [("S1", "2026-04-01")]),
    ({"limit": 2, "offset": 3}, [("S2", "2026-05-01"), ("S3", "2026-05-01")]),
])
def test_performance_filters(read, fleet, query, rows):
    body = read("/analysis/performance", **query).get_json()
    assert [(r["site_id"], r["month"]) for r in body["items"]] == rows


def test_performance_bad_parameters_are_422(read, fleet):
    bad = read("/analysis/performance", performance_threshold="abc", **{"from": "2026-13"})
    assert bad.status_code == 422 and error_fields(bad) == {"performance_threshold", "from"}
    backwards = read("/analysis/performance", **{"from": "2026-06", "to": "2026-05"})
    assert backwards.status_code == 422 and error_fields(backwards) == {"from"}


def test_anomalies_newest_first(read, fleet):
    body = read("/anomalies").get_json()
    assert body["total"] == 4 and body["as_of"] == "2026-06-10"
    assert [(a["site_id"], a["type"]) for a in body["items"]] == [
        ("S1", "spike"), ("S3", "low_signal"), ("S2", "stuck_register"), ("S1", "gap")]
    stuck = body["items"][2]
    assert stuck["open"] is True and stuck["end_day"] is None and stuck["region"] == "Unknown"
    assert stuck["details"] == {"register_kwh": 10.5, "days": 21}


@pytest.mark.parametrize(("query", "expected"), [
    ({"site_id": "S1"}, ["spike", "gap"]),
    ({"type": "gap"}, ["gap"]),
    ({"region": "London"}, ["low_signal"]),
    ({"open": "true"}, ["spike", "stuck_register"]),
    ({"open": "false"}, ["low_signal", "gap"]),
    ({"start": "2026-06-04"}, ["spike", "stuck_register"]),  # still running on or after 06-04
    ({"end": "2026-05-10"}, ["gap"]),
    ({"start": "2026-05-03", "end": "2026-05-25"}, ["stuck_register", "gap"]),
    ({"limit": 1, "offset": 1}, ["low_signal"]),
])
def test_anomaly_filters(read, fleet, query, expected):
    assert [a["type"] for a in read("/anomalies", **query).get_json()["items"]] == expected


def test_anomaly_bad_parameters_are_422(read, fleet):
    bad = read("/anomalies", type="meteor", open="maybe", limit=0)
    assert bad.status_code == 422 and error_fields(bad) == {"type", "open", "limit"}
    backwards = read("/anomalies", start="2026-06-05", end="2026-06-01")
    assert backwards.status_code == 422 and error_fields(backwards) == {"start"}


# --- dashboard ---------------------------------------------------------------------------------

def test_dashboard_404_before_anything_is_computed(read, fleet):
    for kind in ("quick-stats", "fleet-summary", "production-metrics"):
        response = read(f"/dashboard/{kind}")
        assert response.status_code == 404
        error = response.get_json()["error"]
        assert error["code"] == "not_computed" and kind in error["message"] and "computed" in error["message"]
    assert read("/analysis/readings").status_code == 404


def test_quick_stats_latest_and_as_of(read, computed):
    latest = read("/dashboard/quick-stats").get_json()
    assert latest["as_of"] == "2026-06-10" and latest["computed_at"]
    assert latest["total_sites"] == 4 and latest["active_sites"] == 4
    assert latest["status_counts"] == {"healthy": 1, "zero_read": 1, "no_coms": 1, "not_computed": 1}
    assert latest["open_anomalies_total"] == 2 and latest["open_anomalies"]["spike"] == 1
    assert latest["generation_yesterday_kwh"] == 0 and latest["generation_month_to_date_kwh"] == 12
    earlier = read("/dashboard/quick-stats", as_of="2026-06-09").get_json()
    assert earlier["as_of"] == "2026-06-09" and earlier["open_anomalies_total"] == 2
    missing = read("/dashboard/quick-stats", as_of="2026-01-01")
    assert missing.status_code == 404 and "2026-01-01" in missing.get_json()["error"]["message"]
    assert read("/dashboard/quick-stats", as_of="June").status_code == 422


def test_fleet_summary_and_production_metrics(read, computed):
    summary = read("/dashboard/fleet-summary").get_json()
    assert summary["as_of"] == "2026-06-10" and summary["month_start"] == "2026-06-01"
    assert [(r["region"], r["sites"], r["capacity_kwp"]) for r in summary["regions"]] == [
        ("London", 2, 4), ("South West", 1, 4), ("Unknown", 1, 2)]
    assert summary["regions"][1]["generation_7d_kwh"] == 2.5 + 4  # 06-04…06-10
    assert summary["regions"][1]["generation_30d_kwh"] == 12
    metrics = read("/dashboard/production-metrics").get_json()
    assert metrics["as_of"] == "2026-06-10" and len(metrics["daily"]) == 30
    # month to date: the monthly performance rows of June (S1's only)
    assert metrics["month_to_date"] == {"month_start": "2026-06-01", "actual_kwh": 75, "expected_kwh": 100,
                                        "ratio_pct": 75, "sites_with_expected": 1}
    assert [s["site_id"] for s in metrics["top_sites"]] == [s["site_id"] for s in metrics["bottom_sites"]] == ["S1"]


@pytest.mark.parametrize("path", [
    "/sites/S1/communication-status", "/sites/S1/daily", "/analysis/connection", "/analysis/readings",
    "/analysis/performance", "/anomalies", "/dashboard/quick-stats", "/dashboard/fleet-summary",
    "/dashboard/production-metrics",
])
def test_results_need_the_read_scope(client, auth, path):
    assert client.get(f"/api/v1{path}").status_code == 401
    forbidden = client.get(f"/api/v1{path}", headers=auth("ingest"))
    assert forbidden.status_code == 403 and forbidden.get_json()["error"]["code"] == "forbidden"
