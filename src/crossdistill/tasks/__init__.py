"""Tasks by name (``crossdistill list tasks``). Importing the task modules registers them."""

from crossdistill.tasks import classification, regression, retrieval  # noqa: F401  (registration)
from crossdistill.tasks.base import TASKS, Task, build_task, register_task

__all__ = ["TASKS", "Task", "build_task", "register_task"]
