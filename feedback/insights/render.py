"""Render a digest payload as HTML (with inline SVG charts) and as Markdown (also the email's text).

Feedback text is data, never markup. The HTML environment autoescapes every expression; the
Markdown environment escapes every expression for Markdown through `finalize`, so a template
cannot forget to. A review containing `<script>` shows as text in both.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader

from feedback.insights.charts import journey_chart, trend_chart

TEMPLATES = Path(__file__).parent / "templates"
# CommonMark lets any ASCII punctuation be backslash-escaped; these are the ones that can start
# markup in the middle of a line (emphasis, code, links, raw HTML, tables, strikethrough).
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|&~])")
_WHITESPACE = re.compile(r"\s+")


class MarkdownSafe(str):
    """Text already escaped for Markdown (a macro's output), left as it is by `finalize`."""


def markdown_escape(value: Any) -> str:
    """Escape a value for use inside a Markdown line (newlines become spaces)."""
    if value is None:
        return ""
    if isinstance(value, MarkdownSafe):
        return value
    return _MD_SPECIAL.sub(r"\\\1", _WHITESPACE.sub(" ", str(value)))


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def _pct_change(value: float | None) -> str:
    return "–" if value is None else f"{value:+.0%}"


def _pp(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:+.0f} pts"


def _signed(value: float | None) -> str:
    return "–" if value is None else f"{value:+.2f}"


def _metric(value: float | None, key: str) -> str:
    if value is None:
        return "–"
    if key in ("share_negative", "share_low_rating"):
        return f"{value:.0%}"
    if key == "nps":
        return f"{value:+.0f}"
    if key == "mean_sentiment":
        return f"{value:+.2f}"
    return f"{value:.2f}"


def _delta(value: float | None, key: str) -> str:
    if value is None:
        return "–"
    if key in ("share_negative", "share_low_rating"):
        return _pp(value)
    if key == "nps":
        return f"{value:+.0f}"
    return f"{value:+.2f}"


def _environment(markdown: bool) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=not markdown,
        finalize=markdown_escape if markdown else None,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        pct=_pct,
        pct_change=_pct_change,
        pp=_pp,
        signed=_signed,
        metric=_metric,
        delta=_delta,
        md_safe=MarkdownSafe,
    )
    return env


@lru_cache(maxsize=2)
def _env(markdown: bool) -> Environment:
    return _environment(markdown)


def title(payload: dict[str, Any]) -> str:
    """'Weekly CX digest, 2026-W39' or 'Weekly employee digest, 2026-W40'."""
    kind = "CX" if payload["audience"] == "customer" else "employee"
    return f"Weekly {kind} digest, {payload['week']}"


def charts(payload: dict[str, Any]) -> dict[str, Any]:
    """The digest's charts: the weekly trend per touchpoint (or team) and the journey curve."""
    trend = payload.get("trend") or {}
    employee = payload["audience"] == "employee"
    emphasis = [m.get("org_unit" if employee else "touchpoint") for m in payload.get("movers", [])]
    emphasis += [
        a["value"]
        for a in payload.get("alerts", [])
        if a["dimension"] in ("touchpoint", "org_unit")
    ]
    trend_svg = trend_chart(
        trend.get("weeks", []),
        trend.get("series", {}),
        emphasis=[e for e in emphasis if e],
        title=(
            f"Mean sentiment per {'team' if employee else 'touchpoint'}, "
            f"last {len(trend.get('weeks', []))} weeks"
        ),
    )
    steps = payload.get("themes" if employee else "journey") or []
    journey_svg = journey_chart(
        steps,
        title=(
            "Sentiment by theme this week, with the most felt emotion"
            if employee
            else "The journey's emotion curve this week (mean sentiment, 95% CI, most felt emotion)"
        ),
    )
    return {"trend_chart": trend_svg, "journey_chart": journey_svg}


def render_html(payload: dict[str, Any]) -> str:
    """The digest as one self-contained HTML page (inline CSS and SVG)."""
    return (
        _env(False)
        .get_template("digest.html.j2")
        .render(digest=payload, title=title(payload), **charts(payload))
    )


def render_markdown(payload: dict[str, Any]) -> str:
    """The digest as Markdown (also the plain-text part of the email)."""
    text = _env(True).get_template("digest.md.j2").render(digest=payload, title=title(payload))
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
