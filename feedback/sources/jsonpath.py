"""A small JSONPath subset for mapping API responses: `$.data.items[*]`, `$['a b'][0].value`.

Supported: the root `$` (optional), `.name`, `['name']` / `["name"]`, `[index]` (negative
too), and the wildcards `[*]` / `.*`. That covers the field mappings of real review and ticket
APIs without a dependency; filters and recursive descent are deliberately out.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Annotated, Any

from pydantic import AfterValidator

_TOKEN = re.compile(
    r"""\.(?P<name>[A-Za-z_@$][\w@$:-]*)      # .name
      | \.\*(?P<dotstar>)                    # .*
      | \[\s*\*\s*\](?P<star>)               # [*]
      | \[\s*(?P<index>-?\d+)\s*\]           # [0]
      | \[\s*'(?P<sq>(?:[^'\\]|\\.)*)'\s*\]  # ['name']
      | \[\s*"(?P<dq>(?:[^"\\]|\\.)*)"\s*\]  # ["name"]
    """,
    re.VERBOSE,
)
_STAR = object()


class JsonPathError(ValueError):
    """An expression outside the supported subset."""


class JsonPath:
    """A compiled path; `find` returns every match, `first` the first or None."""

    def __init__(self, expression: str, steps: tuple[Any, ...]) -> None:
        self.expression = expression
        self.steps = steps

    def __repr__(self) -> str:
        return f"JsonPath({self.expression!r})"

    def find(self, document: Any) -> list[Any]:
        current = [document]
        for step in self.steps:
            following: list[Any] = []
            for value in current:
                if step is _STAR:
                    if isinstance(value, list):
                        following.extend(value)
                    elif isinstance(value, dict):
                        following.extend(value.values())
                elif isinstance(step, int):
                    if isinstance(value, list) and -len(value) <= step < len(value):
                        following.append(value[step])
                elif isinstance(value, dict) and step in value:
                    following.append(value[step])
            current = following
            if not current:
                break
        return current

    def first(self, document: Any) -> Any:
        found = self.find(document)
        return found[0] if found else None

    @property
    def is_root(self) -> bool:
        return not self.steps


def valid_path(expression: str) -> str:
    """`expression` if it compiles (a pydantic validator: options are checked when declared)."""
    compile_path(expression)
    return expression


# An option holding a JSONPath: checked when the source is declared, not at the first pull.
JsonPathText = Annotated[str, AfterValidator(valid_path)]


@lru_cache(maxsize=512)
def compile_path(expression: str) -> JsonPath:
    """Compile `expression`; a bare `a.b` means `$.a.b`."""
    text = expression.strip()
    if text.startswith("$"):
        rest = text[1:]
    else:
        rest = "." + text if text and not text.startswith("[") else text
    steps: list[Any] = []
    position = 0
    while position < len(rest):
        match = _TOKEN.match(rest, position)
        if match is None:
            raise JsonPathError(
                f"JSONPath {expression!r}: cannot read {rest[position:]!r}; supported are "
                f"$.name, ['name'], [0], [*] and .* (e.g. $.data.reviews[*].rating)"
            )
        if match.group("name") is not None:
            steps.append(match.group("name"))
        elif match.group("dotstar") is not None or match.group("star") is not None:
            steps.append(_STAR)
        elif match.group("index") is not None:
            steps.append(int(match.group("index")))
        else:
            quoted = match.group("sq") if match.group("sq") is not None else match.group("dq")
            steps.append(re.sub(r"\\(.)", r"\1", quoted))
        position = match.end()
    return JsonPath(expression, tuple(steps))
