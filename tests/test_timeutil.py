"""Fleet-local day numbers agree with zoneinfo for every instant, DST changes included."""

import datetime as dt
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from lux.timeutil import LocalDays

ZONES = ["Europe/London", "Australia/Lord_Howe", "Asia/Kathmandu", "America/St_Johns", "Pacific/Chatham"]
# instants near the changes, where a wrong offset would move the day
instants = st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2040, 1, 1),
                        timezones=st.just(dt.UTC))


@settings(max_examples=2000, deadline=None)
@given(zone=st.sampled_from(ZONES), at=instants)
def test_day_number_matches_zoneinfo(zone, at):
    days = LocalDays(zone)
    expected = at.astimezone(ZoneInfo(zone)).date()
    assert days.date(days.number(at)) == expected
    assert days.date(days.number(at)) == expected  # and again from the offset cache


def test_around_the_london_changes_of_2026():
    days = LocalDays("Europe/London")
    for text, day in [("2026-03-28T23:59:59Z", "2026-03-28"), ("2026-03-29T00:00:00Z", "2026-03-29"),
                      ("2026-10-24T22:59:59Z", "2026-10-24"), ("2026-10-24T23:00:00Z", "2026-10-25"),
                      ("2026-10-25T23:59:59Z", "2026-10-25"), ("2026-10-26T00:00:00Z", "2026-10-26")]:
        assert days.date(days.number(dt.datetime.fromisoformat(text))).isoformat() == day


def test_a_change_off_the_quarter_hour():
    """St John's left summer time at 00:01 local time until 2011: 02:30:59 UTC on 2000-10-29 is 00:00:59 on the 29th,
    a second later it is 23:01 on the 28th, and the 29th begins again at 03:30 UTC."""
    days = LocalDays("America/St_Johns")
    for text, day in [("2000-10-29T02:30:59Z", "2000-10-29"), ("2000-10-29T02:31:00Z", "2000-10-28"),
                      ("2000-10-29T03:29:59Z", "2000-10-28"), ("2000-10-29T03:30:00Z", "2000-10-29")]:
        assert days.date(days.number(dt.datetime.fromisoformat(text))).isoformat() == day


def test_every_quarter_hour_of_a_year_in_zones_with_odd_offsets():
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for zone in ZONES:
        days, tz = LocalDays(zone), ZoneInfo(zone)
        for step in range(0, 366 * 96):
            for nudge in (0, -1):  # on each quarter hour and the second before it
                at = start + dt.timedelta(minutes=15 * step, seconds=nudge)
                assert days.date(days.number(at)) == at.astimezone(tz).date(), (zone, at)
