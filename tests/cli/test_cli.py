"""The `lux` CLI, driven through click's CliRunner against the test database."""

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from lux.cli import main
from models import ApiClient, DemoFault, Reading, Site


@pytest.fixture
def run(settings):
    def invoke(*args: str):
        return CliRunner().invoke(main, list(args), obj=settings, catch_exceptions=False)

    return invoke


def test_token_create_prints_a_working_token_once(run, client, database):
    result = run("token", "create", "dashboard", "--scopes", "read, operate")
    assert result.exit_code == 0
    secret = result.output.strip()
    assert secret.startswith("lux_")
    with database.session_scope() as session:
        stored = session.scalar(select(ApiClient))
        assert stored.scopes == ["operate", "read"] and stored.token_hash != secret
    assert client.get("/api/v1/sites", headers={"Authorization": f"Bearer {secret}"}).status_code == 200


def test_token_create_refuses_unknown_scopes(settings):
    result = CliRunner().invoke(main, ["token", "create", "x", "--scopes", "read,root"], obj=settings)
    assert result.exit_code == 2
    assert "unknown: ['root']" in result.output


def test_db_upgrade_is_idempotent(run):
    assert run("db", "upgrade").exit_code == 0
    assert run("db", "upgrade").output.strip() == "database migrated to head"


def test_demo_seed_writes_fleet_and_refuses_to_double_seed(run, database):
    result = run("demo", "seed", "--sites", "30", "--days", "40", "--end-day", "2026-03-31")
    assert result.exit_code == 0
    summary = json.loads(result.output)
    assert summary["sites"] == 30
    with database.session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Site)) == 30
        assert session.scalar(select(func.count()).select_from(Reading)) == summary["readings"]
        assert session.scalar(select(func.count()).select_from(DemoFault)) == sum(summary["faults"].values())
    again = CliRunner().invoke(main, ["demo", "seed", "--sites", "3", "--days", "5"], obj=database.settings)
    assert again.exit_code == 2 and "--replace" in again.output
    replaced = run("demo", "seed", "--sites", "3", "--days", "5", "--replace")
    assert json.loads(replaced.output)["sites"] == 3
