"""`make up` on embedded servers, exactly as a user runs it, then Ctrl-C.

Checks: /readyz, the demo token reads sites, Flower asks for a login and lists the workers and their queues, a
task sent through the broker is run by the worker and shows in Flower's task API, the first full
computation fills the dashboard within a minute; SIGINT to
the process group stops every process, and a second start reuses the data.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest

from tests.conftest import free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 240


class Stack:
    def __init__(self, var_dir: Path) -> None:
        self.var_dir = var_dir
        self.api_port, self.flower_port = free_port(), free_port()
        self.pg_port, self.redis_port = free_port(), free_port()
        self.env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
        self.env.update(
            LUX_VAR_DIR=str(var_dir), LUX_API_PORT=str(self.api_port), LUX_FLOWER_PORT=str(self.flower_port),
            LUX_EMBEDDED_PG_PORT=str(self.pg_port), LUX_EMBEDDED_REDIS_PORT=str(self.redis_port),
            LUX_DEMO_SITES="150", LUX_DEMO_DAYS="45",
        )
        self.api = f"http://127.0.0.1:{self.api_port}"
        self.flower = f"http://127.0.0.1:{self.flower_port}"
        self.process: subprocess.Popen | None = None
        self.log_path = var_dir.parent / "stack.log"

    def start(self) -> str:
        self.log_path.write_text("")
        log = open(self.log_path, "a")  # noqa: SIM115 - handed to the child
        self.process = subprocess.Popen(["make", "up"], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while "Lux is up." not in self.log():
            assert self.process.poll() is None, f"`make up` exited early:\n{self.log()[-4000:]}"
            assert time.monotonic() < deadline, f"`make up` not up in {START_TIMEOUT_S}s:\n{self.log()[-4000:]}"
            time.sleep(0.5)
        return self.log()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def secret(self, name: str) -> str:
        return (self.var_dir / name).read_text().strip()

    def interrupt(self) -> None:
        """Ctrl-C: SIGINT to the whole foreground process group."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGINT)
        self.process.wait(90)
        assert "Lux stopped." in self.log()
        leftovers = self.leftovers()
        assert leftovers == [], f"processes left behind: {[p.info for p in leftovers]}"

    def leftovers(self) -> list[psutil.Process]:
        """Processes of this stack still alive: in its session, or working in or naming its var dir."""
        return [p for p in psutil.process_iter(["pid", "cmdline", "cwd"]) if self._ours(p)]

    def _ours(self, process: psutil.Process) -> bool:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                return False
            cmdline = " ".join(process.info["cmdline"] or [])
            return (
                (self.process is not None and os.getsid(process.pid) == self.process.pid)
                or str(self.var_dir) in cmdline
                or str(self.var_dir) in (process.info["cwd"] or "")
            )
        except (ProcessLookupError, psutil.Error):
            return False


@pytest.fixture
def stack(tmp_path):
    stack = Stack(tmp_path / "var")
    yield stack
    if stack.process and stack.process.poll() is None:  # a failed test: stop as a user would, then force
        os.killpg(stack.process.pid, signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            stack.process.wait(60)
    for process in stack.leftovers():
        process.kill()


def get(url: str, token: str | None = None, login: tuple[str, str] | None = None) -> tuple[int, object]:
    """GET `url` → (status, parsed JSON or None)."""
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if login:
        request.add_header("Authorization", "Basic " + base64.b64encode(":".join(login).encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read()
    try:
        return status, json.loads(body)
    except ValueError:
        return status, None


def wait_for(predicate, timeout: float = 60, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _computed(url: str, token: str) -> dict | None:
    status, body = get(url, token=token)
    return body if status == 200 else None


def test_make_up_runs_the_stack_and_ctrl_c_stops_it(stack):
    banner = stack.start()
    token, password = stack.secret("demo-token"), stack.secret("flower-password")
    assert token in banner and password in banner and "demo fleet seeded: 150 sites" in banner

    assert get(f"{stack.api}/readyz")[0] == 200
    status, sites = get(f"{stack.api}/api/v1/sites", token=token)
    assert status == 200 and sites["total"] == 150

    assert get(f"{stack.flower}/")[0] == 401
    login = ("lux", password)
    def every_worker():
        workers = get(f"{stack.flower}/api/workers?refresh=1", login=login)[1] or {}
        found = {name.split("@")[0]: info for name, info in workers.items()}
        return found if found.keys() >= {"lux", "ingest", "status"} and all(
            info.get("active_queues") and info.get("stats") for info in found.values()) else None

    workers = wait_for(every_worker, what="Flower to list the three workers with their queues")
    assert {name: {queue["name"] for queue in info["active_queues"]} for name, info in workers.items()} == {
        "lux": {"compute", "maintenance"}, "ingest": {"ingest"}, "status": {"status"}}
    assert workers["ingest"]["stats"]["pool"]["max-concurrency"] == 1  # the ingest keeps the other cores

    check_env = {**stack.env, "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{stack.pg_port}/lux",
                 "REDIS_URL": f"redis://127.0.0.1:{stack.redis_port}/0"}
    check = subprocess.run([Path(sys.executable).parent / "lux", "worker", "check"], cwd=ROOT, env=check_env,
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr
    answer = json.loads(check.stdout)
    assert answer["result"]["sites"] == 150 and answer["result"]["schema_at_head"] is True

    def task_in_flower():
        task = get(f"{stack.flower}/api/tasks", login=login)[1].get(answer["task_id"])
        return task if task and task["state"] == "SUCCESS" else None

    task = wait_for(task_in_flower, what="the task in Flower")
    assert task["name"] == "lux.maintenance.selfcheck" and task["worker"].startswith("lux@")

    quick = wait_for(lambda: _computed(f"{stack.api}/api/v1/dashboard/quick-stats", token),
                     what="the first full computation's results")
    assert quick["total_sites"] == 150
    counts = quick["status_counts"]
    assert counts["not_computed"] == 0 and sum(counts.values()) == quick["active_sites"]
    assert counts["no_coms"] > 0 and counts["healthy"] > counts["no_coms"]  # the demo fleet has silent sites

    stack.interrupt()

    second = stack.start()
    assert "existing data reused" in second and token in second
    assert get(f"{stack.api}/api/v1/sites?limit=1", token=token)[1]["total"] == 150
    stack.interrupt()
