"""The journal entry of a batch names each site written with the local day of its earliest new reading."""

import datetime as dt
import json
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from lux.ingest import ingest_json

LONDON = ZoneInfo("Europe/London")
# Around local midnight in winter and summer time and on the spring change day: one UTC date holds two local days.
INSTANTS = [dt.datetime(2026, 3, d, h, m, tzinfo=dt.UTC)
            for d in (28, 29, 30) for h, m in ((0, 10), (22, 50), (23, 30))]
INSTANTS += [dt.datetime(2026, 1, 5, h, tzinfo=dt.UTC) for h in (0, 23)]

reading = st.builds(
    lambda site, instant, kwh: {"site_id": site, "reading_at": instant.isoformat(), "register_kwh": kwh},
    st.sampled_from(["J1", "J2", "J3"]), st.sampled_from(INSTANTS), st.sampled_from([1.0, 2.0]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(reading, min_size=1, max_size=8))
def test_each_site_is_journalled_with_the_local_day_of_its_earliest_reading(database, batch):
    with database.engine.begin() as conn:
        conn.execute(text("TRUNCATE readings, ingest_rejects, ingest_journal"))
        pks = dict(conn.execute(text(
            "INSERT INTO sites (site_id, name, capacity_kwp) VALUES ('J1', 'j', 3), ('J2', 'j', 3), ('J3', 'j', 3) "
            "ON CONFLICT (site_id) DO UPDATE SET name = excluded.name RETURNING site_id, id")).all())
    outcome = ingest_json(database, json.dumps(batch).encode(), replace=False, request_id="journal")

    expected: dict[int, str] = {}
    for row in batch:
        day = dt.datetime.fromisoformat(row["reading_at"]).astimezone(LONDON).date().isoformat()
        expected[pks[row["site_id"]]] = min(day, expected.get(pks[row["site_id"]], day))
    by_site = {pk: day for day, site_pks in outcome.sites_by_day.items() for pk in site_pks}
    assert by_site == expected
    with database.engine.connect() as conn:
        journalled = {pk: day.isoformat() for pk, day in conn.execute(text(
            "SELECT pk, day FROM ingest_journal, unnest(site_pks, from_days) AS u(pk, day)"))}
    assert journalled == expected


def test_a_follow_takes_every_entry_after_its_cursor_once(database):
    """Entries after the cursor, each site once with its earliest day; the cursor then passes them, so the next
    follow takes only what came after."""
    from lux.compute.engine import open_follow_scope
    from lux.ingest.journal import mark_dirty, take_entries_to_follow

    def taken(session) -> dict[int, dt.date]:
        open_follow_scope(session)
        count = take_entries_to_follow(session)
        scope = dict(session.execute(text("SELECT site_pk, from_day FROM follow_scope")).all())
        assert count == len(scope)
        return scope

    day = dt.date(2026, 6, 1)
    with database.session_scope() as session:
        for n, pks in enumerate([[1, 2], [3], [2, 3, 4]]):
            mark_dirty(session, pks, reason=f"entry {n}", from_day=day + dt.timedelta(days=2 - n))
    with database.session_scope() as session:
        assert taken(session) == {1: day + dt.timedelta(days=2), 2: day, 3: day, 4: day}
    with database.session_scope() as session:
        assert taken(session) == {}
        mark_dirty(session, [5], reason="later", from_day=day)
    with database.session_scope() as session:
        assert taken(session) == {5: day}


def test_a_follow_keeps_the_sites_it_found_held_for_the_next_one_until_held_too_long(database):
    """Sites a follow found held (follow_held) wait in the cursor; the next follow takes them with the new entries'
    sites, each once with its earliest day and since when it is held; a site held longer than the limit is dropped
    (left to its recompute)."""
    from lux.compute.engine import open_follow_scope
    from lux.ingest.journal import keep_held, mark_dirty, take_entries_to_follow

    day = dt.date(2026, 6, 1)
    with database.session_scope() as session:
        mark_dirty(session, [1, 2, 3], reason="entry", from_day=day)
    with database.session_scope() as session:
        open_follow_scope(session)
        assert take_entries_to_follow(session) == 3
        session.execute(text("INSERT INTO follow_held VALUES (1, :day, now() - interval '10 s'), "
                             "(2, :day, now() - interval '200 s')"), {"day": day})
        assert keep_held(session, max_held_s=120) == 1
        kept_since = session.execute(text("SELECT held_since[1] FROM status_follow_cursor")).scalar_one()
    with database.session_scope() as session:
        mark_dirty(session, [1, 4], reason="later", from_day=day + dt.timedelta(days=1))
    with database.session_scope() as session:
        open_follow_scope(session)
        assert take_entries_to_follow(session) == 2
        scope = {pk: (from_day, since) for pk, from_day, since in session.execute(text("SELECT * FROM follow_scope"))}
        assert scope == {1: (day, kept_since), 4: (day + dt.timedelta(days=1), None)}
        assert keep_held(session, max_held_s=120) == 0  # this follow found none held
    with database.session_scope() as session:
        open_follow_scope(session)
        assert take_entries_to_follow(session) == 0


SPLIT_BACKLOG = text("""
    INSERT INTO ingest_journal (created_at, request_id, site_pks, from_days, follow_pks, follow_days, earliest_at)
    VALUES (now() - interval '60 minutes', 'e1', '{1,2,3}', '{2026-03-10,2026-03-10,2026-03-10}', NULL, NULL,
            '2026-03-10 08:00+00'),
           (now() - interval '50 minutes', 'e2', '{2,3,4}', '{2026-03-09,2026-03-11,2026-03-11}', '{4}', '{2026-03-11}',
            '2026-03-09 08:00+00'),
           (now() - interval '40 minutes', 'e3', '{4,5}', '{2026-03-10,2026-03-10}', NULL, NULL, '2026-03-10 09:00+00')
    RETURNING id
""")


def journal_rows(database) -> list[tuple]:
    with database.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(text("""
            SELECT id, request_id, site_pks, from_days, follow_pks, follow_days, earliest_at, created_at
              FROM ingest_journal ORDER BY id"""))]


def test_a_sweep_splits_its_backlog_into_one_entry_per_class_of_sites(database):
    """The oldest entries become one entry per class of their sites (`pk % parts`), so the recomputes of a spread name
    disjoint sites: each site once with its earliest day, the oldest entry's stamp, the earliest `earliest_at`, and
    the sites the follow has yet to continue (those left by entries after its cursor) still to follow. A backlog of
    too few sites or too recent, a single part, or the entries of an earlier split are left as they are."""
    from lux.compute.modes import spread_backlog

    with database.session_scope() as session:
        session.execute(text("TRUNCATE ingest_journal, status_follow_cursor"))
        first, *_ = session.execute(SPLIT_BACKLOG).scalars()
        session.execute(text("INSERT INTO status_follow_cursor (id, journal_id) VALUES (1, :id)"), {"id": first})
    before = journal_rows(database)

    assert spread_backlog(database, older_than_s=0, parts=2, min_sites=9) == []  # 8 sites named
    assert spread_backlog(database, older_than_s=3 * 3600, parts=2, min_sites=1) == []
    assert spread_backlog(database, older_than_s=0, parts=1, min_sites=1) == []
    assert journal_rows(database) == before

    ids = spread_backlog(database, older_than_s=0, parts=2, min_sites=8)
    after = journal_rows(database)
    assert [row[0] for row in after] == sorted(ids) and len(ids) == 2 and min(ids) > before[-1][0]
    day = dt.date.fromisoformat
    classes = sorted(row[2:7] for row in after)
    assert classes == [
        ([1, 3, 5], [day("2026-03-10")] * 3, [5], [day("2026-03-10")], dt.datetime(2026, 3, 9, 8, tzinfo=dt.UTC)),
        ([2, 4], [day("2026-03-09"), day("2026-03-10")], [4], [day("2026-03-10")],
         dt.datetime(2026, 3, 9, 8, tzinfo=dt.UTC)),
    ]
    assert {row[1] for row in after} == {"spread"}
    assert {row[7] for row in after} == {before[0][7]}  # the oldest entry's stamp

    assert spread_backlog(database, older_than_s=0, parts=3, min_sites=1) == []  # owed to their own recomputes
    assert journal_rows(database) == after

    with database.session_scope() as session:  # with an entry that does not know its earliest reading, nor does a split
        session.execute(text("TRUNCATE ingest_journal"))
        session.execute(SPLIT_BACKLOG)
        session.execute(text("UPDATE ingest_journal SET earliest_at = NULL WHERE request_id = 'e3'"))
    assert len(spread_backlog(database, older_than_s=0, parts=3, min_sites=1)) == 3
    assert {row[6] for row in journal_rows(database)} == {None}
    assert sorted(pk for row in journal_rows(database) for pk in row[2]) == [1, 2, 3, 4, 5]


def test_a_claim_takes_no_more_entries_than_asked_when_the_journal_looked_empty(database):
    """A journal analysed while nearly drained (as autovacuum may find it between bursts) leads the planner to scan
    the journal and look each entry up in the locking subquery, run again for every entry. Each run skips the entries
    the claim has already deleted and locks the next ones: a claim of two entries would take them all."""
    from lux.ingest.journal import claim_journal_entries, mark_dirty

    with database.session_scope() as session:
        session.execute(text("TRUNCATE ingest_journal"))
        mark_dirty(session, [1], reason="quiet")
    with database.engine.begin() as conn:
        conn.execute(text("ANALYZE ingest_journal"))
    with database.session_scope() as session:
        for pk in range(2, 17):
            mark_dirty(session, [pk], reason="burst")
    with database.session_scope() as session:
        claimed = claim_journal_entries(session, limit=2)
    assert sorted(claimed.from_days) == [1, 2] and claimed.readings_after == {}
    with database.engine.connect() as conn:
        left = conn.execute(text("SELECT array_agg(site_pks[1] ORDER BY id) FROM ingest_journal")).scalar_one()
    assert left == list(range(3, 17))


def test_a_claim_knows_no_new_reading_of_a_site_is_before_its_entries_earliest(database):
    """An ingest's entry keeps the earliest reading it wrote, of any site; a claim gives each site the earliest of its
    entries' (what a recompute needs to extend a day instead of reading it again), and none for a site that an entry
    without it (`mark_dirty`'s) names."""
    from lux.ingest.journal import claim_journal_entries, mark_dirty

    with database.engine.begin() as conn:
        conn.execute(text("TRUNCATE readings, ingest_rejects, ingest_journal"))
        pks = dict(conn.execute(text(
            "INSERT INTO sites (site_id, name, capacity_kwp) VALUES ('J1', 'j', 3), ('J2', 'j', 3), ('J3', 'j', 3) "
            "ON CONFLICT (site_id) DO UPDATE SET name = excluded.name RETURNING site_id, id")).all())

    def post(rows: list[tuple[str, str]]) -> None:
        body = [{"site_id": site, "reading_at": at, "register_kwh": 1.0} for site, at in rows]
        ingest_json(database, json.dumps(body).encode(), replace=False, request_id="earliest")

    post([("J1", "2026-03-28T10:00:00Z"), ("J2", "2026-03-28T09:00:00Z"), ("J1", "2026-03-28T08:30:00Z")])
    post([("J2", "2026-03-28T07:00:00Z"), ("J3", "2026-03-28T11:00:00Z")])
    with database.session_scope() as session:
        mark_dirty(session, [pks["J3"]], reason="test")
    with database.engine.connect() as conn:
        kept = conn.execute(text("SELECT earliest_at FROM ingest_journal ORDER BY id")).scalars().all()
    at = dt.datetime.fromisoformat
    assert kept == [at("2026-03-28T08:30:00Z"), at("2026-03-28T07:00:00Z"), None]
    with database.session_scope() as session:
        claimed = claim_journal_entries(session, limit=3)
    assert claimed.readings_after == {pks["J1"]: at("2026-03-28T08:30:00Z"), pks["J2"]: at("2026-03-28T07:00:00Z")}
    assert set(claimed.from_days) == set(pks.values())


def test_a_split_skips_the_entries_another_holds_and_loses_none(database):
    """Two splits at once (a sweep and an ended burst's event): the second does not wait for the first and takes only
    the entry the first does not hold; between them every site named stays journalled."""
    from lux.compute.modes import spread_backlog
    from lux.ingest.journal import split_backlog

    with database.session_scope() as session:
        session.execute(text("TRUNCATE ingest_journal, status_follow_cursor"))
        session.execute(SPLIT_BACKLOG)
    with database.session_scope() as first:
        held = split_backlog(first, older_than_s=0, limit=2, parts=2)  # the two oldest entries, held until commit
        assert len(held) == 2
        second = spread_backlog(database, older_than_s=0, parts=2, min_sites=1)  # another session, at once
    rows = {row[0]: row[2] for row in journal_rows(database)}
    assert sorted(rows) == sorted(held + second)
    assert sorted(pk for journal_id in held for pk in rows[journal_id]) == [1, 2, 3, 4]  # the entries it took, e1 e2
    assert sorted(pk for journal_id in second for pk in rows[journal_id]) == [4, 5]  # e3, the one left to the other
    assert all(len(set(pks)) == len(pks) for pks in rows.values())
