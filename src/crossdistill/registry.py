"""A tiny name -> object registry (register / get / names), as in timm and fvcore."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Generic, TypeVar

from crossdistill.errors import CrossdistillError

T = TypeVar("T")


class UnknownNameError(CrossdistillError, KeyError):
    """An unknown registry name; the message lists the names that exist."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly.
        return str(self.args[0])


class Registry(Generic[T]):
    """Maps names to builders. ``kind`` names the registry in error messages ("loss", "encoder")."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            return obj

        return add

    def unregister(self, name: str) -> T:
        """Remove an entry (a plug-in or test that registered something for a while); returns it."""
        if name not in self._entries:
            raise UnknownNameError(f"unknown {self.kind} {name!r}; available: {', '.join(self.names())}")
        return self._entries.pop(name)

    def get(self, name: str) -> T:
        if name not in self._entries:
            close = difflib.get_close_matches(str(name), self.names(), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UnknownNameError(f"unknown {self.kind} {name!r}{hint}; available: {', '.join(self.names())}")
        return self._entries[name]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries


def summary(obj: object) -> str:
    """The first paragraph of an object's docstring, on one line (for ``crossdistill list``)."""
    doc = (getattr(obj, "__doc__", None) or "").strip()
    return " ".join(doc.split("\n\n")[0].split())
