"""docker-compose.yml and the Dockerfile start things that exist in this project.

There is no Docker engine here, so nothing is run: the files are read and every command is
checked against the code. Renaming a CLI command, the Celery app attribute or a queue then
fails here rather than on the first deploy.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import shlex
from importlib.metadata import entry_points
from pathlib import Path

import click
import pytest
import yaml
from celery import Celery
from celery.bin.base import CLIContext
from celery.bin.celery import celery as celery_cli
from gunicorn.config import Config as GunicornConfig
from tornado.options import options as tornado_options

from lux.cli import main as lux_cli
from lux.config import Settings
from worker.app import QUEUES

ROOT = Path(__file__).resolve().parent.parent
SERVICES: dict[str, dict] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
APP_SERVICES = {name: service for name, service in SERVICES.items() if "build" in service}
ONE_SHOT = {"migrate", "beat"}  # migrate exits when done; beat has no cheap liveness probe


def option(argv: list[str], name: str) -> str | None:
    """The value of `name` in `argv`, written `name value` or `name=value`."""
    for i, arg in enumerate(argv):
        if arg == name:
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def interpolated(argv: list[str], environ: dict[str, str]) -> list[str]:
    """`argv` as compose passes it with `environ` set on the host: each `${NAME:-default}` becomes NAME's value, or
    the default when NAME is unset or empty."""
    def value(match: re.Match) -> str:
        return environ.get(match["name"]) or match["default"]
    return [re.sub(r"\$\{(?P<name>\w+):-(?P<default>[^}]*)\}", value, arg) for arg in argv]


def check_lux(args: list[str]) -> None:
    """Walk the click groups down to a command, then let click parse the rest of the line."""
    command, path = lux_cli, ["lux"]
    while isinstance(command, click.Group):
        assert args and args[0] in command.commands, f"`{' '.join(path)}` has no subcommand {args[:1]}"
        name, *args = args
        command, path = command.commands[name], [*path, name]
    command.make_context(" ".join(path), args)  # raises on an unknown option or argument


def check_celery(args: list[str]) -> click.Context | None:
    """`celery --app MODULE:ATTR SUBCOMMAND ...`: the app exists and celery accepts the line; the subcommand's parsed
    context (none for flower, whose options tornado parses)."""
    assert args[0] == "--app", "write celery lines as `celery --app MODULE:ATTR ...`"
    module, attribute = args[1].split(":")
    app = getattr(importlib.import_module(module), attribute, None)
    assert isinstance(app, Celery), f"{args[1]} is not a Celery app"
    subcommand, rest = args[2], args[3:]
    assert subcommand in celery_cli.commands, f"celery has no subcommand {subcommand!r}"
    if subcommand == "flower":  # a plugin command that hands its options to tornado
        assert importlib.util.find_spec("flower") is not None
        importlib.import_module("flower.options")  # defines flower's tornado options
        unknown = [arg for arg in rest if arg.split("=")[0].lstrip("-") not in tornado_options]
        assert not unknown, f"flower has no option {unknown}"
        return None
    context = CLIContext(app=app, no_color=True, workdir=None, quiet=True)
    return celery_cli.commands[subcommand].make_context(subcommand, rest, obj=context)


def worker_context(service: str, environ: dict[str, str]) -> click.Context:
    """The `celery worker` context of a worker service's command, as compose would run it with `environ`."""
    return check_celery(interpolated(SERVICES[service]["command"], environ)[1:])


def check_gunicorn(args: list[str]) -> None:
    """gunicorn accepts the options and `MODULE:FACTORY()` names a callable."""
    try:
        parsed = GunicornConfig(prog="gunicorn").parser().parse_args(args)
    except SystemExit:
        pytest.fail(f"gunicorn rejects {args}")
    module, factory = parsed.args[0].split(":")
    assert callable(getattr(importlib.import_module(module), factory.removesuffix("()"), None)), parsed.args[0]


CHECKS = {"lux": check_lux, "celery": check_celery, "gunicorn": check_gunicorn}


def check_entry_point(argv: list[str]) -> None:
    """The program is a console script the install provides, and it accepts the rest of the line."""
    program, *args = argv
    assert program in CHECKS, f"no check for {program!r}; add one"
    assert entry_points(group="console_scripts", name=program), f"no console script {program!r} installed"
    CHECKS[program](args)


def test_one_worker_per_queue_besides_the_other_services():
    """Every queue of worker.app has its own worker consuming exactly that queue, and nothing else is missing."""
    assert {"postgres", "redis", "migrate", "api", "beat", "flower"} <= SERVICES.keys()
    workers = {name for name in SERVICES if name.startswith("worker-")}
    assert workers == {f"worker-{queue}" for queue in QUEUES}
    for queue in QUEUES:
        assert option(SERVICES[f"worker-{queue}"]["command"], "--queues") == queue


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_app_service_command_exists_in_the_project(name):
    """Each app service's command, in list form, names a real CLI command, Celery app or WSGI factory."""
    command = APP_SERVICES[name]["command"]
    assert isinstance(command, list), "use the list (exec) form for command:"
    check_entry_point(interpolated(command, {}))


@pytest.mark.parametrize("environ", [{}, {"LUX_COMPUTE_CONCURRENCY": "3", "LUX_EVENT_CONCURRENCY": "2"}])
def test_worker_processes_follow_the_settings_lux_up_reads(environ):
    """The compute and event workers run the processes `lux up` gives them from the same variables: the event worker
    Settings' count, the compute worker the set count or else Celery's default (None: a process a core, as Settings'
    default is)."""
    settings = Settings.from_env(environ)
    assert worker_context("worker-ingest", environ).params["concurrency"] == settings.event_concurrency
    compute = worker_context("worker-compute", environ).params["concurrency"]
    assert compute == (settings.compute_concurrency if "LUX_COMPUTE_CONCURRENCY" in environ else None)


def test_long_running_services_have_healthchecks():
    """Everything but the one-shot services is probed, and `service_healthy` only waits on probed services."""
    assert {name for name, service in SERVICES.items() if "healthcheck" not in service} == ONE_SHOT
    for name, service in SERVICES.items():
        for dependency, rule in (service.get("depends_on") or {}).items():
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in SERVICES[dependency], f"{name} waits on unprobed {dependency}"


@pytest.mark.parametrize("queue", QUEUES)
def test_worker_healthcheck_pings_its_own_worker(queue):
    """The probe is a valid celery line and pings the node name the worker runs under."""
    service = SERVICES[f"worker-{queue}"]
    kind, line = service["healthcheck"]["test"]
    probe = shlex.split(line)
    check_entry_point(probe)
    node = option(service["command"], "--hostname")
    assert node == f"{queue}@%h"
    assert option(probe, "--destination") == f"{queue}@$$HOSTNAME"  # compose turns $$ into $
    assert kind == "CMD-SHELL"  # so the shell expands $HOSTNAME, which %h also is


def test_dockerfile_cmd_is_the_api_command():
    """The image's default process is the API exactly as compose runs it, installed editable."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    cmd = [line.removeprefix("CMD ") for line in dockerfile.splitlines() if line.startswith("CMD ")]
    assert json.loads(cmd[-1]) == SERVICES["api"]["command"]
    assert "pip install --no-cache-dir -e ." in dockerfile  # lux/migrate.py finds migrations/ at the repo root
