"""Alerts: spikes in negative sentiment, and in a topic's or a phrase's volume, that are real.

"Never cry wolf" is the contract. An alert needs all of:

- a test that accounts for sample size on both sides: this week's share of negative items
  against the pooled share of the baseline weeks (one-sided Fisher exact test, widened by the
  baseline's own week-to-week over-dispersion), or a topic's weekly count against its baseline
  rate (the exact conditional Poisson test, likewise widened). The share of negative texts is
  the estimated one (`feedback.analytics.shares`); when it is estimated from probabilities, the
  test is Welch's t on the mean p(negative), which the estimate is a linear function of;
- control of false discoveries across every cell tested in the digest (Benjamini-Hochberg at
  `fdr`), so testing 10 touchpoints or 500 phrases does not make a false alarm likely;
- enough data (`min_n` items this week, `min_baseline_weeks` weeks of baseline) and an effect
  big enough to act on (`min_share_increase` in share negative, `min_topic_ratio` x the baseline
  rate): a significant but tiny change is not an alert.

An alert is `new` unless the same cell or phrase had already raised it last week (judged
against last week's own baseline, as last week's digest did); then it is `continuing`: the
digest lists it as still elevated and only new alerts are sent. So one courier change raises
one alert, not one a week until the baseline catches up.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from classifiers.quantify import COUNT_NEGATIVE, ShareEstimator
from feedback.insights.phrases import PhraseTheme
from feedback.insights.repository import CellWeek
from feedback.insights.significance import (
    bh_adjust,
    mean_increase_p,
    proportion_increase_p,
    rate_increase_p,
)
from feedback.topics.over_time import EmergingRule, emerging_from_counts


@dataclass(frozen=True)
class AlertPolicy:
    """Thresholds of the alert tests (defaults tuned to stay silent on ordinary weeks)."""

    baseline_weeks: int = 8
    min_baseline_weeks: int = 3
    fdr: float = 0.01
    min_n: int = 20
    min_share_increase: float = 0.10
    min_topic_count: int = 8
    min_topic_ratio: float = 2.0
    phrase_min_count: int = 5
    phrase_min_ratio: float = 3.0


@dataclass
class Alert:
    """One alert, with the numbers and the test behind it."""

    kind: str  # negative_share | topic_volume | emerging_phrase
    dimension: str  # touchpoint | org_unit | topic | phrase
    value: str
    week: str
    observed: float
    baseline: float
    n: int
    baseline_n: int
    baseline_weeks: int
    p_value: float
    q_value: float
    test: str
    severity: str
    message: str
    status: str = "new"  # new | continuing (already there last week)
    where: dict[str, int] = field(default_factory=dict)
    phrases: list[str] = field(default_factory=list)  # emerging phrases that explain it
    measures: list[dict[str, Any]] = field(default_factory=list)  # each reading tested
    quotes: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("observed", "baseline"):
            out[key] = round(out[key], 4)
        out["p_value"], out["q_value"] = _sig(self.p_value), _sig(self.q_value)
        return out


def _sig(p: float) -> float:
    return float(f"{p:.3g}")


def _fmt_p(p: float) -> str:
    return "p ≤ 0.001" if p < 0.001 else f"p = {p:.3f}"


# Two readings of negative sentiment in a cell: the model's, over the texts, and the
# respondents' own, over their ratings (NPS 0-6, CSAT 1-2, 1-2 stars). Either may raise an alert;
# both are tested, in one Benjamini-Hochberg family. (k, n) are counts; the text reading's share
# is then estimated (`estimated_negative_share`).
MEASURES: tuple[tuple[str, str, Callable[[CellWeek], tuple[int, int]]], ...] = (
    ("text", "of texts negative", lambda c: (c.negative, c.tagged)),
    ("ratings", "of ratings low", lambda c: (c.low_rated, c.rated)),
)


def estimated_negative_share(cell: CellWeek, estimator: ShareEstimator) -> float | None:
    """The estimated share negative of a cell's tagged items (None when none is tagged)."""
    return estimator.estimate(n=cell.tagged, count=cell.negative, prob_sum=cell.p_negative.total)


def _text_reading(this: CellWeek, weeks: Sequence[CellWeek], estimator: ShareEstimator
                  ) -> tuple[float, float, float]:
    """(share, baseline share, one-sided p) of the estimated share of negative texts."""
    base = sum(weeks, CellWeek())
    share = estimated_negative_share(this, estimator) or 0.0
    baseline = estimated_negative_share(base, estimator) or 0.0
    if estimator.uses_probabilities:
        p = mean_increase_p(this.p_negative, base.p_negative, [w.p_negative for w in weeks])
    else:  # cc and acc: the estimate rises with the count share, so the count's test is its test
        p = proportion_increase_p(this.negative, this.tagged, base.negative, base.tagged,
                                  [(w.negative, w.tagged) for w in weeks])
    return share, baseline, p


def negative_share_alerts(
    cells: Mapping[tuple[str, str], tuple[CellWeek, Sequence[CellWeek]]],
    *,
    week: str,
    policy: AlertPolicy,
    min_n: int | None = None,
    already_alerted: Collection[tuple[str, str]] = (),
    estimator: ShareEstimator = COUNT_NEGATIVE,
    also_in_family: int = 0,
) -> list[Alert]:
    """Alerts for cells whose share of negative feedback rose significantly against the baseline.

    Negative is read two ways (`MEASURES`): the estimated share of negative texts (`estimator`;
    the count the model labels negative is kept beside it), and low ratings; a
    cell alerts when either rose (each needs `min_n` items with that reading this week). `cells`
    maps (dimension, value) to (this week, [baseline weeks]); every cell passed is tested, so
    pass only cells that may be published (employee groups under the minimum size left out).
    Cells in `already_alerted` (last week's alerts) are `continuing`. `also_in_family` counts
    tests made elsewhere that cannot alert: each joins the Benjamini-Hochberg family with p = 1
    (q-values can only rise with it), so a caller that skips cells with no chance keeps the family.
    """
    min_n = policy.min_n if min_n is None else min_n
    tested: list[tuple[tuple[str, str], str, tuple[int, int], tuple[int, int], int, tuple[float, float],
                       float]] = []  # fmt: skip
    for key, (this, base_weeks) in cells.items():
        for measure, _, read in MEASURES:
            k, n = read(this)
            weeks = [b for b in base_weeks if read(b)[1] > 0]
            if n < min_n or len(weeks) < policy.min_baseline_weeks:
                continue
            k0, n0 = sum(read(w)[0] for w in weeks), sum(read(w)[1] for w in weeks)
            if measure == "text":
                share, base, p = _text_reading(this, weeks, estimator)
            else:
                share, base = k / n, k0 / n0
                p = proportion_increase_p(k, n, k0, n0, [read(w) for w in weeks])
            tested.append((key, measure, (k, n), (k0, n0), len(weeks), (share, base), p))
    evidence: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for (key, measure, (k, n), (k0, n0), n_weeks, (share, base), p), q in zip(
        tested, bh_adjust([t[-1] for t in tested] + [1.0] * also_in_family)[:len(tested)], strict=True
    ):
        reading = {
            "measure": measure,
            "share": round(share, 4),
            "baseline": round(base, 4),
            "k": k,
            "n": n,
            "baseline_n": n0,
            "weeks": n_weeks,
            "p_value": float(f"{p:.3g}"),
            "q_value": float(f"{q:.3g}"),
            "passed": q <= policy.fdr and share - base >= policy.min_share_increase,
        }
        if measure == "text":  # the estimate above; the count the model labelled beside it
            reading.update(share_method=estimator.method, share_counted=round(k / n, 4),
                           baseline_counted=round(k0 / n0, 4))  # fmt: skip
        evidence.setdefault(key, []).append(reading)
    alerts = []
    for key, readings in evidence.items():
        passed = [r for r in readings if r["passed"]]
        if not passed:
            continue
        lead = min(passed, key=lambda r: (r["q_value"], r["p_value"]))
        dimension, value = key
        words = {m: label for m, label, _ in MEASURES}
        parts = [
            f"{r['share']:.0%} {words[r['measure']]} ({_counts(r)}) from {r['baseline']:.0%}"
            for r in sorted(readings, key=lambda r: not r["passed"])
        ]
        alerts.append(
            Alert(
                kind="negative_share",
                dimension=dimension,
                value=value,
                week=week,
                observed=lead["share"],
                baseline=lead["baseline"],
                n=lead["n"],
                baseline_n=lead["baseline_n"],
                baseline_weeks=lead["weeks"],
                p_value=lead["p_value"],
                q_value=lead["q_value"],
                test=(
                    f"one-sided {_text_test(estimator)} of the share of negative texts and "
                    f"Fisher exact test of the share of low ratings vs the {lead['weeks']}-week "
                    f"baseline, over-dispersion adjusted; "
                    f"Benjamini-Hochberg q <= {policy.fdr} across {len(tested) + also_in_family} tests"
                ),
                severity="high"
                if max(r["share"] - r["baseline"] for r in passed) >= 0.25
                else "medium",
                status="continuing" if key in already_alerted else "new",
                message=(
                    f"Negative feedback on {value} rose: {'; '.join(parts)} over the "
                    f"{lead['weeks']} weeks before ({_fmt_p(lead['p_value'])})"
                ),
                measures=readings,
            )
        )
    return sorted(alerts, key=lambda a: (a.q_value, -(a.observed - a.baseline)))


def _counts(reading: Mapping[str, Any]) -> str:
    """'12 of 80', or for an estimated share '12 of 80 labelled negative' (the estimate differs)."""
    if reading.get("share_method", "cc") == "cc":
        return f"{reading['k']} of {reading['n']}"
    return f"estimated; {reading['k']} of {reading['n']} labelled negative"


def _text_test(estimator: ShareEstimator) -> str:
    if estimator.uses_probabilities:
        return f"Welch t-test of the mean p(negative) ({estimator.method} estimate)"
    if estimator.method == "cc":
        return "Fisher exact test"
    return f"Fisher exact test of the labelled count ({estimator.method} estimate)"


def already_emerged(
    counts: Sequence[int], *, min_count: int, min_ratio: float, policy: AlertPolicy
) -> bool:
    """Whether a count had already risen in one of the baseline weeks, against the weeks before.

    `counts` are the baseline weeks' counts, oldest first. Each week with enough weeks before it
    is judged like this week (count, ratio, significance at `policy.fdr`), without the
    multiple-testing step: when in doubt, an old rise counts as continuing and stays quiet.
    """
    for k in range(policy.min_baseline_weeks, len(counts)):
        prior, count = counts[:k], counts[k]
        if count < min_count:
            continue
        weekly = sum(prior) / len(prior)
        if count >= min_ratio * weekly and rate_increase_p(count, prior) <= policy.fdr:
            return True
    return False


def topic_volume_alerts(
    this_week: Mapping[str, int],
    baseline: Mapping[str, Sequence[int]],
    *,
    total: int,
    baseline_totals: Sequence[int],
    week: str,
    policy: AlertPolicy,
    where: Mapping[str, dict[str, int]] | None = None,
    dimension: str = "topic",
) -> list[Alert]:
    """Alerts for topics whose share of the week's items rose significantly above baseline.

    `this_week[label]` is the topic's count this week out of `total` tagged items, and
    `baseline[label][i]` its count in each baseline week out of `baseline_totals[i]` (a new
    topic has zeros). The test is `/v1/topics`' own (`feedback.topics.over_time`), with this
    policy's numbers, so the digest and the topic list call the same topics emerging; a topic
    that had already risen within the baseline weeks is `continuing`.
    """
    rule = EmergingRule(
        min_count=policy.min_topic_count,
        min_ratio=policy.min_topic_ratio,
        fdr=policy.fdr,
        min_baseline_periods=policy.min_baseline_weeks,
    )
    rows = emerging_from_counts(this_week, baseline, total, baseline_totals, rule=rule)
    tested = sum(1 for r in rows.values() if r["q_value"] is not None)
    alerts = []
    for label, row in rows.items():
        if not row["emerging"]:
            continue
        counts = [c for c, n in zip(baseline.get(label, ()), baseline_totals, strict=False) if n]
        weeks = sum(1 for n in baseline_totals if n > 0)
        weekly = sum(counts) / weeks if weeks else 0.0
        count = row["latest"]
        alerts.append(
            Alert(
                kind="topic_volume",
                dimension=dimension,
                value=label,
                week=week,
                observed=count,
                baseline=weekly,
                n=total,
                baseline_n=sum(baseline_totals),
                baseline_weeks=weeks,
                p_value=row["p_value"],
                q_value=row["q_value"],
                test=(
                    f"one-sided Fisher exact test of the topic's share of the week's items vs "
                    f"its share over the {weeks}-week baseline, over-dispersion adjusted; "
                    f"Benjamini-Hochberg q <= {policy.fdr} across {tested} topics"
                ),
                severity="high" if weekly == 0 or (row["share_ratio"] or 0) >= 4 else "medium",
                message=_volume_message(
                    f"Topic '{label}'", count, weekly, weeks, row["p_value"],
                    shares=(row["share"], row["baseline_share"] or 0.0),
                ),  # fmt: skip
                where=dict((where or {}).get(label, {})),
                status=row["status"],
            )
        )
    return sorted(alerts, key=lambda a: (a.q_value, -a.observed))


def phrase_status(
    theme: PhraseTheme, policy: AlertPolicy, emerged_before: Collection[str] = ()
) -> str:
    """new, or continuing when the theme had already emerged within the baseline weeks.

    `emerged_before` holds the phrases that had risen in a baseline week (`already_emerged`); a
    theme that uses one of them, or one of their words ("update wipe wishlist" after
    "wishlist"), is the same story told in new words.
    """
    if already_emerged(
        theme.baseline_counts,
        min_count=policy.phrase_min_count,
        min_ratio=policy.phrase_min_ratio,
        policy=policy,
    ):
        return "continuing"
    words = {w for p in theme.phrases for w in p.split()} | set(theme.phrases)
    return "continuing" if words & set(emerged_before) else "new"


def phrase_alerts(
    themes_by_cell: Mapping[str, Sequence[PhraseTheme]],
    *,
    dimension: str,
    week: str,
    policy: AlertPolicy,
    emerged_before: Collection[str] = (),
) -> list[Alert]:
    """One alert per cell (touchpoint or team) for the emerging phrase themes said mostly there.

    The themes are already tested and BH-controlled (`phrases.emerging_themes`). A theme spread
    over many cells ("not happy") says nothing about where to look and raises no alert.
    """
    alerts = []
    for cell, themes in themes_by_cell.items():
        if not themes:
            continue
        lead = min(themes, key=lambda t: (t.q_value, t.p_value))
        parts = []
        for t in themes:
            before = (
                "none before"
                if t.baseline_weekly == 0
                else f"{t.baseline_weekly:.1f} a week before"
            )
            parts.append(f"'{t.label}' ({t.lead_count} items, {before})")
        statuses = {phrase_status(t, policy, emerged_before) for t in themes}
        alerts.append(
            Alert(
                kind="emerging_phrase",
                dimension=dimension,
                value=cell,
                week=week,
                observed=lead.lead_count,
                baseline=lead.baseline_weekly,
                n=sum(t.touchpoints.get(cell, 0) for t in themes),
                baseline_n=round(lead.baseline_weekly * lead.baseline_weeks),
                baseline_weeks=lead.baseline_weeks,
                p_value=lead.p_value,
                q_value=lead.q_value,
                test=(
                    f"exact conditional Poisson test of each phrase's weekly count vs its "
                    f"{lead.baseline_weeks}-week baseline rate; Benjamini-Hochberg "
                    f"q <= {policy.fdr} across every phrase tested"
                ),
                severity="high"
                if any(t.ratio is None or t.ratio >= 5 for t in themes)
                else "medium",
                message=f"New in {cell}: {', '.join(parts)} ({_fmt_p(lead.p_value)})",
                phrases=[t.label for t in themes],
                status="new" if "new" in statuses else "continuing",
            )
        )
    return sorted(alerts, key=lambda a: (a.q_value, -a.observed))


def _volume_message(
    subject: str,
    count: int,
    weekly: float,
    weeks: int,
    p: float,
    shares: tuple[float, float] | None = None,
) -> str:
    if weekly == 0:
        return (
            f"{subject} is new: {count} items this week, none in the {weeks} weeks before "
            f"({_fmt_p(p)})"
        )
    share = f" ({shares[0]:.1%} of items, from {shares[1]:.1%})" if shares else ""
    return (
        f"{subject} rose to {count} items this week from {weekly:.1f} a week over the "
        f"{weeks} weeks before{share} ({_fmt_p(p)})"
    )
