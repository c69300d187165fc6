"""Deterministic demo data for Northwind Home, a fictional retailer, and its staff.

``write_csv(path)`` writes one CSV of customer and employee feedback over 16 fixed ISO weeks with
planted stories (``STORIES``) that the analytics should find; see docs/demo_data.md.
"""

from __future__ import annotations

from typing import Any

from feedback.demo.stories import STORIES, Story, get_story

__all__ = ["COLUMNS", "STORIES", "WEEKS", "Story", "generate", "get_story", "write_csv"]


def __getattr__(name: str) -> Any:
    # Imported on first use so `python -m feedback.demo.generator` does not import it twice.
    if name in ("COLUMNS", "WEEKS", "generate", "write_csv"):
        from feedback.demo import generator

        return getattr(generator, name)
    raise AttributeError(f"module 'feedback.demo' has no attribute {name!r}")
