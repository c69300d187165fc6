"""Versioned registry of head factories (spaCy-style), filled lazily on first look-up.

Names are `<task>.<version>`: `sentiment.v1`, `emotions.v1`, `needs.v1`, `touchpoint.v1`, ...
A new recipe gets a new name beside the old one, and every stored tag carries the name of the
head that made it, so tags from different model versions are never mixed up silently.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

# Modules whose import registers the built-in factories.
_BUILTIN_MODULES = ("classifiers.heads", "classifiers.touchpoints")


class Registry:
    """Maps versioned names to factories; built-ins are registered on first use."""

    def __init__(self) -> None:
        self._factories: dict[str, Callable[..., Any]] = {}
        self._filled = False

    def register(self, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator: register a factory under `name` (e.g. "sentiment.v2")."""
        task, _, version = name.partition(".")
        if not task or not version.startswith("v"):
            raise ValueError(f"registry names look like 'task.v1', got {name!r}")

        def add(factory: Callable[..., Any]) -> Callable[..., Any]:
            self._factories[name] = factory
            return factory

        return add

    def _fill(self) -> None:
        if not self._filled:
            self._filled = True
            for module in _BUILTIN_MODULES:
                importlib.import_module(module)

    def get(self, name: str) -> Callable[..., Any]:
        """The factory registered under `name`."""
        self._fill()
        try:
            return self._factories[name]
        except KeyError:
            raise KeyError(
                f"no model {name!r} in the registry (known: {', '.join(self.names())})"
            ) from None

    def names(self) -> list[str]:
        """All registered names, sorted."""
        self._fill()
        return sorted(self._factories)

    def __contains__(self, name: object) -> bool:
        self._fill()
        return name in self._factories


registry = Registry()
