"""The journey view: touchpoints in journey order, each with its scores, emotions and needs.

Touchpoints come in the configured order (`models.touchpoints` in the settings, else the
built-in taxonomy, whose touchpoints carry journey stages), grouped by journey stage (`journey_steps`),
then any other touchpoint seen in the data by volume, then 'unknown'. The worst touchpoint is
the one with the lowest score on `metric` among those with enough answers, tested against all
the other items together.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from sqlalchemy.orm import Session

from classifiers.quantify import ShareEstimator
from feedback.analytics.cells import CellStats, Slice
from feedback.analytics.metrics import SCORE_METRICS, metric_row, mix, moments, suppressed_row
from feedback.analytics.shares import describe, resolve
from feedback.analytics.stats import welch_test
from feedback.analytics.tables import RANGE, cell_table

# The fewest answers behind a metric for a touchpoint to be called the worst (customer data;
# employee data uses the minimum group size, every shown group already has that many).
MIN_N_WORST = 30
TOP_LABELS = 3


class _Touchpoint(Protocol):
    name: str
    audience: str
    journey_stage: str | None


def journey_steps(touchpoints: Iterable[_Touchpoint], audience: str) -> list[tuple[str, str | None]]:
    """(touchpoint, journey stage) of `audience` in journey order: the taxonomy's order, with the
    touchpoints of a stage kept together (stages in the order they first appear), so a stage is
    one span of the journey map even when the taxonomy lists its touchpoints apart (the built-in
    one lists the store, a purchase touchpoint, last). A touchpoint without a stage keeps its place."""
    mine = [(t.name, t.journey_stage or None) for t in touchpoints if t.audience == audience]
    first = {}
    for position, (name, stage) in enumerate(mine):
        first.setdefault(stage if stage is not None else f"\0{name}", position)
    return sorted(mine, key=lambda step: first[step[1] if step[1] is not None else f"\0{step[0]}"])


def journey(session: Session, where: Slice, *, steps: Sequence[tuple[str, str | None]],
            min_group_size: int, metric: str = "net_sentiment", min_n_worst: int = MIN_N_WORST,
            estimator: ShareEstimator | None = None) -> dict[str, Any]:
    """Touchpoints of `steps` ((name, journey stage) in order) with metrics; the worst flagged.
    share_negative is estimated by `estimator` (default: the configured heads' one)."""
    estimator = resolve(estimator)
    if metric not in SCORE_METRICS:
        raise ValueError(f"metric must be one of {', '.join(SCORE_METRICS)}")
    table = cell_table(session, where, "touchpoint", RANGE, min_group_size=min_group_size, mixes=True)
    cells = {code: stats for (_, code), stats in table.cells.items()}
    total = table.totals.get(None)
    employee = where.audience == "employee"
    mix_min = min_group_size if employee else 1
    configured = [name for name, _ in steps]
    stage_of = dict(steps)
    extra = sorted((c for c in cells if c not in stage_of and c != "unknown"),
                   key=lambda c: (-(getattr(cells[c], "n", 0) or 0), c))
    order = configured + extra + (["unknown"] if "unknown" in cells else [])
    out_steps: list[dict[str, Any]] = []
    for position, name in enumerate(order, start=1):
        stats = cells.get(name)
        step: dict[str, Any] = {"position": position, "touchpoint": name,
                                "journey_stage": stage_of.get(name), "configured": name in stage_of,
                                "suppressed": name in cells and stats is None, "worst": False}
        if stats is None:
            step.update(suppressed_row())
            step.update(emotions={}, cx_emotions={}, needs={})
        else:
            step.update(metric_row(stats, period_n=total.n if total is not None else None, estimator=estimator))
            step["emotions"] = {k: v for k, v in mix(stats, "emotion", min_count=mix_min).items()
                                if k != "neutral"}
            step["emotions"] = dict(list(step["emotions"].items())[:TOP_LABELS])
            step["cx_emotions"] = mix(stats, "cx_emotion", min_count=mix_min, top=TOP_LABELS)
            step["needs"] = mix(stats, "need", min_count=mix_min, top=TOP_LABELS)
        out_steps.append(step)
    worst = _worst(out_steps, cells, total, metric, min_group_size if employee else min_n_worst, estimator)
    return {"audience": where.audience, "metric": metric, "source": table.source, **describe(estimator),
            "start": table.start.isoformat() if table.start else None,
            "end": table.end.isoformat() if table.end else None,
            "total": metric_row(total, estimator=estimator) if total is not None else None,
            "steps": out_steps, "worst": worst}


def _worst(steps: list[dict[str, Any]], cells: dict[str, CellStats | None], total: CellStats | None,
           metric: str, min_n: int, estimator: ShareEstimator) -> dict[str, Any] | None:
    candidates = []
    for step in steps:
        stats = cells.get(step["touchpoint"])
        if stats is None or step["touchpoint"] == "unknown":
            continue
        m = moments(stats, metric, estimator)
        if m.n >= min_n and m.mean is not None:
            candidates.append((m.mean, step["touchpoint"], step, stats))
    if not candidates:
        return None
    _, name, step, stats = min(candidates, key=lambda c: (c[0], c[1]))
    step["worst"] = True
    result: dict[str, Any] = {"touchpoint": name, "metric": metric, "value": step[metric]}
    if total is not None:
        rest = total.minus(stats)
        test = welch_test(moments(rest, metric, estimator), moments(stats, metric, estimator))
        if test is not None:
            result.update(rest_value=round(float(moments(rest, metric, estimator).mean or 0.0), 4),
                          difference=round(test.change, 4), p_value=round(test.p_value, 6),
                          significant=test.p_value < 0.05)
    return result
