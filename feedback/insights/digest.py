"""The weekly digest payload: what moved, where, why, in people's own words.

`build_payload(session, audience=..., week=...)` reads the stored, tagged feedback of the week,
of the week before, and of the `baseline_weeks` weeks before it, and returns a JSON-ready dict:

- customer (CX leads): headline numbers against last week and the baseline; alerts; the biggest
  movers by touchpoint (significant changes only) with what drove them; emerging topics (the
  topic model's, when items carry topics) and emerging phrases (always, model-free); shifts in
  needs and emotions; the worst touchpoint; the journey's emotion curve; a 12-week trend per
  touchpoint; 2-3 quotes per finding.
- employee (HR): the same headline, sentiment by team (org_unit) and by theme, alerts and
  emerging phrases, all through minimum-group-size suppression: a group with fewer distinct
  respondents than `min_group_size_scores` shows no numbers (and a second group is hidden
  where one hidden group could be worked out from the total); quotes come only from groups
  with at least `min_group_size_comments` distinct authors; no author pseudonym or item id.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from classifiers.quantify import ShareEstimator
from feedback.analytics.journey import journey_steps
from feedback.analytics.shares import configured_estimator, negative_share
from feedback.config import Settings
from feedback.insights import repository as repo
from feedback.insights.alerts import (
    Alert,
    AlertPolicy,
    already_emerged,
    estimated_negative_share,
    negative_share_alerts,
    phrase_alerts,
    phrase_status,
    topic_volume_alerts,
)
from feedback.insights.phrases import (
    PhraseDoc,
    PhraseTheme,
    candidate_phrases,
    count_in_weeks,
    emerging_themes,
)
from feedback.insights.quotes import QuotePicker
from feedback.insights.repository import CellWeek, WeekItem
from feedback.insights.significance import (
    Moments,
    bh_adjust,
    mean_difference_p,
    nps,
    nps_ci,
    proportion_difference_p,
    rate_change_p,
    wilson_ci,
)
from feedback.insights.weeks import parse_week, shift_week, week_bounds, weeks_before
from feedback.privacy.groups import min_sizes, suppressed_groups

SCHEMA_VERSION = 1
UNKNOWN = "unknown"
SHIFT_KINDS = (("need", "needs"), ("cx_emotion", "cx_emotions"), ("emotion", "emotions"))


@dataclass(frozen=True)
class DigestOptions:
    """How a digest is made; `from_settings` fills it from `settings.digests` and privacy."""

    policy: AlertPolicy = field(default_factory=AlertPolicy)
    mover_fdr: float = 0.05
    min_mover_delta: float = 0.10  # mean sentiment on [-1, 1]
    min_shift: float = 0.03  # share of items with a label
    min_cell_n: int = 20  # customer cells; employee cells use the privacy minimum
    trend_weeks: int = 12
    quotes_per_finding: int = 3
    max_movers: int = 5
    max_shifts: int = 5
    min_group_size_scores: int = 5
    min_group_size_comments: int = 10
    journey: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # How the share negative is estimated; None: the one stored with the configured heads.
    share_estimator: ShareEstimator | None = None

    def cell_min_n(self, audience: str) -> int:
        """Items a cell needs this week to be tested: customer `min_cell_n`; employee the privacy
        minimum, at least 10."""
        return max(self.min_group_size_scores, 10) if audience == "employee" else self.min_cell_n

    @classmethod
    def from_settings(cls, settings: Settings) -> DigestOptions:
        digests = getattr(settings, "digests", None)
        policy = AlertPolicy()
        kwargs: dict[str, Any] = {}
        if digests is not None:
            policy = AlertPolicy(
                baseline_weeks=digests.baseline_weeks,
                fdr=digests.alert_fdr,
                min_n=digests.min_cell_n,
                min_share_increase=digests.min_share_increase,
            )
            kwargs["min_cell_n"] = digests.min_cell_n
        journey = {audience: tuple(name for name, _ in journey_steps(settings.models.touchpoints, audience))
                   for audience in ("customer", "employee")}
        journey = {audience: names for audience, names in journey.items() if names}
        scores, comments = min_sizes(settings.privacy)
        return cls(
            policy=policy,
            journey=journey,
            share_estimator=configured_estimator(settings),
            min_group_size_scores=scores,
            min_group_size_comments=comments,
            **kwargs,
        )


def journey_order(audience: str, options: DigestOptions) -> tuple[str, ...]:
    """Touchpoints in journey order (a stage's together, as the journey map shows them): the
    configured taxonomy, else the built-in one."""
    if options.journey.get(audience):
        return options.journey[audience]
    try:
        from classifiers.config import DEFAULT_TOUCHPOINTS  # plain data, no model code
    except ImportError:  # pragma: no cover - classifiers is part of the service
        return ()
    return tuple(name for name, _ in journey_steps(DEFAULT_TOUCHPOINTS, audience))


# --- privacy -------------------------------------------------------------------------------------


# --- numbers --------------------------------------------------------------------------------------


def _r(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def _ci(pair: tuple[float, float] | None, digits: int = 4) -> list[float] | None:
    return None if pair is None else [round(pair[0], digits), round(pair[1], digits)]


def _counted_share(cell: CellWeek) -> float | None:
    """Classify-and-count: the share of tagged items the model labelled negative."""
    return cell.negative / cell.tagged if cell.tagged else None


def _nps(cell: CellWeek) -> tuple[float, float] | None:
    return nps(cell.promoters, cell.detractors, cell.nps_n)


def _metric(
    key: str,
    label: str,
    this: CellWeek,
    last: CellWeek | None,
    base: CellWeek,
    estimator: ShareEstimator,
) -> dict[str, Any] | None:
    """One headline number this week, last week and over the baseline, with the test vs baseline."""
    value: Callable[[CellWeek], float | None]
    extra: dict[str, Any] = {}
    if key == "mean_sentiment":
        value = lambda c: c.sentiment.mean  # noqa: E731
        ci, p = this.sentiment.ci95(), mean_difference_p(this.sentiment, base.sentiment)
    elif key == "share_negative":
        # The estimated share (feedback.analytics.shares); the count is kept beside it. The
        # estimate is linear in the mean p(negative) (pcc, pacc) or in the count (cc, acc),
        # so testing that mean or count tests the estimate.
        value = lambda c: estimated_negative_share(c, estimator)  # noqa: E731
        _, low, high = negative_share(
            estimator,
            n=this.tagged,
            count=this.negative,
            prob_sum=this.p_negative.total,
            prob_sumsq=this.p_negative.total_sq,
        )
        ci = (low, high) if low is not None and high is not None else None
        if estimator.uses_probabilities:
            p = mean_difference_p(this.p_negative, base.p_negative)
        else:
            p = proportion_difference_p(this.negative, this.tagged, base.negative, base.tagged)
        counted_last = _counted_share(last) if last is not None else None
        extra = {
            "method": estimator.method,
            "counted": {
                "this": _r(_counted_share(this)),
                "ci95": _ci(wilson_ci(this.negative, this.tagged)),
                "last": _r(counted_last),
                "baseline": _r(_counted_share(base)),
            },
        }
    elif key == "share_low_rating":
        value = lambda c: c.low_rated / c.rated if c.rated else None  # noqa: E731
        ci = wilson_ci(this.low_rated, this.rated)
        p = proportion_difference_p(this.low_rated, this.rated, base.low_rated, base.rated)
    elif key == "nps":
        value = lambda c: None if _nps(c) is None else _nps(c)[0]  # type: ignore[index]  # noqa: E731
        now, before = _nps(this), _nps(base)
        if now is None:
            return None
        ci = nps_ci(this.promoters, this.detractors, this.nps_n)
        p = 1.0
        if before is not None and (now[1] or before[1]):
            from scipy.stats import norm

            z = (now[0] - before[0]) / ((now[1] ** 2 + before[1] ** 2) ** 0.5)
            p = float(2 * norm.sf(abs(z)))
    else:  # csat, stars
        moments: Callable[[CellWeek], Moments] = (
            (lambda c: c.csat) if key == "csat" else (lambda c: c.stars)
        )
        value = lambda c: moments(c).mean  # noqa: E731
        ci, p = moments(this).ci95(), mean_difference_p(moments(this), moments(base))
    now_value = value(this)
    if now_value is None:
        return None
    last_value = value(last) if last is not None else None
    base_value = value(base)
    digits = 1 if key == "nps" else 4
    return {
        "key": key,
        "label": label,
        "this": _r(now_value, digits),
        "ci95": _ci(ci, digits),
        "last": _r(last_value, digits),
        "baseline": _r(base_value, digits),
        "delta_last": _r(None if last_value is None else now_value - last_value, digits),
        "delta_baseline": _r(None if base_value is None else now_value - base_value, digits),
        "p_baseline": float(f"{p:.3g}"),
        "significant": p <= 0.05,
        **extra,
    }


HEADLINE_METRICS = (
    ("mean_sentiment", "Mean sentiment (-1..1)"),
    ("share_negative", "Share negative"),
    ("share_low_rating", "Share of low ratings"),
    ("nps", "NPS"),
    ("csat", "CSAT"),
    ("stars", "Stars"),
)


def _headline(
    audience: str,
    this: CellWeek,
    last: CellWeek | None,
    base_weeks: Sequence[CellWeek],
    estimator: ShareEstimator,
) -> dict[str, Any]:
    base = sum(base_weeks, CellWeek())
    counts = [b.n for b in base_weeks]
    weekly = sum(counts) / len(counts) if counts else None
    volume = {
        "this": this.n,
        "last": last.n if last else None,
        "baseline_weekly": _r(weekly, 1),
        "change_last": _r((this.n - last.n) / last.n if last and last.n else None),
        "change_baseline": _r((this.n - weekly) / weekly if weekly else None),
        "p_baseline": float(f"{rate_change_p(this.n, counts):.3g}") if counts else None,
        "tagged": this.tagged,
    }
    metrics = []
    for key, label in HEADLINE_METRICS:
        if audience == "employee" and key == "nps":
            label = "eNPS"
        if key == "share_negative" and estimator.method != "cc":
            label = f"{label} (estimated)"
        metric = _metric(key, label, this, last, base, estimator)
        if metric is not None:
            metrics.append(metric)
    return {"volume": volume, "metrics": metrics}


# --- the payload ----------------------------------------------------------------------------------


@dataclass
class _Window:
    week: str
    last: str
    baseline: list[str]  # baseline weeks that have feedback of this audience
    trend: list[str]
    first: str  # the earliest week any part of the digest reads
    last_baseline: list[str]  # last week's own baseline (to know what it already alerted)


def _window(session: Session, audience: str, week: str, options: DigestOptions) -> _Window:
    first = shift_week(week, -(max(options.trend_weeks, options.policy.baseline_weeks + 2) - 1))
    totals = repo.weekly_cells(
        session, audience=audience, dimension=None, first_week=first, last_week=week
    )
    with_data = {w for (w, _), c in totals.items() if c.n > 0}
    baseline = [w for w in weeks_before(week, options.policy.baseline_weeks) if w in with_data]
    trend = weeks_before(week, options.trend_weeks - 1) + [week]
    last = shift_week(week, -1)
    last_baseline = [w for w in weeks_before(last, options.policy.baseline_weeks) if w in with_data]
    return _Window(
        week=week,
        last=last,
        baseline=baseline,
        trend=trend,
        first=first,
        last_baseline=last_baseline,
    )


def build_payload(
    session: Session,
    *,
    audience: str,
    week: str,
    settings: Settings,
    options: DigestOptions | None = None,
) -> dict[str, Any]:
    """The digest of `audience` ("customer" or "employee") for ISO `week` ("2026-W47")."""
    if audience not in ("customer", "employee"):
        raise ValueError(f"audience must be customer or employee, not {audience!r}")
    parse_week(week)
    options = options or DigestOptions.from_settings(settings)
    builder = _Builder(session, audience=audience, week=week, settings=settings, options=options)
    return builder.build()


class _Builder:
    def __init__(
        self,
        session: Session,
        *,
        audience: str,
        week: str,
        settings: Settings,
        options: DigestOptions,
    ) -> None:
        from feedback.ingest.service import build_redactor

        self.session, self.audience, self.options = session, audience, options
        self.employee = audience == "employee"
        self.estimator = options.share_estimator or configured_estimator(settings)
        self.w = _window(session, audience, week, options)
        self.first = self.w.first
        self.policy = options.policy
        self.notes: list[str] = []
        self.emerged_before: set[str] = set()
        self.items = repo.week_items(session, audience=audience, week=week)
        self.redactor = build_redactor(settings)
        self.dimensions = ("org_unit", "touchpoint") if self.employee else ("touchpoint",)
        self.cells = {
            d: repo.weekly_cells(
                session, audience=audience, dimension=d, first_week=self.first, last_week=week
            )
            for d in self.dimensions
        }
        self.totals = repo.weekly_cells(
            session, audience=audience, dimension=None, first_week=self.first, last_week=week
        )
        self.hidden = self._privacy()
        self.picker = QuotePicker(
            self.items,
            redact=self.redactor.redact,
            per_finding=options.quotes_per_finding,
            show_item_ids=not self.employee,
            eligible=self._quotable if self.employee else None,
        )

    # -- privacy (employee) -------------------------------------------------------------------

    def _privacy(self) -> dict[tuple[str, str], set[str]]:
        """{(dimension, week): hidden values} by `feedback.privacy.groups`; empty for customers.

        Each week's table is suppressed against that week's total (which the headline shows);
        a hidden weekly cell never enters a baseline either (`_baseline_cells`).
        """
        hidden: dict[tuple[str, str], set[str]] = {}
        self.quotable_teams: set[str] = set()
        if not self.employee:
            return hidden
        minimum = self.options.min_group_size_scores
        for d in self.dimensions:
            for week in {w for (w, _) in self.cells[d]}:
                sizes = {v: c.respondents for (w, v), c in self.cells[d].items() if w == week}
                total = self.totals.get((week, repo.ALL), CellWeek()).respondents
                hidden[(d, week)] = suppressed_groups(sizes, min_size=minimum, total=total)
        # Comments: only teams with enough distinct authors this week are ever quoted.
        authors: dict[str, set[str]] = {}
        for item in self.items:
            authors.setdefault(item.org_unit, set()).add(item.author)
        comment_sizes = {team: frozenset(a) for team, a in authors.items()}
        hidden_for_comments = suppressed_groups(
            comment_sizes, min_size=self.options.min_group_size_comments
        )
        self.quotable_teams = (set(authors) - hidden_for_comments) - hidden.get(
            ("org_unit", self.w.week), set()
        )
        return hidden

    def _published(self, dimension: str, week: str, value: str) -> bool:
        return not self.employee or value not in self.hidden.get((dimension, week), set())

    def _quotable(self, item: WeekItem) -> bool:
        return item.org_unit in self.quotable_teams

    def _quotable_cell(self, dimension: str, value: str) -> bool:
        if not self.employee:
            return True
        cell = self.cells[dimension].get((self.w.week, value))
        return cell is not None and cell.respondents >= self.options.min_group_size_comments

    # -- pieces --------------------------------------------------------------------------------

    def _cell(self, dimension: str, week: str, value: str) -> CellWeek:
        return self.cells[dimension].get((week, value), CellWeek())

    def _values(self, dimension: str) -> list[str]:
        return sorted({v for (w, v) in self.cells[dimension] if w == self.w.week})

    def _baseline_cells(
        self, dimension: str, value: str, weeks: Sequence[str] | None = None
    ) -> list[CellWeek]:
        """The cell in each baseline week; for employees only the weeks it was shown in."""
        return [
            self._cell(dimension, w, value)
            for w in (self.w.baseline if weeks is None else weeks)
            if self._published(dimension, w, value)
        ]

    def _tested_cells(
        self, week: str, baseline: Sequence[str]
    ) -> dict[tuple[str, str], tuple[CellWeek, list[CellWeek]]]:
        """Every cell the negative-share test may look at in `week`: shown, with a touchpoint."""
        cells: dict[tuple[str, str], tuple[CellWeek, list[CellWeek]]] = {}
        for d in self.dimensions:
            for value in sorted({v for (wk, v) in self.cells[d] if wk == week}):
                if value == UNKNOWN or not self._published(d, week, value):
                    continue
                cells[(d, value)] = (
                    self._cell(d, week, value),
                    self._baseline_cells(d, value, baseline),
                )
        return cells

    def _cell_summary(self, dimension: str, value: str) -> dict[str, Any]:
        this = self._cell(dimension, self.w.week, value)
        last = self._cell(dimension, self.w.last, value)
        base = sum(self._baseline_cells(dimension, value), CellWeek())
        out: dict[str, Any] = {dimension: value}
        if not self._published(dimension, self.w.week, value):
            out.update(
                suppressed=True,
                reason=f"fewer than {self.options.min_group_size_scores} "
                "respondents (or hidden so that a small group cannot be worked out)",
            )
            return out
        base_ok = base.tagged > 0
        last_ok = self._published(dimension, self.w.last, value) and last.tagged > 0
        mean = this.sentiment.mean
        share = estimated_negative_share(this, self.estimator)
        out.update(
            suppressed=False,
            n=this.tagged,
            mean_sentiment=_r(mean),
            ci95=_ci(this.sentiment.ci95()),
            share_negative=_r(share),
            share_negative_cc=_r(_counted_share(this)),
            last_mean_sentiment=_r(last.sentiment.mean) if last_ok else None,
            baseline_mean_sentiment=_r(base.sentiment.mean) if base_ok else None,
            baseline_share_negative=_r(estimated_negative_share(base, self.estimator))
            if base_ok
            else None,
            baseline_share_negative_cc=_r(_counted_share(base)) if base_ok else None,
            delta_last=_difference(mean, last.sentiment.mean if last_ok else None),
            delta_baseline=_difference(mean, base.sentiment.mean if base_ok else None),
            p_baseline=float(f"{mean_difference_p(this.sentiment, base.sentiment):.3g}")
            if base_ok
            else None,
            rated=this.rated,
            share_low_rating=_r(this.low_rated / this.rated) if this.rated else None,
            baseline_share_low_rating=_r(base.low_rated / base.rated) if base.rated else None,
        )
        if self.employee:
            out["respondents"] = this.respondents
            score = _nps(this)
            out["enps"] = _r(score[0], 1) if score else None
        return out

    def _movers(self, dimension: str, min_n: int) -> list[dict[str, Any]]:
        """Cells whose sentiment changed significantly against the baseline (BH-controlled).

        Sentiment is read two ways, as in the alerts: the model's mean score (Welch t-test) and
        the share of low ratings (Fisher exact); a cell moved when either did, by at least
        `min_mover_delta` on its scale.
        """
        tested: list[tuple[str, str, float, float]] = []  # (value, reading, change, p)
        for value in self._values(dimension):
            this = self._cell(dimension, self.w.week, value)
            weeks = self._baseline_cells(dimension, value)
            base = sum(weeks, CellWeek())
            if (
                len(weeks) < self.policy.min_baseline_weeks
                or not self._published(dimension, self.w.week, value)
                or value == UNKNOWN
            ):
                continue
            if this.tagged >= min_n and base.tagged >= min_n:
                change = (this.sentiment.mean or 0.0) - (base.sentiment.mean or 0.0)
                p = mean_difference_p(this.sentiment, base.sentiment)
                tested.append((value, "sentiment", change, p))
            if this.rated >= min_n and base.rated >= min_n:
                change = this.low_rated / this.rated - base.low_rated / base.rated
                p = proportion_difference_p(this.low_rated, this.rated, base.low_rated, base.rated)
                tested.append((value, "ratings", change, p))
        moved: dict[str, dict[str, Any]] = {}
        for (value, reading, change, _p), q in zip(
            tested, bh_adjust([t[-1] for t in tested]), strict=True
        ):
            if q > self.options.mover_fdr or abs(change) < self.options.min_mover_delta:
                continue
            # Down means worse: a lower mean score, or a higher share of low ratings.
            direction = "down" if (change < 0) == (reading == "sentiment") else "up"
            entry = moved.setdefault(value, {"readings": {}, "size": 0.0, "direction": direction})
            entry["readings"][reading] = {"change": _r(change), "q_value": float(f"{q:.3g}")}
            if abs(change) > entry["size"]:
                entry.update(size=abs(change), direction=direction)
        movers = []
        for value, entry in moved.items():
            this = self._cell(dimension, self.w.week, value)
            summary = self._cell_summary(dimension, value)
            summary.update(
                direction=entry["direction"],
                moved_on=sorted(entry["readings"]),
                q_value=min(r["q_value"] for r in entry["readings"].values()),
                volume=this.n,
                baseline_weekly_volume=_r(
                    sum(c.n for c in self._baseline_cells(dimension, value))
                    / max(1, len(self._baseline_cells(dimension, value))),
                    1,
                ),
                size=entry["size"],
            )
            movers.append(summary)
        movers.sort(key=lambda m: -m.pop("size"))
        return movers[: self.options.max_movers]

    def _label_shifts(
        self,
        labels: Mapping[tuple[str, str, str, str], int],
        value: str,
        this_n: int,
        base_n: int,
        baseline: set[str],
    ) -> dict[str, list[dict[str, Any]]]:
        """Per kind, labels whose share of items changed significantly (BH per kind).

        `baseline` is the weeks that `base_n` counts (for employees, the weeks the cell was shown).
        """
        out: dict[str, list[dict[str, Any]]] = {}
        if this_n == 0 or base_n == 0:
            return {name: [] for _, name in SHIFT_KINDS}
        for kind, name in SHIFT_KINDS:
            now: Counter[str] = Counter()
            before: Counter[str] = Counter()
            for (w, v, k, label), count in labels.items():
                if k != kind or v != value:
                    continue
                if w == self.w.week:
                    now[label] += count
                elif w in baseline:
                    before[label] += count
            names = sorted((set(now) | set(before)) - {"neutral"})
            ps = [proportion_difference_p(now[x], this_n, before[x], base_n) for x in names]
            shifts: list[dict[str, Any]] = []
            for label, q in zip(names, bh_adjust(ps), strict=True):
                delta = now[label] / this_n - before[label] / base_n
                if q <= self.options.mover_fdr and abs(delta) >= self.options.min_shift:
                    shifts.append(
                        {
                            "label": label,
                            "this": _r(now[label] / this_n),
                            "baseline": _r(before[label] / base_n),
                            "delta": _r(delta),
                            "direction": "up" if delta > 0 else "down",
                            "q_value": float(f"{q:.3g}"),
                        }
                    )
            shifts.sort(key=lambda s: -abs(float(s["delta"])))
            out[name] = shifts[: self.options.max_shifts]
        return out

    def _phrases(self) -> tuple[list[PhraseTheme], list[PhraseDoc]]:
        docs = [
            PhraseDoc(i.id, i.text, i.author, i.org_unit if self.employee else i.touchpoint)
            for i in self.items
        ]
        if len(self.w.baseline) < self.policy.min_baseline_weeks or not docs:
            return [], docs
        candidates = candidate_phrases(docs, min_count=self.policy.phrase_min_count)
        texts = (
            (w, t)
            for w, t, _ in repo.iter_texts(
                self.session,
                audience=self.audience,
                first_week=self.w.baseline[0],
                last_week=self.w.baseline[-1],
            )
        )
        baseline = count_in_weeks(texts, candidates, self.w.baseline)
        themes = emerging_themes(
            docs,
            baseline,
            candidates=candidates,
            min_count=self.policy.phrase_min_count,
            min_ratio=self.policy.phrase_min_ratio,
            fdr=self.policy.fdr,
        )
        self.emerged_before = {
            phrase
            for phrase, counts in baseline.items()
            if already_emerged(
                counts,
                min_count=self.policy.phrase_min_count,
                min_ratio=self.policy.phrase_min_ratio,
                policy=self.policy,
            )
        }
        if self.employee:  # a phrase is a fragment of someone's words: only from enough people
            themes = [t for t in themes if t.authors >= self.options.min_group_size_comments]
        return themes, docs

    def _where(self, counts: Mapping[str, int]) -> dict[str, int]:
        """A breakdown fit to publish: for employees, only published teams with enough items."""
        if not self.employee:
            return dict(counts)
        minimum = self.options.min_group_size_scores
        return {
            g: n
            for g, n in counts.items()
            if n >= minimum and self._published("org_unit", self.w.week, g)
        }

    def _topics(
        self,
    ) -> tuple[list[dict[str, Any]], list[Alert], dict[str, list[WeekItem]]]:
        """Topics of the topic model that grew significantly: (listed, alerts, their items)."""
        counts = repo.weekly_topic_counts(
            self.session, audience=self.audience, first_week=self.first, last_week=self.w.week
        )
        if not counts:
            return [], [], {}
        ids = sorted({t for _, t in counts})
        topics = repo.topics_by_id(self.session, ids)

        def label_of(topic_id: int) -> str:
            seen: set[int] = set()
            topic = topics.get(topic_id)
            while topic is not None and topic.merged_into_id and topic.merged_into_id not in seen:
                seen.add(topic.id)
                topic = topics.get(topic.merged_into_id) or repo.topics_by_id(
                    self.session, [topic.merged_into_id]
                ).get(topic.merged_into_id)
            return topic.label if topic is not None else f"topic {topic_id}"

        labels = {t: label_of(t) for t in ids}
        this_week: Counter[str] = Counter()
        baseline: dict[str, list[int]] = {}
        position = {w: i for i, w in enumerate(self.w.baseline)}
        for (w, t), c in counts.items():
            label = labels[t]
            if w == self.w.week:
                this_week[label] += c
            if w in position:
                baseline.setdefault(label, [0] * len(self.w.baseline))[position[w]] += c
        for label in this_week:
            baseline.setdefault(label, [0] * len(self.w.baseline))
        members: dict[str, list[WeekItem]] = {}
        for item in self.items:
            if item.topic_id is not None:
                members.setdefault(labels.get(item.topic_id, f"topic {item.topic_id}"), []).append(
                    item
                )
        if self.employee:  # topics from too few people are not shown at all
            for label, group in members.items():
                if len({i.author for i in group}) < self.options.min_group_size_comments:
                    this_week.pop(label, None)
        where = {
            label: self._where(
                Counter(i.org_unit if self.employee else i.touchpoint for i in group)
            )
            for label, group in members.items()
        }
        totals = repo.weekly_tagged_counts(
            self.session, audience=self.audience, first_week=self.first, last_week=self.w.week
        )
        alerts = topic_volume_alerts(
            this_week,
            baseline,
            total=totals.get(self.w.week, 0),
            baseline_totals=[totals.get(w, 0) for w in self.w.baseline],
            week=self.w.week,
            policy=self.policy,
            where=where,
        )
        emerging = []
        for alert in alerts:
            ids_in = {i.id for i in members.get(alert.value, [])}
            quotes = self.picker.pick(where=_among(ids_in), direction=self._tone(ids_in))
            alert.quotes = quotes
            emerging.append(
                {
                    "label": alert.value,
                    "count": int(alert.observed),
                    "baseline_weekly": _r(alert.baseline, 2),
                    "new": alert.baseline == 0,
                    "status": alert.status,
                    "q_value": float(f"{alert.q_value:.3g}"),
                    "where": alert.where,
                    "quotes": quotes,
                }
            )
        return emerging, alerts, members

    # -- assemble ------------------------------------------------------------------------------

    def build(self) -> dict[str, Any]:
        w, employee = self.w, self.employee
        start, end = week_bounds(w.week)
        if len(w.baseline) < self.options.policy.baseline_weeks:
            self.notes.append(
                f"baseline has {len(w.baseline)} of {self.options.policy.baseline_weeks} weeks "
                "with feedback; tests use what there is"
            )
        this_total = self.totals.get((w.week, repo.ALL), CellWeek())
        if this_total.n > this_total.tagged:
            self.notes.append(
                f"{this_total.n - this_total.tagged} of {this_total.n} items are not tagged yet"
            )
        payload: dict[str, Any] = {
            "schema": SCHEMA_VERSION,
            "audience": self.audience,
            "week": w.week,
            "period": {
                "start": start.date().isoformat(),
                "end": (end - timedelta(days=1)).date().isoformat(),
            },
            "last_week": w.last,
            "baseline_weeks": w.baseline,
            "share_method": self.estimator.method,
        }
        minimum = self.options.min_group_size_scores
        # Employee weeks too small to show are left out of every number.
        shown_weeks = {
            b
            for b in w.baseline
            if not employee or self.totals.get((b, repo.ALL), CellWeek()).respondents >= minimum
        }
        base_totals = [
            self.totals.get((b, repo.ALL), CellWeek()) for b in w.baseline if b in shown_weeks
        ]
        total_shown = not employee or this_total.respondents >= minimum
        last_total = self.totals.get((w.last, repo.ALL))
        if employee and last_total is not None and last_total.respondents < minimum:
            last_total = None
        payload["headline"] = (
            _headline(self.audience, this_total, last_total, base_totals, self.estimator)
            if total_shown
            else {"suppressed": True}
        )
        main = "org_unit" if employee else "touchpoint"
        min_n = self.options.cell_min_n(self.audience)

        # Alerts: negative-share spikes per published cell, emerging phrases, topic spikes.
        # What last week's digest alerted (against its own baseline) is continuing, not new.
        last_alerts = negative_share_alerts(
            self._tested_cells(w.last, w.last_baseline),
            week=w.last,
            policy=self.policy,
            min_n=min_n,
            estimator=self.estimator,
        )
        alerts = negative_share_alerts(
            self._tested_cells(w.week, w.baseline),
            week=w.week,
            policy=self.policy,
            min_n=min_n,
            already_alerted={(a.dimension, a.value) for a in last_alerts},
            estimator=self.estimator,
        )
        themes, _ = self._phrases()
        movers = self._movers(main, min_n)
        falling = {m[main] for m in movers if m["direction"] == "down"}
        by_cell = {a.value: a for a in alerts if a.dimension == main}
        homes = {t.label: _dominant(t.touchpoints) for t in themes}
        unexplained: dict[str, list[PhraseTheme]] = {}
        for theme in themes:
            # A phrase said mostly where negative sentiment spiked, or keeps falling, explains
            # that finding: it is shown there, not raised a second time. One said all over
            # the place says nothing about where to look: it is listed, not alerted.
            home = homes[theme.label]
            if home in by_cell:
                by_cell[home].phrases.append(theme.label)
            elif home is not None and home not in falling and self._published(main, w.week, home):
                unexplained.setdefault(home, []).append(theme)
        phrase_cell_alerts = [
            alert
            for alert in phrase_alerts(
                unexplained,
                dimension=main,
                week=w.week,
                policy=self.policy,
                emerged_before=self.emerged_before,
            )
            if self._mostly_negative({i for t in unexplained[alert.value] for i in t.item_ids})
        ]
        for alert in alerts:  # the alerts' quotes first: they are read first
            if self._quotable_cell(alert.dimension, alert.value):
                terms = [p for t in themes if t.label in alert.phrases for p in t.phrases]
                alert.quotes = self.picker.pick(
                    where=_in_cell(alert.dimension, alert.value), direction="negative", terms=terms
                )
        for alert in phrase_cell_alerts:
            members = list(unexplained[alert.value])
            ids_in = {i for t in members for i in t.item_ids}
            in_cell = _in_cell(main, alert.value)
            alert.where = {alert.value: alert.n}
            if self._quotable_cell(main, alert.value):
                alert.quotes = self.picker.pick(
                    where=_among(ids_in, also=in_cell),
                    direction=self._tone(ids_in),
                    terms=[p for t in members for p in t.phrases],
                )
        emerging_phrases = []
        for theme in themes:
            ids_in = set(theme.item_ids)
            quotes = self.picker.pick(
                where=_among(ids_in), direction=self._tone(ids_in), terms=theme.phrases
            )
            emerging_phrases.append(
                {
                    "label": theme.label,
                    "phrases": theme.phrases,
                    "count": theme.count,
                    "baseline_weekly": theme.baseline_weekly,
                    "new": theme.ratio is None,
                    "ratio": theme.ratio,
                    "status": phrase_status(theme, self.policy, self.emerged_before),
                    "q_value": float(f"{theme.q_value:.3g}"),
                    "where": self._where(theme.touchpoints),
                    "quotes": quotes,
                }
            )
        emerging_topics, topic_alerts, topic_items = self._topics()
        problem_topics = []
        by_phrase_cell = {a.value: a for a in phrase_cell_alerts}
        for alert in topic_alerts:  # the same rules as for phrases
            topic_members = topic_items[alert.value]
            home = _dominant(
                Counter(i.org_unit if employee else i.touchpoint for i in topic_members)
            )
            explained = by_cell.get(home) or by_phrase_cell.get(home)  # type: ignore[arg-type]
            if explained is not None:
                explained.phrases.append(f"{alert.value} (topic)")
            elif (
                home is not None
                and home not in falling
                and self._mostly_negative({i.id for i in topic_members})
            ):
                problem_topics.append(alert)
        found = alerts + problem_topics + phrase_cell_alerts
        payload["alerts"] = [a.to_dict() for a in found if a.status == "new"]
        payload["ongoing"] = [a.to_dict() for a in found if a.status != "new"]
        payload["emerging"] = {
            "topic_model": bool(emerging_topics) or self._has_topics(),
            "topics": emerging_topics,
            "phrases": emerging_phrases,
        }

        # Movers with their drivers: emotions and needs that shifted in the cell, phrases there.
        labels = {
            d: repo.weekly_label_counts(
                self.session,
                audience=self.audience,
                dimension=d,
                first_week=self.first,
                last_week=w.week,
            )
            for d in (main,)
        }
        overall_labels = repo.weekly_label_counts(
            self.session,
            audience=self.audience,
            dimension=None,
            first_week=self.first,
            last_week=w.week,
        )
        for mover in movers:
            value = mover[main]
            base = sum(self._baseline_cells(main, value), CellWeek())
            shown = {b for b in w.baseline if self._published(main, b, value)}
            mover["drivers"] = self._label_shifts(
                labels[main], value, mover["n"], base.tagged, shown
            )
            mover["phrases"] = [
                t.label for t in themes if t.touchpoints and next(iter(t.touchpoints)) == value
            ][:3]
            if self._quotable_cell(main, value):
                direction = "negative" if mover["direction"] == "down" else "positive"
                mover["quotes"] = self.picker.pick(
                    where=_in_cell(main, value),
                    direction=direction,
                    terms=[p for t in themes if t.label in mover["phrases"] for p in t.phrases],
                )
            else:
                mover["quotes"] = []
        payload["movers"] = movers
        base_n = sum(b.tagged for b in base_totals)
        payload["shifts"] = self._label_shifts(
            overall_labels, repo.ALL, this_total.tagged, base_n, shown_weeks
        )
        for (kind, name), quoted in zip(SHIFT_KINDS, (1, 2, 1), strict=True):
            for shift in payload["shifts"][name]:  # the biggest rises, in people's words
                if shift["direction"] == "up" and quoted > 0:
                    quoted -= 1
                    key = (kind, shift["label"])
                    ids = {i.id for i in self.items if key in i.labels}
                    shift["quotes"] = self.picker.pick(where=_among(ids), direction=self._tone(ids))

        if employee:
            payload["teams"] = [self._cell_summary("org_unit", v) for v in self._values("org_unit")]
            payload["themes"] = self._journey(
                "touchpoint",
                labels=repo.weekly_label_counts(
                    self.session,
                    audience=self.audience,
                    dimension="touchpoint",
                    first_week=w.week,
                    last_week=w.week,
                ),
            )
            payload["privacy"] = {
                "min_group_size_scores": self.options.min_group_size_scores,
                "min_group_size_comments": self.options.min_group_size_comments,
                "suppressed_teams": sorted(self.hidden.get(("org_unit", w.week), set())),
                "quoted_teams": len(self.quotable_teams),
            }
        else:
            payload["journey"] = self._journey("touchpoint", labels=labels["touchpoint"])
            payload["worst_touchpoint"] = self._worst(payload["journey"])
        payload["trend"] = self._trend(main)
        payload["notes"] = self.notes
        payload["method"] = {
            "baseline": (
                f"the {self.policy.baseline_weeks} weeks before the digest's week "
                "(those with feedback)"
            ),
            "alerts": (
                f"negative share: one-sided {_alert_test(self.estimator)} vs baseline, "
                "over-dispersion adjusted; "
                f"topic and phrase volume: exact conditional Poisson test; Benjamini-Hochberg "
                f"q <= {self.policy.fdr}; at least {min_n} items and "
                f"+{self.policy.min_share_increase:.0%} share negative"
            ),
            "movers": (
                f"Welch t-test of mean sentiment vs baseline, Benjamini-Hochberg "
                f"q <= {self.options.mover_fdr}, |change| >= {self.options.min_mover_delta}"
            ),
            "sentiment": (
                "mean of the model's sentiment score per item, -1 (negative) .. 1 (positive)"
            ),
            "share_negative": _share_method_note(self.estimator),
        }
        payload["provenance"] = self._provenance()
        payload["method"]["tags"] = payload["provenance"]["summary"]
        return payload

    def _provenance(self) -> dict[str, Any]:
        """What the week's numbers rest on: the tagger version(s) and how many labels are the
        analysts' corrections served in place of the model's (as every analytics answer says)."""
        from feedback.analytics.cells import Slice
        from feedback.analytics.served import corrected_labels, model_versions

        where = Slice.make(self.audience, *week_bounds(self.w.week))
        versions = model_versions(self.session, where)
        mixed = len(versions) > 1
        described = ", ".join(
            v["version"] + (f" {v['share']:.0%}" if mixed and "share" in v else "")
            + (" (live)" if mixed and v.get("live") else "") for v in versions) or "no model yet"
        corrected = corrected_labels(self.session, where)
        summary = (f"Tagged by {described}" + ("; re-tagging to the live version in progress" if mixed else "")
                   + f"; {corrected} label{'' if corrected == 1 else 's'} corrected by analysts, used in "
                   "place of the model's")
        return {"model_versions": versions, "corrected_labels": corrected, "summary": summary}

    def _mostly_negative(self, ids: set[int]) -> bool:
        """Whether these items are a problem: half or more negative, by text or by rating.

        A growing topic or phrase of praise is listed among the emerging ones, not alerted.
        """
        items = [i for i in self.items if i.id in ids]
        tagged = [i for i in items if i.sentiment]
        rated = [i for i in items if i.low_rating is not None]
        shares = []
        if tagged:
            shares.append(sum(i.sentiment == "negative" for i in tagged) / len(tagged))
        if len(rated) >= 5:
            shares.append(sum(bool(i.low_rating) for i in rated) / len(rated))
        return bool(shares) and max(shares) >= 0.5

    def _tone(self, ids: set[int]) -> str | None:
        """The sentiment most of these items share (at least 60% of them), if one does."""
        counts = Counter(i.sentiment for i in self.items if i.id in ids and i.sentiment)
        total = sum(counts.values())
        if not total:
            return None
        sentiment, count = counts.most_common(1)[0]
        return sentiment if sentiment != "neutral" and count >= 0.6 * total else None

    def _has_topics(self) -> bool:
        return any(i.topic_id is not None for i in self.items)

    def _journey(
        self, dimension: str, *, labels: Mapping[tuple[str, str, str, str], int]
    ) -> list[dict[str, Any]]:
        """Each touchpoint (or theme) this week, in journey order, with its dominant CX emotion."""
        order = list(journey_order(self.audience, self.options))
        values = [v for v in self._values(dimension) if v != UNKNOWN]
        ordered = [v for v in order if v in values] + sorted(v for v in values if v not in order)
        out = []
        for value in ordered:
            summary = self._cell_summary(dimension, value)
            if not summary.get("suppressed"):
                emotions = Counter(
                    {
                        label: c
                        for (wk, v, kind, label), c in labels.items()
                        if wk == self.w.week
                        and v == value
                        and kind == "cx_emotion"
                        and label != "neutral"
                    }
                )
                top = emotions.most_common(1)
                summary["top_emotion"] = top[0][0] if top else None
                summary["top_emotion_share"] = (
                    _r(top[0][1] / summary["n"]) if top and summary["n"] else None
                )
            out.append(summary)
        return out

    def _worst(self, journey: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
        """The touchpoint with the largest share of negative feedback this week.

        Where every touchpoint in the running has at least 10 rated items, the respondents'
        own ratings decide (share of low ratings); otherwise the model's reading of the texts
        (share tagged negative), so that touchpoints are always ranked on one scale.
        """
        steps = [
            s
            for s in journey
            if not s.get("suppressed")
            and s.get("n", 0) >= self.options.min_cell_n
            and s.get("share_negative") is not None
        ]
        if not steps:
            return None
        by_ratings = all(s.get("rated", 0) >= 10 for s in steps)
        key = "share_low_rating" if by_ratings else "share_negative"
        worst = dict(max(steps, key=lambda s: (s[key], s["touchpoint"])))
        worst["ranked_by"] = "ratings" if by_ratings else "text"
        worst["quotes"] = self.picker.pick(
            where=_in_cell("touchpoint", worst["touchpoint"]), direction="negative"
        )
        return worst

    def _trend(self, dimension: str) -> dict[str, Any]:
        """Weekly mean sentiment per value over the trend weeks (None where too few or hidden)."""
        series: dict[str, list[float | None]] = {}
        volumes: dict[str, list[int | None]] = {}
        minimum = self.options.min_group_size_scores if self.employee else 5
        for value in sorted({v for (_, v) in self.cells[dimension]} - {UNKNOWN}):
            points: list[float | None] = []
            counts: list[int | None] = []
            for week in self.w.trend:
                cell = self._cell(dimension, week, value)
                ok = cell.tagged >= minimum and self._published(dimension, week, value)
                points.append(_r(cell.sentiment.mean, 3) if ok else None)
                counts.append(cell.n if ok else None)
            if any(p is not None for p in points):
                series[value] = points
                volumes[value] = counts
        order = list(journey_order(self.audience, self.options))
        names = [v for v in order if v in series] + sorted(v for v in series if v not in order)
        return {
            "dimension": dimension,
            "weeks": self.w.trend,
            "metric": "mean_sentiment",
            "series": {n: series[n] for n in names},
            "volume": {n: volumes[n] for n in names},
        }


def _alert_test(estimator: ShareEstimator) -> str:
    if estimator.uses_probabilities:
        return f"Welch t of the mean p(negative), which the {estimator.method} estimate is linear in,"
    return "Fisher exact"


def _share_method_note(estimator: ShareEstimator) -> str:
    """How share_negative was estimated, in words (docs/api.md#shares)."""
    if estimator.method == "cc":
        return "share of tagged items the model labels negative (classify-and-count)"
    what = {
        "acc": "the share labelled negative",
        "pcc": "the mean calibrated p(negative)",
        "pacc": "the mean calibrated p(negative)",
    }[estimator.method]
    adjusted = (
        f", adjusted by the dev rates tpr {estimator.tpr:.3f} and fpr {estimator.fpr:.3f}"
        if estimator.method in ("acc", "pacc")
        else ""
    )
    return (
        f"estimated ({estimator.method}): {what}{adjusted}; share_negative_cc is the count "
        "the model labelled negative; quotes use the model's own labels"
    )


def _dominant(counts: Mapping[str, int], share: float = 0.6) -> str | None:
    """The value holding at least `share` of the counts, if one does."""
    total = sum(counts.values())
    if not total:
        return None
    value, count = max(counts.items(), key=lambda kv: (kv[1], kv[0]))
    return value if count >= share * total else None


def _difference(now: float | None, before: float | None) -> float | None:
    return None if now is None or before is None else _r(now - before)


def _among(
    ids: set[int], *, also: Callable[[WeekItem], bool] | None = None
) -> Callable[[WeekItem], bool]:
    """A quote filter: the item is one of `ids` (and passes `also`)."""
    return lambda i: i.id in ids and (also is None or also(i))


def _in_cell(dimension: str, value: str) -> Callable[[WeekItem], bool]:
    if dimension == "org_unit":
        return lambda i: i.org_unit == value
    return lambda i: i.touchpoint == value
