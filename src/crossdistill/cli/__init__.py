"""Command line: thin wrappers over library functions. ``crossdistill --help`` lists the commands."""

from crossdistill.cli import data_commands, deploy_commands, train_commands  # noqa: F401  (they register their commands)
from crossdistill.cli.app import app

__all__ = ["app"]
