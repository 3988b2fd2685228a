"""Lux tasks, one module per queue; `worker.app` lists them in `TASK_MODULES`."""
