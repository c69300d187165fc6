"""The stories planted in the Northwind Home demo data, machine-readable.

Each story names the slice of feedback it changes (``dimension`` = ``value``), the ISO week it
starts, what an analysis should find there (``expected``), and the words that characterise it, so
that end-to-end tests and the alerting checks can assert on the demo data without re-reading
``docs/demo_data.md``. ``keywords`` characterise the story (some, like "late", also occur in the
ordinary complaints before it); ``absent_before`` are the terms that never occur anywhere before
``starts_week`` (nor, for an org_unit story, outside that org_unit). The generator never puts a
typo into either, though it may lowercase a whole text: match case-insensitively.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Story:
    """One planted change in the demo data, and what an analysis should find."""

    key: str
    audience: str  # "customer", "employee", or "all"
    dimension: str  # "touchpoint", "org_unit", "topic", or "week"
    value: str
    starts_week: str  # ISO week, e.g. "2026-W39"
    description: str
    expected: str
    keywords: tuple[str, ...]
    absent_before: tuple[str, ...] = ()


STORIES: list[Story] = [
    Story(
        key="delivery_courier",
        audience="customer",
        dimension="touchpoint",
        value="delivery",
        starts_week="2026-W39",
        description=(
            "From Monday 2026-09-21 a new courier, SwiftShip, takes over home deliveries. Delivery "
            "feedback turns sharply negative (late, damaged boxes, missed slots, no tracking "
            "updates, rude drivers) and complaint volume rises. Before it, delivery is mostly "
            "praised. Delivery rows always keep their touchpoint filled."
        ),
        expected=(
            "touchpoint=delivery: share negative rises from ~0.18 to ~0.68; mean sentiment "
            "(pos=+1, neu=0, neg=-1) drops by >= 0.3 (planted: ~0.9); weekly volume rises ~40%; "
            "mean stars and csat fall by more than 1.5 points; 'SwiftShip' never appears before "
            "2026-W39"
        ),
        keywords=("SwiftShip", "late", "damaged", "missed", "tracking", "courier", "rude"),
        absent_before=("SwiftShip",),
    ),
    Story(
        key="app_wishlist_bug",
        audience="customer",
        dimension="topic",
        value="wishlist",
        starts_week="2026-W42",
        description=(
            "An app update released on Monday 2026-10-12 breaks the wishlist (saved items): lists "
            "vanish, the wishlist screen crashes. A new topic in the app feedback, absent before, "
            "then 15-25 items a week, mostly negative. Rows keep touchpoint=app."
        ),
        expected=(
            "a new topic appears in touchpoint=app from 2026-W42 with 15-25 items/week; zero "
            "items mention the keywords before 2026-W42; app share negative rises"
        ),
        keywords=("wishlist", "saved items", "saved list"),
        absent_before=("wishlist", "saved items", "saved list"),
    ),
    Story(
        key="warehouse_morale",
        audience="employee",
        dimension="org_unit",
        value="warehouse",
        starts_week="2026-W40",
        description=(
            "On Monday 2026-09-28 the warehouse moves to a new shift pattern (new rota, forced "
            "overtime, mandatory weekend shifts). Warehouse staff sentiment falls; the other "
            "teams stay as they were."
        ),
        expected=(
            "org_unit=warehouse: share negative rises from ~0.25 to ~0.68, mean sentiment drops "
            "by >= 0.3 and mean eNPS by >= 2 points; other org_units change by < 0.1; the "
            "rota keywords never appear before 2026-W40 nor outside the warehouse"
        ),
        keywords=(
            "new rota",
            "forced overtime",
            "mandatory weekend shifts",
            "exhausted",
            "management doesn't listen",
        ),
        absent_before=(
            "rota",
            "forced overtime",
            "mandatory weekend shifts",
            "exhausted",
            "management doesn't listen",
        ),
    ),
    Story(
        key="quiet_week",
        audience="all",
        dimension="week",
        value="2026-W35",
        starts_week="2026-W35",
        description=(
            "A deliberately ordinary week: volume factor exactly 1.0, no story starts or ends "
            "there. Used to check that no alert fires on a normal week."
        ),
        expected="no alert fires for any touchpoint, org_unit or topic in 2026-W35",
        keywords=(),
    ),
]


def get_story(key: str) -> Story:
    """Return the planted story called ``key``."""
    for story in STORIES:
        if story.key == key:
            return story
    known = ", ".join(s.key for s in STORIES)
    raise KeyError(f"no demo story called {key!r} (known: {known})")
