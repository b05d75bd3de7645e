"""The base of every error a user can act on (a config, a data file, a checkpoint, a run directory): the CLI
reports any ``CrossdistillError`` in one line with exit code 2; anything else is a bug and keeps its traceback.
Each subclass also derives from the built-in error it refines (``ValueError``, ``KeyError``, ...), so code that
caught those keeps working."""


class CrossdistillError(Exception):
    """Something the user gave cannot be used; the message names it and what to do."""
