"""Computation runs: trigger one (`POST /compute/run`), follow its task, list the run history."""

from __future__ import annotations

import uuid

from celery.result import AsyncResult
from flask.views import MethodView

from api.auth import requires
from api.bodies import body_limit
from api.db import get_database, get_session
from api.errors import ApiError, invalid_request
from api.events import send_task
from api.extensions import blueprint
from api.schemas.runs import ComputeRunRequestSchema, QueuedSchema, RunListArgsSchema, RunPageSchema, TaskStateSchema
from lux.compute import runs
from lux.compute.modes import explicit_run_problems
from lux.sites import site_pks_of
from lux.timeutil import fleet_today
from worker.tasks.compute import run as compute_run

blp = blueprint("runs", __name__, "", "Computation runs (SPEC §5): trigger, follow, history.")

MAX_RUN_BODY_BYTES = 16 * 1024 * 1024  # MAX_RUN_SITES site_ids of up to 64 characters, one a line, indented


@blp.route("/compute/run")
class ComputeRun(MethodView):
    @requires("operate")
    @body_limit(MAX_RUN_BODY_BYTES)
    @blp.no_query()
    @blp.arguments(ComputeRunRequestSchema)
    @blp.response(202, QueuedSchema)
    @blp.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE")
    def post(self, body):
        """Queue a computation: as-of day, optional sites and backfill range; answers with the task id."""
        session = get_session()
        today = fleet_today(get_database().settings.timezone)
        as_of = body["as_of"] or today
        problems = explicit_run_problems(as_of, body["from_day"], body["to_day"], today)
        if problems:
            raise invalid_request({"json": {name: [why] for name, why in problems.items()}})
        site_pks = None
        if body["sites"]:
            found = site_pks_of(session, body["sites"])
            unknown = sorted(set(body["sites"]) - set(found))
            if unknown:
                raise ApiError(422, f"Unknown site_id(s): {', '.join(unknown[:20])}.", {"sites": unknown})
            site_pks = sorted(found.values())
        run = runs.Run(task=compute_run.name, task_id=str(uuid.uuid4()), mode="explicit", as_of=as_of,
                       sites=len(site_pks) if site_pks else None, from_day=body["from_day"], to_day=body["to_day"])
        send_task(compute_run, task_id=run.task_id, kwargs={"as_of": as_of.isoformat(), "site_pks": site_pks,
                                                            "from_day": _iso(run.from_day),
                                                            "to_day": _iso(run.to_day)})
        runs.record_queued(session, run)
        session.commit()
        task_id = run.task_id
        return {"task_id": task_id, "task": compute_run.name, "status_url": f"/api/v1/tasks/{task_id}"}


@blp.route("/tasks/<task_id>")
class TaskState(MethodView):
    @requires("operate")
    @blp.no_query()
    @blp.response(200, TaskStateSchema)
    def get(self, task_id):
        """State and result of a task (from the result backend) with its run records."""
        records = runs.runs_of_task(get_session(), task_id)
        result = AsyncResult(task_id, app=compute_run.app)
        state = result.state
        if state == "PENDING" and not records:
            raise ApiError(404, f"No task with id {task_id!r} is known.")
        failed = state == "FAILURE"
        return {"task_id": task_id, "state": state, "result": result.result if state == "SUCCESS" else None,
                "error": repr(result.result) if failed else None, "date_done": result.date_done, "runs": records}


@blp.route("/runs")
class RunHistory(MethodView):
    @requires("operate")
    @blp.arguments(RunListArgsSchema, location="query")
    @blp.response(200, RunPageSchema)
    def get(self, args):
        """Run history, newest first; filters task, mode, outcome."""
        items, total = runs.list_runs(get_session(), task=args["task"], mode=args["mode"], outcome=args["outcome"],
                                      limit=args["limit"], offset=args["offset"])
        return {"items": items, "total": total, "limit": args["limit"], "offset": args["offset"]}


def _iso(day) -> str | None:
    return day.isoformat() if day else None

