"""Hand-worked examples of every rule of docs/COMPUTATION.md, checked against the pure-Python reference."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from lux.compute.params import Params
from tests.compute import reference as ref
from tests.compute.reference import Reading, Site

LONDON = ZoneInfo("Europe/London")
P = Params()


def d(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def at(day: str, hour: int = 12, minute: int = 0) -> dt.datetime:
    """A local (Europe/London) wall-clock time on `day`."""
    return dt.datetime.combine(d(day), dt.time(hour, minute), tzinfo=LONDON)


def series(pk: int, start: str, registers: list[float | None], signal: int | None = None) -> list[Reading]:
    """One noon reading a day from `start`; None skips a day."""
    first = d(start)
    return [Reading(pk, at((first + dt.timedelta(days=i)).isoformat()), kwh, signal)
            for i, kwh in enumerate(registers) if kwh is not None]


def run(readings, as_of: str, *, capacity: float = 4.0, expected=None, params: Params = P, sites=None):
    sites = sites or [Site(1, capacity)]
    return ref.compute(sites, readings, expected or {}, params, d(as_of))


def anomalies(result, kind: str) -> dict:
    return {key[2]: value for key, value in result.anomalies.items() if key[1] == kind}


# --- days ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("instant", "day"), [
    ("2026-06-01T22:59:59+00:00", "2026-06-01"),  # 23:59:59 BST
    ("2026-06-01T23:00:00+00:00", "2026-06-02"),  # midnight BST
    ("2026-01-10T23:30:00+00:00", "2026-01-10"),  # GMT: the UTC date
    ("2026-03-28T23:59:59+00:00", "2026-03-28"),
    ("2026-03-29T00:30:00+00:00", "2026-03-29"),  # still GMT on the spring change day
    ("2026-03-29T22:59:59+00:00", "2026-03-29"),  # 23:59:59 BST
    ("2026-03-29T23:00:00+00:00", "2026-03-30"),
    ("2026-10-24T22:59:59+00:00", "2026-10-24"),
    ("2026-10-24T23:00:00+00:00", "2026-10-25"),  # midnight BST starts the 25-hour day
    ("2026-10-25T23:59:59+00:00", "2026-10-25"),  # 23:59:59 GMT
    ("2026-10-26T00:00:00+00:00", "2026-10-26"),
])
def test_local_day(instant, day):
    assert ref.local_day(dt.datetime.fromisoformat(instant), "Europe/London") == d(day)


def test_naive_instants_are_refused():
    with pytest.raises(ValueError):
        ref.local_day(dt.datetime(2026, 6, 1), "Europe/London")


def test_readings_after_as_of_are_ignored():
    result = run(series(1, "2026-06-01", [10, 20, 5]), "2026-06-02")
    assert sorted(day for _, day in result.site_days) == [d("2026-06-01"), d("2026-06-02")]
    assert result.anomalies == {}
    assert result.site_status[1]["last_register_kwh"] == 20


# --- site days -------------------------------------------------------------------------------


def test_site_days_estimated_days_and_rollback():
    result = run(series(1, "2026-06-01", [100, 110, None, None, 125, 120]), "2026-06-06")
    rows = {day.isoformat(): row for (_, day), row in result.site_days.items()}
    assert list(rows) == ["2026-06-01", "2026-06-02", "2026-06-03", "2026-06-04", "2026-06-05", "2026-06-06"]

    first = rows["2026-06-01"]
    assert (first["generation_kwh"], first["estimated"], first["rollback"]) == (None, False, False)
    assert (first["segment_end"], first["flat_since"], first["closing_kwh"]) == (d("2026-06-01"),) * 2 + (100,)

    assert (rows["2026-06-02"]["generation_kwh"], rows["2026-06-02"]["estimated"]) == (10, False)
    assert rows["2026-06-02"]["segment_end"] == d("2026-06-02")
    for day in ("2026-06-03", "2026-06-04", "2026-06-05"):
        assert (rows[day]["generation_kwh"], rows[day]["estimated"], rows[day]["segment_end"]) == (
            5.0, True, d("2026-06-05"))
    silent = rows["2026-06-03"]
    assert (silent["closing_at"], silent["closing_kwh"], silent["network"], silent["readings"]) == (None,) * 3 + (0,)
    assert (silent["signal_sum"], silent["signal_n"], silent["flat_since"], silent["rollback"]) == (0, 0, None, False)
    assert rows["2026-06-05"]["closing_kwh"] == 125

    back = rows["2026-06-06"]
    assert (back["generation_kwh"], back["estimated"], back["rollback"], back["segment_end"]) == (
        None, False, True, d("2026-06-06"))
    assert anomalies(result, "register_rollback") == {
        d("2026-06-06"): {"end_day": d("2026-06-06"), "details": {"from_kwh": 125, "to_kwh": 120},
                          "as_of": d("2026-06-06")}}


def test_rollback_over_several_days_nulls_all_of_them_but_flags_only_b():
    result = run(series(1, "2026-06-01", [50, None, None, 40]), "2026-06-04")
    rows = {day.isoformat(): row for (_, day), row in result.site_days.items()}
    for day in ("2026-06-02", "2026-06-03", "2026-06-04"):
        assert rows[day]["generation_kwh"] is None
        assert rows[day]["estimated"] is False
        assert rows[day]["segment_end"] == d("2026-06-04")
    assert [rows[day]["rollback"] for day in rows] == [False, False, False, True]


def test_closing_reading_is_the_latest_of_the_day_not_the_largest():
    readings = [
        Reading(1, at("2026-06-01", 9), 100.0, 10, "EE"),
        Reading(1, at("2026-06-01", 18), 105.0, 20, "O2"),
        Reading(1, at("2026-06-01", 12), 200.0, None, "Three"),
        Reading(1, at("2026-06-02", 0, 30), 106.0, 31, None),
    ]
    result = run(readings, "2026-06-02")
    first = result.site_days[(1, d("2026-06-01"))]
    assert first["closing_at"] == at("2026-06-01", 18)
    assert (first["closing_kwh"], first["network"], first["readings"]) == (105.0, "O2", 3)
    assert (first["signal_sum"], first["signal_n"]) == (30, 2)
    second = result.site_days[(1, d("2026-06-02"))]
    assert second["generation_kwh"] == pytest.approx(1.0)
    assert (second["signal_sum"], second["signal_n"], second["network"]) == (31, 1, None)
    status = result.site_status[1]
    assert (status["signal_level"], status["network"]) == (31.0, None)
    assert status["last_reading_at"] == at("2026-06-02", 0, 30)


def test_readings_around_midnight_on_the_autumn_change_day():
    # 2026-10-25 has 25 hours: 00:00 BST (= 10-24 23:00 UTC) … 23:59:59 GMT.
    utc = dt.UTC
    readings = [
        Reading(1, dt.datetime(2026, 10, 24, 22, 59, 59, tzinfo=utc), 10.0),  # 10-24
        Reading(1, dt.datetime(2026, 10, 24, 23, 0, 0, tzinfo=utc), 11.0),  # 10-25 00:00 BST
        Reading(1, dt.datetime(2026, 10, 25, 23, 59, 59, tzinfo=utc), 13.0),  # 10-25 23:59:59 GMT
        Reading(1, dt.datetime(2026, 10, 26, 0, 0, 0, tzinfo=utc), 14.0),  # 10-26
    ]
    result = run(readings, "2026-10-26")
    rows = {day.isoformat(): row for (_, day), row in result.site_days.items()}
    assert list(rows) == ["2026-10-24", "2026-10-25", "2026-10-26"]
    assert rows["2026-10-25"]["readings"] == 2
    assert rows["2026-10-25"]["generation_kwh"] == 3.0
    assert rows["2026-10-26"]["generation_kwh"] == 1.0


def test_flat_since_follows_the_chain_of_flat_closings():
    readings = series(1, "2026-06-01", [10, 10.0004, 10.0008, None, 10.0008, 11])
    result = run(readings, "2026-06-06")
    flat = {day.isoformat(): row["flat_since"] for (_, day), row in result.site_days.items()}
    # each closing is within 0.0005 of the previous one, so the run goes on although 10 → 10.0008 is not
    assert flat == {"2026-06-01": d("2026-06-01"), "2026-06-02": d("2026-06-01"), "2026-06-03": d("2026-06-01"),
                    "2026-06-04": None, "2026-06-05": d("2026-06-01"), "2026-06-06": d("2026-06-06")}


# --- status ----------------------------------------------------------------------------------


def test_status_never_reported():
    result = run([], "2026-06-10")
    assert result.site_status[1] == {"as_of": d("2026-06-10"), "status": "no_coms", "days": None, "last_day": None,
                                     "last_reading_at": None, "last_register_kwh": None, "signal_level": None,
                                     "network": None}
    assert result.site_days == result.anomalies == result.monthly_performance == {}


@pytest.mark.parametrize(("as_of", "status", "days"), [
    ("2026-06-05", "healthy", 0),
    ("2026-06-07", "healthy", 2),
    ("2026-06-08", "no_coms", 3),
    ("2026-06-20", "no_coms", 15),
])
def test_status_no_coms_boundary(as_of, status, days):
    result = run(series(1, "2026-06-01", [1, 2, 3, 4, 5], signal=12), as_of)
    row = result.site_status[1]
    assert (row["status"], row["days"], row["last_day"]) == (status, days, d("2026-06-05"))
    assert (row["last_register_kwh"], row["signal_level"]) == (5, 12.0)


@pytest.mark.parametrize(("registers", "status", "days"), [
    ([10, 20, 20, 20, 20], "zero_read", 3),  # ref = 06-02 (20): flat since 06-02
    ([10, 19, 20, 20, 20], "healthy", 0),  # ref = 06-02 (19): rose
    ([10, 20, 20, 20, 20.0004], "zero_read", 3),  # within the tolerance
    ([10, 20, 20, 20, 20.0006], "healthy", 0),
    ([None, None, 20, 20, 20], "healthy", 0),  # no reading on or before 06-02: no ref
    ([20, None, None, None, 20], "zero_read", 4),  # ref = 06-01, flat across a gap
    ([20, 20, 30, 20, 20], "zero_read", 1),  # ref 06-02 equals the last: the rise and rollback don't count
])
def test_status_zero_read_boundary(registers, status, days):
    row = run(series(1, "2026-06-01", registers), "2026-06-05").site_status[1]
    assert (row["status"], row["days"]) == (status, days)


def test_no_coms_wins_over_zero_read():
    row = run(series(1, "2026-06-01", [20, 20, 20, 20, 20]), "2026-06-09").site_status[1]
    assert (row["status"], row["days"]) == ("no_coms", 4)


def test_status_uses_the_parameters():
    registers = [10, 20, 21, 21, 21]
    params = Params(no_coms_days=5, zero_read_days=2)
    row = run(series(1, "2026-06-01", registers), "2026-06-09", params=params).site_status[1]
    assert (row["status"], row["days"]) == ("zero_read", 2)  # ref = 06-03 (21)
    row = run(series(1, "2026-06-01", registers), "2026-06-10", params=params).site_status[1]
    assert (row["status"], row["days"]) == ("no_coms", 5)
    row = run(series(1, "2026-06-01", registers), "2026-06-06").site_status[1]
    assert (row["status"], row["days"]) == ("healthy", 1)  # default: ref = 06-02 (20)


# --- anomalies -------------------------------------------------------------------------------


def test_gap_needs_two_missing_days_and_silence_after_the_end_is_no_gap():
    result = run(series(1, "2026-06-01", [1, None, 2, None, None, 3, None, None, None, 4]), "2026-06-30")
    assert anomalies(result, "gap") == {
        d("2026-06-04"): {"end_day": d("2026-06-05"), "details": {"days": 2}, "as_of": d("2026-06-30")},
        d("2026-06-07"): {"end_day": d("2026-06-09"), "details": {"days": 3}, "as_of": d("2026-06-30")},
    }


def test_stuck_register_running_closed_and_too_short():
    running = run(series(1, "2026-06-01", [10, 20, 20, 20, 20]), "2026-06-05")
    assert anomalies(running, "stuck_register") == {
        d("2026-06-02"): {"end_day": None, "details": {"register_kwh": 20, "days": 3}, "as_of": d("2026-06-05")}}

    # still running as of a later D when no reading came since (that is no_coms, the episode is not over)
    later = run(series(1, "2026-06-01", [10, 20, 20, 20, 20]), "2026-06-20")
    assert anomalies(later, "stuck_register")[d("2026-06-02")]["end_day"] is None

    closed = run(series(1, "2026-06-01", [10, 20, 20, 20, 20, 25]), "2026-06-06")
    assert anomalies(closed, "stuck_register") == {
        d("2026-06-02"): {"end_day": d("2026-06-05"), "details": {"register_kwh": 20, "days": 3},
                          "as_of": d("2026-06-06")}}

    short = run(series(1, "2026-06-01", [10, 20, 20, 20, 25]), "2026-06-05")
    assert anomalies(short, "stuck_register") == {}

    across_gap = run(series(1, "2026-06-01", [7, None, None, 7, 8]), "2026-06-05")
    assert anomalies(across_gap, "stuck_register") == {
        d("2026-06-01"): {"end_day": d("2026-06-04"), "details": {"register_kwh": 7, "days": 3},
                          "as_of": d("2026-06-05")}}


def test_spike_episodes():
    # capacity 1 kWp: limit 8 kWh; 8.0 exactly is no spike
    result = run(series(1, "2026-06-01", [0, 8, 17, 26, 27, None, None, 57]), "2026-06-08", capacity=1.0)
    assert anomalies(result, "spike") == {
        d("2026-06-03"): {"end_day": d("2026-06-04"), "details": {"max_kwh": 9.0, "limit_kwh": 8.0},
                          "as_of": d("2026-06-08")},
        # estimated days 06-06 … 06-08 get 10 kWh each; the run reaches the last valued day
        d("2026-06-06"): {"end_day": None, "details": {"max_kwh": 10.0, "limit_kwh": 8.0}, "as_of": d("2026-06-08")},
    }


def test_spike_still_running_when_only_null_days_follow():
    result = run(series(1, "2026-06-01", [0, 20, 10]), "2026-06-03", capacity=1.0)
    # 06-03 is a rollback (null): 06-02 stays the last day with a value, so the spike is running
    assert anomalies(result, "spike") == {
        d("2026-06-02"): {"end_day": None, "details": {"max_kwh": 20.0, "limit_kwh": 8.0}, "as_of": d("2026-06-03")}}
    assert set(anomalies(result, "register_rollback")) == {d("2026-06-03")}


def test_low_signal_is_a_mean_over_readings_of_seven_days():
    readings = [Reading(1, at("2026-06-01", 9), 1.0, 5), Reading(1, at("2026-06-02", 9), 2.0, 20),
                Reading(1, at("2026-06-03", 9), 3.0, None)]
    result = run(readings, "2026-06-30")
    # 06-01: mean 5 (low); 06-02 … 06-07: 12.5; 06-08: 20; 06-09: no signal in the window
    assert anomalies(result, "low_signal") == {
        d("2026-06-01"): {"end_day": d("2026-06-01"), "details": {"min_mean_csq": 5.0}, "as_of": d("2026-06-30")}}

    # the mean is over readings, not over daily means: (0 + 0 + 27) / 3 = 9 is low (daily means give 13.5)
    readings = [Reading(1, at("2026-06-01", 9), 1.0, 0), Reading(1, at("2026-06-01", 10), 1.0, 0),
                Reading(1, at("2026-06-02", 9), 2.0, 27)]
    result = run(readings, "2026-06-02")
    assert anomalies(result, "low_signal") == {
        d("2026-06-01"): {"end_day": None, "details": {"min_mean_csq": 0.0}, "as_of": d("2026-06-02")}}


@pytest.mark.parametrize(("as_of", "end_day"), [
    ("2026-06-04", None),  # checked up to D, low on D: running
    ("2026-06-08", None),  # last_day + 6 = 06-08 = D
    ("2026-06-09", "2026-06-08"),  # checked only up to last_day + 6 = 06-08 < D
    ("2026-06-20", "2026-06-08"),
])
def test_low_signal_episode_end(as_of, end_day):
    result = run(series(1, "2026-06-01", [1, 2], signal=9), as_of)
    assert anomalies(result, "low_signal") == {
        d("2026-06-01"): {"end_day": end_day and d(end_day), "details": {"min_mean_csq": 9.0}, "as_of": d(as_of)}}


def test_low_signal_threshold_is_strict():
    result = run(series(1, "2026-06-01", [1, 2], signal=10), "2026-06-04")
    assert anomalies(result, "low_signal") == {}


def daily(start: str, end: str, first_kwh: float, per_day: dict[int, float]) -> list[float]:
    """Registers of one reading a day from `start` to `end`, rising by per_day[month] each day."""
    registers, kwh, day = [], first_kwh, d(start)
    while day <= d(end):
        registers.append(kwh)
        day += dt.timedelta(days=1)
        kwh += per_day.get(day.month, 0)
    return registers


EXPECTED = [100.0] * 12
EXPECTED[5], EXPECTED[6], EXPECTED[7] = 300.0, 310.0, 310.0  # June, July, August


def test_monthly_performance_and_running_underperformance():
    registers = daily("2026-05-31", "2026-08-10", 0.0, {6: 8.0, 7: 7.0, 8: 5.0})
    result = run(series(1, "2026-05-31", registers), "2026-08-10", expected={1: EXPECTED})
    months = {month.isoformat(): row for (_, month), row in result.monthly_performance.items()}
    assert list(months) == ["2026-06-01", "2026-07-01", "2026-08-01"]  # 05-31 is the first day: no value, no May
    assert months["2026-06-01"] == {"actual_kwh": 240.0, "covered_days": 30, "expected_kwh": 300.0,
                                    "ratio_pct": 80.0, "as_of": d("2026-08-10")}
    assert months["2026-07-01"]["actual_kwh"] == pytest.approx(217.0)
    assert months["2026-07-01"]["ratio_pct"] == pytest.approx(70.0)
    assert months["2026-08-01"]["covered_days"] == 10
    assert months["2026-08-01"]["expected_kwh"] == pytest.approx(100.0)
    assert months["2026-08-01"]["ratio_pct"] == pytest.approx(50.0)
    # June at exactly 80 % is not below the threshold; July and August are, and August is the latest rated month
    found = anomalies(result, "underperformance")
    assert list(found) == [d("2026-07-01")]
    assert found[d("2026-07-01")]["end_day"] is None
    assert found[d("2026-07-01")]["details"]["months"] == 2
    assert found[d("2026-07-01")]["details"]["ratio_pct"] == pytest.approx(100 * 267 / 410)


def test_underperformance_closed_by_a_better_month():
    expected = list(EXPECTED)
    expected[7] = 50.0  # August: 50 kWh against 50 × 10 / 31 expected
    registers = daily("2026-05-31", "2026-08-10", 0.0, {6: 8.0, 7: 7.0, 8: 5.0})
    result = run(series(1, "2026-05-31", registers), "2026-08-10", expected={1: expected})
    found = anomalies(result, "underperformance")
    assert list(found) == [d("2026-07-01")]
    assert found[d("2026-07-01")]["end_day"] == d("2026-07-31")
    assert found[d("2026-07-01")]["details"] == {"months": 1, "ratio_pct": pytest.approx(70.0)}


def test_months_without_a_ratio_break_an_underperformance_run():
    expected = list(EXPECTED)
    expected[6] = 0.0  # July: expected 0, no ratio
    registers = daily("2026-05-31", "2026-08-31", 0.0, {6: 1.0, 7: 1.0, 8: 1.0})
    result = run(series(1, "2026-05-31", registers), "2026-08-31", expected={1: expected})
    assert result.monthly_performance[(1, d("2026-07-01"))]["ratio_pct"] is None
    found = anomalies(result, "underperformance")
    assert {day: row["end_day"] for day, row in found.items()} == {d("2026-06-01"): d("2026-06-30"),
                                                                   d("2026-08-01"): None}


def test_monthly_without_expected_generation_and_with_null_days():
    # 06-03 rolls back: null, so June covers 06-02 and 06-04 only
    result = run(series(1, "2026-06-01", [10, 12, 11, 15]), "2026-06-04")
    assert result.monthly_performance == {(1, d("2026-06-01")): {
        "actual_kwh": 6.0, "covered_days": 2, "expected_kwh": None, "ratio_pct": None, "as_of": d("2026-06-04")}}
    assert anomalies(result, "underperformance") == {}


def test_estimated_days_fall_into_their_own_months():
    result = run(series(1, "2026-06-29", [0, None, None, None, 40]), "2026-07-03", expected={1: EXPECTED})
    months = result.monthly_performance
    # 40 kWh over 06-30 … 07-03: 06-30 is June's only valued day (06-29 is the first day), 07-01 … 07-03 July's
    assert months[(1, d("2026-06-01"))]["actual_kwh"] == 10.0
    assert months[(1, d("2026-06-01"))]["covered_days"] == 1
    assert months[(1, d("2026-06-01"))]["expected_kwh"] == pytest.approx(300.0 / 30)
    assert months[(1, d("2026-07-01"))]["actual_kwh"] == 30.0
    assert months[(1, d("2026-07-01"))]["covered_days"] == 3
    assert months[(1, d("2026-07-01"))]["expected_kwh"] == pytest.approx(310.0 * 3 / 31)


# --- rollups ---------------------------------------------------------------------------------


def test_daily_rollups_per_area():
    sites = [Site(1, 4.0, "North"), Site(2, 4.0, "TBC"), Site(3, 4.0, None, active=False), Site(4, 4.0, "North")]
    readings = (series(1, "2026-06-01", [10, 12, None, 18]) + series(2, "2026-06-02", [5, 6])
                + [Reading(3, at("2026-06-02", 8), 1.0), Reading(3, at("2026-06-02", 9), 2.0)])
    expected = {1: [300.0] * 12}  # 10 kWh a day in June
    result = ref.compute(sites, readings, expected, P, d("2026-06-03"))
    rollups = {(area, day.isoformat()): row for (area, day), row in result.daily_rollups.items()}

    def row(sites, reporting, valued, readings, kwh, rated=0.0, expected_kwh=0.0):
        return {"sites": sites, "reporting_sites": reporting, "valued_sites": valued, "estimated_sites": 0,
                "readings": readings, "generation_kwh": kwh, "rated_generation_kwh": rated,
                "expected_kwh": expected_kwh}

    assert rollups[("fleet", "2026-06-01")] == row(3, 1, 0, 1, 0.0)
    # only site 1's value has an expected share: 300 kWh / 30 days
    assert rollups[("fleet", "2026-06-02")] == row(3, 2, 1, 2, 2.0, 2.0, 10.0)
    assert rollups[("fleet", "2026-06-03")] == row(3, 1, 1, 1, 1.0)
    assert rollups[("North", "2026-06-02")] == row(2, 1, 1, 1, 2.0, 2.0, 10.0)
    # TBC and null regions are one area; the inactive site is left out of every rollup
    assert rollups[("Unknown", "2026-06-02")] == row(1, 1, 0, 1, 0.0)
    # site 1's 06-04 reading is after D, so site 1 has no 06-03 row: no North row that day
    assert {day for _, day in rollups} == {"2026-06-01", "2026-06-02", "2026-06-03"}
    assert ("North", "2026-06-03") not in rollups
