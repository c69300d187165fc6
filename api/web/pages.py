"""The insight web app's pages, served by the API's FastAPI app at `/` (docs/web.md).

Server-rendered Jinja2 (autoescaping on), plain forms, one small stylesheet and script from
/static. Each page reads the same analytics functions the /v1 endpoints call (api.web.data),
and sees what the visitor's key or user may read, by the API's rules (api.auth.Principal).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import AfterValidator, BeforeValidator, StringConstraints
from sqlalchemy import select

from api.auth import _authenticate as authenticate_key
from api.deps import SessionDep, SettingsDep
from api.params import DB_INT_MAX, FiltersDep
from api.routers.digests import HTML_HEADERS as DIGEST_HTML_HEADERS
from api.routers.health import health as health_status
from api.routers.quotes import _redactor
from api.web import charts, data, names
from api.web import corrections as web_corrections
from api.web.security import (
    CSRF_COOKIE,
    CSRF_FIELD,
    SESSION_COOKIE,
    Visitor,
    VisitorDep,
    check_csrf,
    client_address,
    csrf_cookie_token,
    current_owner,
    secure_cookies,
    sign_in_limiter,
)
from classifiers.labels import GOEMOTIONS_LABELS, NEED_LABELS
from feedback import accounts, repository
from feedback.corrections import repository as correction_repository
from feedback.corrections import service as correction_service
from feedback.corrections.service import touchpoint_names
from feedback.insights import repository as digests_repo
from feedback.insights.service import digest_summary
from feedback.models import DeadLetter, FeedbackItem, Topic
from feedback.sources import repository as sources_repo
from feedback.topics import service as topics_service
from feedback.topics import taxonomy
from feedback.topics.taxonomy import TopicEditError

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).resolve().parent / "templates"))
router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50


def _blank_is_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(2999, 12, 31)


def _plausible(value: date | None) -> date | None:
    """A typed date far from any feedback is a mistake (and year 1 or 9999 overflows the week
    arithmetic): a 422 page, not a 500."""
    if value is not None and not FIRST_DAY <= value <= LAST_DAY:
        raise ValueError(f"a date from {FIRST_DAY.isoformat()} to {LAST_DAY.isoformat()}")
    return value


# A form's empty date field arrives as `start=`: no date, not an error.
Day = Annotated[date | None, BeforeValidator(_blank_is_none), AfterValidator(_plausible)]
EMPLOYEE_DIMENSIONS = {"org_unit": "Team", "segment": "Tenure", "journey_stage": "Journey stage",
                       "touchpoint": "Theme"}
QUOTE_FILTERS = ("sentiment", "emotion", "need", "topic", "segment", "channel")


def _num(value: Any, digits: int = 2, signed: bool = False) -> str:
    if value is None:
        return "–"
    if isinstance(value, int | float):
        if round(value, digits) == 0:
            value = 0.0  # never "-0.00"
        return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"
    return str(value)


def _pct(value: Any, signed: bool = False) -> str:
    if value is None:
        return "–"
    if round(value * 100) == 0:
        value = 0.0  # never "-0%"
    return f"{value * 100:+.0f}%" if signed else f"{value * 100:.0f}%"


def _metric(value: Any, metric: str, signed: bool = False) -> str:
    if metric in ("share_negative", "csat", "share_negative_cc"):
        return _pct(value, signed)
    if metric == "nps":
        return _num(value, 0, signed)
    if metric == "volume":
        return _num(value, 0, signed)
    return _num(value, 2, signed)


def _headline(value: Any, key: str) -> str:
    """A digest headline number as the other pages print it: shares as percentages, NPS whole."""
    if key in ("share_negative", "share_low_rating"):
        return _pct(value)
    return _num(value, 0 if key == "nps" else 2)


def _p_value(value: Any) -> str:
    """"p < 0.001" below a thousandth, else two significant digits ("p = 0.012")."""
    if value is None:
        return "p –"
    if value < 0.001:
        return "p < 0.001"
    return f"p = {float(f'{value:.2g}'):g}"


def _when(value: Any) -> str:
    """A stored instant as minutes, in UTC (naive ones from SQLite are UTC)."""
    if value is None:
        return "–"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M UTC")


TEMPLATES.env.filters.update(num=_num, pct=_pct, metric=_metric, when=_when, headline=_headline, p_value=_p_value,
                             readable=names.readable, anchor=web_corrections.anchor)
TEMPLATES.env.globals.update(METRICS=data.METRICS, EMPLOYEE_DIMENSIONS=EMPLOYEE_DIMENSIONS,
                             KIND_TITLES=web_corrections.KIND_TITLES)


def _query(**params: Any) -> str:
    return urlencode({k: v for k, v in params.items() if v not in (None, "")})


TEMPLATES.env.globals["q"] = _query


def render(request: Request, template: str, visitor: Visitor | None, status_code: int = 200,
           **context: Any) -> HTMLResponse:
    settings = request.app.state.settings
    response = TEMPLATES.TemplateResponse(request, template, {
        "visitor": visitor, "csrf_field": CSRF_FIELD, "min_scores": data.sizes(settings)[0],
        "min_comments": data.sizes(settings)[1], "path": request.url.path, **context,
    }, status_code=status_code)
    new_csrf = getattr(request.state, "new_csrf", None)
    if new_csrf:
        response.set_cookie(CSRF_COOKIE, new_csrf, httponly=True, samesite="lax", secure=secure_cookies(request))
    return response


def _audience(visitor: Visitor, requested: str | None) -> str:
    """The audience to show: the one asked for if the visitor may read it (403 if not), else
    the first they may read."""
    if requested:
        if requested not in ("customer", "employee"):
            raise HTTPException(status_code=400, detail="audience is customer or employee")
        if not visitor.principal.can_read(requested):
            scope = "cx" if requested == "customer" else "hr"
            raise HTTPException(status_code=403, detail=f"{requested} feedback needs scope {scope} or admin")
        return requested
    return visitor.audiences[0]


def _period(session: Any, audience: str, key: str, start: date | None, end: date | None) -> data.Period:
    """The picked period; a custom one without both dates, or ending before it starts, is a 422
    page (it used to fall back to 8 weeks without a word)."""
    if key == "custom":
        if start is None or end is None:
            raise HTTPException(status_code=422, detail="a custom period needs both dates, From and Until")
        if end <= start:
            raise HTTPException(status_code=422, detail=f"the period's Until ({end.isoformat()}) must come after "
                                                        f"its From ({start.isoformat()})")
    return data.pick_period(session, audience, key, start, end)


def _require_admin(visitor: Visitor) -> None:
    if not visitor.principal.is_admin:
        raise HTTPException(status_code=403, detail="this page needs scope admin")


def _safe_next(target: str | None) -> str:
    """Only a path of this site (never //host or a scheme): no open redirect after sign-in."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


# ---------------------------------------------------------------------------------------------
# Sign in and out


@router.get("/signin")
def sign_in_page(request: Request, session: SessionDep, next: str | None = None) -> Response:  # noqa: A002
    if current_owner(request, session) is not None:
        return _redirect(_safe_next(next))
    return render(request, "signin.html", None, csrf=csrf_cookie_token(request), next=_safe_next(next))


@router.post("/signin")
def sign_in(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    csrf_token: Annotated[str | None, Form()] = None,
    api_key: Annotated[str | None, Form(max_length=500)] = None,
    username: Annotated[str | None, Form(max_length=200)] = None,
    password: Annotated[str | None, Form(max_length=1000)] = None,
    next: Annotated[str | None, Form(max_length=2000)] = None,  # noqa: A002
) -> Response:
    check_csrf(request.cookies.get(CSRF_COOKIE) or "", csrf_token)
    limiter, client = sign_in_limiter(request), client_address(request)
    wait = limiter.retry_after(client)
    if wait:
        response = render(request, "signin.html", None, status_code=429, csrf=csrf_cookie_token(request),
                          next=_safe_next(next), error=f"Too many failed sign-ins: try again in {wait} s.")
        response.headers["Retry-After"] = str(wait)
        return response
    key_id = user_id = None
    if api_key and api_key.strip():
        try:
            principal = authenticate_key(_KeyRequest(request, api_key.strip()), session)  # type: ignore[arg-type]
            key_id = principal.key_id
        except HTTPException:
            key_id = None
    elif username and password:
        user = accounts.authenticate_user(session, username=username, password=password)
        user_id = user.id if user else None
    if key_id is None and user_id is None:
        limiter.failed(client)
        return render(request, "signin.html", None, status_code=401, csrf=csrf_cookie_token(request),
                      next=_safe_next(next), error="That key or password is not valid.")
    limiter.succeeded(client)
    accounts.purge_expired_sessions(session)
    token, row = accounts.start_session(session, hours=settings.web.session_hours, api_key_id=key_id,
                                        user_id=user_id)
    response = _redirect(_safe_next(next))
    response.set_cookie(SESSION_COOKIE, token, max_age=int(settings.web.session_hours * 3600), httponly=True,
                        samesite="lax", secure=secure_cookies(request), path="/")
    return response


class _KeyRequest:
    """The sign-in form's key presented to the API's own key check (api.auth), as a header would be."""

    def __init__(self, request: Request, key: str) -> None:
        self.app = request.app
        self.headers = {"authorization": f"Bearer {key}"}


@router.post("/signout")
def sign_out(request: Request, session: SessionDep, visitor: VisitorDep,
             csrf_token: Annotated[str | None, Form()] = None) -> Response:
    check_csrf(visitor.csrf_token, csrf_token)
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        accounts.end_session(session, token)
    response = _redirect("/signin")
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    return response


# ---------------------------------------------------------------------------------------------
# Overview


@router.get("/")
def overview(request: Request, session: SessionDep, settings: SettingsDep, visitor: VisitorDep,
             audience: str | None = None, metric: str = "net_sentiment",
             week: Day = None) -> Response:
    audience = _audience(visitor, audience)
    metric = metric if metric in (*data.METRICS, "volume") else "net_sentiment"
    monday = data.monday(week) if week else data.latest_week(session, audience)
    context: dict[str, Any] = {"audience": audience, "metric": metric, "week": monday}
    if monday is not None:
        # first: its employee read of 20 weeks also answers the overview's shorter ranges
        context["standing"] = data.standing_view(session, settings, audience=audience, week=monday)
        view = data.overview_view(session, settings, audience=audience, metric=metric, week=monday)
        context["view"] = _weekly_volumes(view) if metric == "volume" else view
        context["empty_week"] = session.scalar(
            select(FeedbackItem.id).where(FeedbackItem.audience == audience, FeedbackItem.created_at >= monday,
                                          FeedbackItem.created_at < monday + timedelta(days=7)).limit(1)) is None
        context["week_label"] = f"{monday.isocalendar()[0]}-W{monday.isocalendar()[1]:02d}"
        context["week_end"] = monday + timedelta(days=7)
        context["week_last"] = (monday + timedelta(days=6)).date()
        context["previous_week"] = (monday - timedelta(days=7)).date()
        context["next_week"] = (monday + timedelta(days=7)).date()
    digest = digests_repo.latest_digest(session, audience=audience)
    context["digest"] = digest.payload if digest else None
    context["digest_week"] = digest.week if digest else None
    return render(request, "overview.html", visitor, **context)


def _weekly_volumes(view: dict[str, Any]) -> dict[str, Any]:
    """Volume on the overview per week: the baseline is its weeks' mean (not their sum) and each
    change is items a week (/v1/compare's volume change is a rate per day)."""
    week = 7.0
    rows = []
    for row in view["rows"]:
        last = {**row["change_last"], "change": _times(row["change_last"].get("change"), week)}
        base = row["baseline"]
        if base is not None:
            side = base["baseline"]
            value = side.get("value")
            base = {**base, "change": _times(base.get("change"), week),
                    "baseline": {**side, "value": None if value is None else value / data.BASELINE_WEEKS}}
        rows.append({**row, "change_last": last, "baseline": base})
    return {**view, "rows": rows}


def _times(value: float | None, factor: float) -> float | None:
    return None if value is None else value * factor


# ---------------------------------------------------------------------------------------------
# Journey and touchpoints


@router.get("/journey")
def journey_page(request: Request, session: SessionDep, settings: SettingsDep, visitor: VisitorDep,
                 audience: str | None = None, period: str = "8w", start: Day = None,
                 end: Day = None, metric: str = "net_sentiment", compare: str = "previous") -> Response:
    audience = _audience(visitor, audience)
    metric = metric if metric in data.METRICS else "net_sentiment"
    chosen = _period(session, audience, period, start, end)
    current = data.journey_view(session, settings, audience=audience, period=chosen, metric=metric)
    previous = chosen.previous() if compare == "previous" else None
    before = data.journey_view(session, settings, audience=audience, period=previous, metric=metric) \
        if previous else None
    before_steps = {s["touchpoint"]: s for s in before["steps"]} if before else {}
    drivers = data.drivers_view(session, settings, audience=audience, period=chosen, dimensions=("touchpoint",))
    moments = [d for d in drivers.get("drivers", []) if d.get("significant")]
    moments.sort(key=lambda d: -abs(d.get("impact") or 0))
    chart = charts.journey_chart(current["steps"], metric=metric)
    stages: list[tuple[str, list[dict[str, Any]]]] = []
    for step in current["steps"]:
        stage = step.get("journey_stage") or "other"
        if stages and stages[-1][0] == stage:
            stages[-1][1].append(step)
        else:
            stages.append((stage, [step]))
    return render(request, "journey.html", visitor, audience=audience, period=chosen, metric=metric,
                  journey=current, before=before_steps, previous=previous, compare=compare, chart=chart,
                  stages=stages, drivers=drivers, moments=moments[:3], periods=list(data.PERIODS))


@router.get("/touchpoints/{name}")
def touchpoint_page(request: Request, session: SessionDep, settings: SettingsDep, visitor: VisitorDep,
                    name: Annotated[str, PathParam(max_length=100)], audience: str | None = None,
                    period: str = "12w", start: Day = None, end: Day = None,
                    sentiment: str | None = None, emotion: str | None = None, need: str | None = None,
                    topic: str | None = None, segment: str | None = None, channel: str | None = None,
                    quotes_since: Day = None, quotes_until: Day = None) -> Response:
    audience = _audience(visitor, audience)
    chosen = _period(session, audience, period, start, end)
    filters = {"touchpoint": name}
    weekly = data.trends_view(session, settings, audience=audience, by="touchpoint", start=chosen.start,
                              end=chosen.end, filters=filters)
    rows = weekly["rows"]
    labels = [r["period_label"] for r in rows]

    def series(metric: str) -> tuple[str, list[Any], list[Any], list[Any]]:
        return (data.METRICS.get(metric, metric), [r.get(metric) for r in rows],
                [r.get(f"{metric}_ci_low") for r in rows], [r.get(f"{metric}_ci_high") for r in rows])

    trend_charts = [
        ("Mean sentiment", charts.line_chart(labels, [series("mean_sentiment")], title="Mean sentiment",
                                             floor=-1, ceiling=1)),
        ("Share negative", charts.line_chart(labels, [series("share_negative")], title="Share negative",
                                             floor=0, ceiling=1, percent=True)),
        ("NPS", charts.line_chart(labels, [series("nps")], title="NPS", floor=-100, ceiling=100)),
    ]
    volume = charts.bar_chart(labels, [r.get("n") for r in rows])
    journey = data.journey_view(session, settings, audience=audience, period=chosen)
    step = next((s for s in journey["steps"] if s["touchpoint"] == name), None)
    if step is None and not rows:
        raise HTTPException(status_code=404, detail=f"no {audience} feedback at touchpoint {name!r}")
    topics = data.trends_view(session, settings, audience=audience, by="topic", interval="week",
                              start=chosen.start, end=chosen.end, filters=filters)
    topic_rows = _pivot(topics["rows"], "topic", labels)
    drivers = data.drivers_view(session, settings, audience=audience, period=chosen,
                                dimensions=("topic", "need", "emotion"), filters=filters)
    quote_filters = dict(filters)
    topics_here = [(t.id, t.label) for t in correction_repository.active_topics(session, audience)]
    choices = {"emotion": [(label, label) for label in GOEMOTIONS_LABELS],
               "need": [(label, label) for label in NEED_LABELS],
               "topic": [(str(topic_id), label) for topic_id, label in topics_here]}
    chosen_filters = {"emotion": emotion, "need": need, "topic": topic, "segment": segment, "channel": channel}
    unknown = _unknown_choices(chosen_filters, choices)
    quote_filters.update({k: v for k, v in chosen_filters.items() if v})
    quote_start = data._day(quotes_since) if quotes_since else chosen.start
    quote_end = data._day(quotes_until + timedelta(days=1)) if quotes_until else chosen.end
    quote_error = None
    try:
        if unknown:
            raise ValueError(unknown)
        quotes = data.quotes_view(session, settings, _redactor(request).redact, audience=audience, start=quote_start,
                                  end=quote_end, filters=quote_filters,
                                  sentiment=sentiment if sentiment in ("positive", "neutral", "negative") else None)
    except ValueError as exc:  # employee quotes take one filter: the API's own refusal, shown
        quotes, quote_error = {"quotes": []}, str(exc)
    return render(request, "touchpoint.html", visitor, audience=audience, name=name, period=chosen,
                  periods=list(data.PERIODS), rows=rows, trend_charts=trend_charts, volume=volume, step=step,
                  topic_rows=topic_rows[:12], drivers=drivers, quotes=quotes, quote_error=quote_error,
                  chosen=chosen_filters, choices=choices, sentiment=sentiment, quotes_since=quotes_since,
                  quotes_until=quotes_until, source=weekly["source"])


def _unknown_choices(chosen: dict[str, str | None], choices: dict[str, list[tuple[str, str]]]) -> str | None:
    """Why a typed filter value matches nothing the menus offer (a topic may be named by its
    label: it becomes its id in `chosen`), None if all are known."""
    for kind, options in choices.items():
        value = chosen.get(kind)
        if not value:
            continue
        by_text = {text.lower(): code for code, text in options}
        if value in {code for code, _ in options}:
            continue
        if value.lower() in by_text:
            chosen[kind] = by_text[value.lower()]
            continue
        return f"no {kind} is called {value!r}: choose one from the list"
    return None


def _pivot(rows: list[dict[str, Any]], by: str, labels: list[str]) -> list[dict[str, Any]]:
    """Trend rows (period x value) as one entry per value: total n, weekly n, last mean sentiment."""
    index = {label: i for i, label in enumerate(labels)}
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = out.setdefault(row["value_code"], {"code": row["value_code"], "name": row[by], "n": 0,
                                                   "weekly": [None] * len(labels), "cells": [None] * len(labels),
                                                   "suppressed": 0})
        i = index.get(row["period_label"])
        if row.get("suppressed"):
            entry["suppressed"] += 1
        elif i is not None:
            entry["n"] += row.get("n") or 0
            entry["weekly"][i] = row.get("n")
            entry["cells"][i] = row
    for entry in out.values():
        entry["spark"] = charts.sparkline(entry["weekly"])
    return sorted(out.values(), key=lambda e: (-e["n"], str(e["name"])))


# ---------------------------------------------------------------------------------------------
# Employee view


@router.get("/employee")
def employee_page(request: Request, session: SessionDep, settings: SettingsDep, visitor: VisitorDep,
                  by: str = "org_unit", metric: str = "mean_sentiment", period: str = "12w",
                  start: Day = None, end: Day = None,
                  filter_by: str | None = None, filter_value: Annotated[str | None, Query(max_length=200)] = None
                  ) -> Response:
    _audience(visitor, "employee")
    by = by if by in EMPLOYEE_DIMENSIONS else "org_unit"
    metric = metric if metric in data.METRICS else "mean_sentiment"
    chosen = _period(session, "employee", period, start, end)
    filters = {filter_by: filter_value} if filter_by in EMPLOYEE_DIMENSIONS and filter_value else {}
    view = data.trends_view(session, settings, audience="employee", by=by, start=chosen.start, end=chosen.end,
                            filters=filters)
    labels = sorted({r["period_label"] for r in view["rows"]})
    groups = _pivot(view["rows"], by, labels)
    chart = charts.line_chart(labels, [(names.readable(g["name"]), [c.get(metric) if c else None for c in g["cells"]],
                                        [c.get(f"{metric}_ci_low") if c else None for c in g["cells"]],
                                        [c.get(f"{metric}_ci_high") if c else None for c in g["cells"]])
                                       for g in groups[:8]],
                              title=data.METRICS[metric],
                              floor=-100 if metric == "nps" else 0 if metric in ("share_negative", "csat") else -1,
                              ceiling=100 if metric == "nps" else 1,
                              percent=metric in ("share_negative", "csat"))
    return render(request, "employee.html", visitor, audience="employee", by=by, metric=metric, period=chosen,
                  periods=list(data.PERIODS), labels=labels, groups=groups, chart=chart, filters=filters,
                  filter_by=filter_by, filter_value=filter_value, source=view["source"])


# ---------------------------------------------------------------------------------------------
# Topics


TOPICS_PER_PAGE = 25
TOPIC_ORDERS = {"volume": "largest first", "trend": "rising first"}


def _topic_order(topics: list[dict[str, Any]], sort: str, q: str | None) -> list[dict[str, Any]]:
    """The active topics whose label or keywords hold `q`, largest first, or rising first: the
    emerging ones, then by how far the latest week's share of items is above the topic's
    baseline share (the numbers behind the emerging flag), hidden ones last."""
    words = (q or "").strip().lower()
    shown = [t for t in topics if t["status"] == "active"
             and (not words or words in t["label"].lower() or any(words in k.lower() for k in t["keywords"]))]
    if sort != "trend":
        return shown

    def rising(topic: dict[str, Any]) -> tuple[bool, bool, float, int, int]:
        trend = topic.get("trend") or {}
        growth = (trend.get("share") or 0.0) - (trend.get("baseline_share") or 0.0)
        return (not trend, not trend.get("emerging"), -growth, -(topic.get("size") or 0), topic["id"])

    return sorted(shown, key=rising)


def _topic_page(ordered: list[dict[str, Any]], page: int) -> tuple[int, int, list[dict[str, Any]]]:
    """(page, pages, its topics): a page past the last shows the last."""
    pages = max(1, -(-len(ordered) // TOPICS_PER_PAGE))
    page = min(page, pages)
    return page, pages, ordered[(page - 1) * TOPICS_PER_PAGE:page * TOPICS_PER_PAGE]


@router.get("/topics")
def topics_page(request: Request, session: SessionDep, settings: SettingsDep, visitor: VisitorDep,
                audience: str | None = None, message: str | None = None, sort: str = "volume",
                page: Annotated[int, Query(ge=1, le=DB_INT_MAX)] = 1,
                q: Annotated[str | None, Query(max_length=200)] = None) -> Response:
    """The active topics, TOPICS_PER_PAGE a page, largest or rising first, filtered by a word of
    their label or keywords; quotes are read for the page's topics only."""
    audience = _audience(visitor, audience)
    sort = sort if sort in TOPIC_ORDERS else "volume"

    def on_the_page(topics: list[dict[str, Any]]) -> list[int]:
        return [t["id"] for t in _topic_page(_topic_order(topics, sort, q), page)[2]]

    listing = topics_service.list_topics(session, settings=settings, audience=audience, interval="week", periods=12,
                                         with_totals=False,  # not shown, and they read every item
                                         quotes_for=on_the_page)
    ordered = _topic_order(listing["topics"], sort, q)
    page, pages, shown = _topic_page(ordered, page)
    for topic in shown:
        periods = (topic.get("trend") or {}).get("periods") or []
        topic["spark"] = charts.sparkline([p.get("n") for p in periods])
        topic["spark_text"] = ", ".join(f"{p.get('period_label', p.get('period'))}: "
                                        f"{'hidden' if p.get('n') is None else p.get('n')}" for p in periods)
    active = [t for t in listing["topics"] if t["status"] == "active"]
    here = {"audience": audience, "sort": sort, "q": q}
    return render(request, "topics.html", visitor, audience=audience, listing=listing, topics=shown,
                  all_topics=sorted(active, key=lambda t: t["id"]), matching=len(ordered), page=page, pages=pages,
                  first=(page - 1) * TOPICS_PER_PAGE + 1, sort=sort, words=q, orders=TOPIC_ORDERS, here=here,
                  message=message)


def _topic_edit(session: Any, visitor: Visitor, topic_id: int, csrf_token: str | None) -> Topic:
    check_csrf(visitor.csrf_token, csrf_token)
    _require_admin(visitor)
    try:
        return taxonomy.get_topic(session, topic_id)
    except LookupError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None


TopicId = Annotated[int, PathParam(ge=1, le=DB_INT_MAX)]
TopicSort = Annotated[str | None, Form(max_length=20)]
TopicPage = Annotated[int | None, Form(ge=1, le=DB_INT_MAX)]
TopicWords = Annotated[str | None, Form(max_length=200)]


def _back_to_topics(topic: Topic, message: str, sort: str | None, page: int | None, q: str | None) -> Response:
    """The topics page the edit was made on (its order, page and words), saying what happened."""
    sort = sort if sort in TOPIC_ORDERS else None
    return _redirect(f"/topics?{_query(audience=topic.audience, sort=sort, page=page, q=q, message=message)}")


@router.post("/topics/{topic_id}/rename")
def rename_topic(session: SessionDep, visitor: VisitorDep, topic_id: TopicId,
                 label: Annotated[str, Form(min_length=1, max_length=200)],
                 csrf_token: Annotated[str | None, Form()] = None, sort: TopicSort = None, page: TopicPage = None,
                 q: TopicWords = None) -> Response:
    topic = _topic_edit(session, visitor, topic_id, csrf_token)
    try:
        taxonomy.rename(session, topic_id=topic_id, label=label)
    except TopicEditError as exc:
        return _back_to_topics(topic, str(exc), sort, page, q)
    return _back_to_topics(topic, f"Renamed topic {topic_id}.", sort, page, q)


@router.post("/topics/{topic_id}/pin")
def pin_topic(session: SessionDep, visitor: VisitorDep, topic_id: TopicId,
              pinned: Annotated[bool, Form()], csrf_token: Annotated[str | None, Form()] = None,
              sort: TopicSort = None, page: TopicPage = None, q: TopicWords = None) -> Response:
    topic = _topic_edit(session, visitor, topic_id, csrf_token)
    try:
        taxonomy.pin(session, topic_id=topic_id, pinned=pinned)
    except TopicEditError as exc:
        return _back_to_topics(topic, str(exc), sort, page, q)
    done = "Pinned" if pinned else "Unpinned"
    return _back_to_topics(topic, f"{done} topic {topic_id}.", sort, page, q)


@router.post("/topics/{topic_id}/merge")
def merge_topic(session: SessionDep, visitor: VisitorDep, topic_id: TopicId,
                into: Annotated[int, Form(ge=1, le=DB_INT_MAX)],
                csrf_token: Annotated[str | None, Form()] = None, sort: TopicSort = None, page: TopicPage = None,
                q: TopicWords = None) -> Response:
    topic = _topic_edit(session, visitor, topic_id, csrf_token)
    try:
        target = taxonomy.merge(session, topic_id=topic_id, into_id=into)
    except (TopicEditError, LookupError) as exc:
        return _back_to_topics(topic, str(exc), sort, page, q)
    return _back_to_topics(topic, f"Merged topic {topic_id} into {target.id}.", sort, page, q)


@router.get("/quotes")
def quotes_page(request: Request, session: SessionDep, settings: SettingsDep, visitor: VisitorDep,
                filters: FiltersDep, audience: str | None = None, sentiment: str | None = None) -> Response:
    """Quotes of any slice (/v1/quotes): the drill-down from a topic, a number or an alert."""
    audience = _audience(visitor, audience)
    error = None
    try:
        quotes = data.quotes_view(session, settings, _redactor(request).redact, audience=audience, start=None, end=None,
                                  filters=filters,
                                  sentiment=sentiment if sentiment in ("positive", "neutral", "negative") else None)
    except ValueError as exc:
        quotes, error = {"quotes": []}, str(exc)
    label = None
    if filters.get("topic", "").isdigit():
        topic = session.get(Topic, int(filters["topic"]))
        label = topic.label if topic is not None and visitor.principal.can_read(topic.audience) else None
    fields = ("touchpoint", "topic", "need", "emotion", "channel", "segment") + (
        ("org_unit",) if audience == "employee" else ())
    return render(request, "quotes.html", visitor, audience=audience, quotes=quotes, error=error, filters=filters,
                  sentiment=sentiment, topic_label=label, fields=fields)


# ---------------------------------------------------------------------------------------------
# Feedback explorer


EMPLOYEE_COMMENTS = 20


def _raw_items_hidden(visitor: Visitor, audience: str) -> bool:
    """Employee items are read one by one only with admin (as GET /v1/feedback): hr sees employee
    comments as quotes (docs/privacy.md rule 5), and an employee item's page without its team,
    tenure, stage, channel, times and scores."""
    return audience == "employee" and not visitor.principal.is_admin


@router.get("/feedback")
def feedback_page(request: Request, session: SessionDep, settings: SettingsDep, visitor: VisitorDep,
                  audience: str | None = None,
                  q: Annotated[str | None, Query(max_length=500)] = None,
                  touchpoint: Annotated[str | None, Query(max_length=100)] = None,
                  channel: Annotated[str | None, Query(max_length=30)] = None,
                  org_unit: Annotated[str | None, Query(max_length=200)] = None,
                  segment: Annotated[str | None, Query(max_length=200)] = None,
                  journey_stage: Annotated[str | None, Query(max_length=100)] = None,
                  source: Annotated[str | None, Query(max_length=200)] = None,
                  sentiment: Annotated[str | None, Query(max_length=20)] = None,
                  emotion: Annotated[str | None, Query(max_length=50)] = None,
                  need: Annotated[str | None, Query(max_length=50)] = None,
                  topic: Annotated[str | None, Query(max_length=200)] = None,
                  order: str = "newest",
                  since: Day = None, until: Day = None,
                  cursor: Annotated[int | None, Query(ge=0, le=DB_INT_MAX)] = None) -> Response:
    audience = _audience(visitor, audience)
    if _raw_items_hidden(visitor, audience):
        chosen = {"org_unit": org_unit, "segment": segment, "journey_stage": journey_stage,
                  "touchpoint": touchpoint}
        return _employee_comments(request, session, settings, visitor, {k: v for k, v in chosen.items() if v},
                                  sentiment=sentiment, since=since, until=until, searched=bool(q or source or channel))
    if q and "\x00" in q:
        raise HTTPException(status_code=400, detail="a search cannot hold a NUL character")
    order = order if order in ("newest", "oldest") else "newest"
    sentiment = sentiment if sentiment in ("negative", "neutral", "positive") else None
    topics = [(t.id, t.label) for t in correction_repository.active_topics(session, audience)]
    problems = []
    if emotion and emotion not in GOEMOTIONS_LABELS:
        problems.append(f"no emotion called {emotion!r}")
    if need and need not in NEED_LABELS:
        problems.append(f"no need called {need!r}")
    topic_id = None
    if topic:
        topic_id = next((i for i, label in topics if topic in (str(i), label)), None)
        if topic_id is None:
            problems.append(f"no active topic called {topic!r}")
    if problems:
        raise HTTPException(status_code=422, detail="; ".join(problems) + ": pick one from the menus")
    items = repository.list_items(
        session, audience=audience, touchpoint=touchpoint or None, channel=channel or None,
        org_unit=org_unit or None, source=source or None, since=data._day(since) if since else None,
        until=data._day(until + timedelta(days=1)) if until else None, q=q, after_id=cursor, limit=PAGE_SIZE,
        sentiment=sentiment, emotion=emotion or None, need=need or None, topic_id=topic_id,
        newest_first=order == "newest")
    next_cursor = items[-1].id if len(items) == PAGE_SIZE else None
    params = {"audience": audience, "q": q, "touchpoint": touchpoint, "channel": channel, "org_unit": org_unit,
              "source": source, "since": since, "until": until, "sentiment": sentiment, "emotion": emotion,
              "need": need, "topic": topic, "order": order}
    return render(request, "feedback.html", visitor, audience=audience, items=items, params=params,
                  emotions=GOEMOTIONS_LABELS, needs=NEED_LABELS, topics=topics,
                  next_cursor=next_cursor, cursor=cursor, served=web_corrections.served_labels(session, list(items)),
                  full_text=session.get_bind().dialect.name == "postgresql",
                  touchpoints=sorted({*touchpoint_names(settings, audience), *([touchpoint] if touchpoint else [])}))


def _employee_comments(request: Request, session: Any, settings: Any, visitor: Visitor, filters: dict[str, str], *,
                       sentiment: str | None, since: date | None, until: date | None, searched: bool) -> Response:
    """The employee explorer for hr: the slice's comments by /v1/quotes' rules (at least
    `min_group_size_comments` people, only their weeks, one filter, whole weeks, no id, date or
    dimension values); no text search, which narrows a group to whoever wrote a word."""
    error = None
    sentiment = sentiment if sentiment in ("positive", "neutral", "negative") else None
    try:
        quotes = data.quotes_view(session, settings, _redactor(request).redact, audience="employee",
                                  start=data._day(since) if since else None,
                                  end=data._day(until + timedelta(days=1)) if until else None,
                                  filters=filters, sentiment=sentiment, limit=EMPLOYEE_COMMENTS)
    except ValueError as exc:  # the API's own refusal (two filters), shown
        quotes, error = {"quotes": []}, str(exc)
    params = {"audience": "employee", **filters, "sentiment": sentiment, "since": since, "until": until}
    return render(request, "feedback.html", visitor, audience="employee", comments_only=True, quotes=quotes,
                  error=error, params=params, searched=searched)


ItemId = Annotated[int, PathParam(ge=1, le=DB_INT_MAX)]
DONE_MESSAGES = {"corrected": "{title} corrected: every page and API answer uses your label now.",
                 "withdrawn": "{title} correction withdrawn: the model's label is used again."}


def _item_page(request: Request, session: Any, settings: Any, visitor: Visitor, item_id: int, *,
               status_code: int = 200, error: tuple[str, str] | None = None, done: str | None = None,
               kind: str | None = None) -> Response:
    item = repository.get_item(session, item_id)
    if item is None or not visitor.principal.can_read(item.audience):
        raise HTTPException(status_code=404, detail=f"no feedback item with id {item_id}")
    topic = session.get(Topic, item.tag.topic_id) if item.tag and item.tag.topic_id else None
    controls = web_corrections.item_controls(session, settings, item, item.tag)
    message = None
    if done in DONE_MESSAGES and kind in [c.kind for c in controls]:
        message = DONE_MESSAGES[done].format(title=web_corrections.kind_title(kind))
    return render(request, "item.html", visitor, status_code=status_code, item=item, tag=item.tag, topic=topic,
                  restricted=_raw_items_hidden(visitor, item.audience),
                  audience=item.audience, controls=controls, control_kinds=[c.kind for c in controls],
                  error_kind=error[0] if error else None,
                  error=error[1] if error else None, message=message, focus_kind=kind)


@router.get("/feedback/{item_id}")
def feedback_item_page(request: Request, session: SessionDep, settings: SettingsDep, visitor: VisitorDep,
                       item_id: ItemId, done: Annotated[str | None, Query(max_length=20)] = None,
                       kind: Annotated[str | None, Query(max_length=100)] = None) -> Response:
    return _item_page(request, session, settings, visitor, item_id, done=done, kind=kind)


# ---------------------------------------------------------------------------------------------
# Corrections: the item page's controls and the label queue (api.web.corrections)


@router.post("/feedback/{item_id}/corrections")
def correct_item_form(
    request: Request, session: SessionDep, settings: SettingsDep, visitor: VisitorDep, item_id: ItemId,
    kind: Annotated[str, Form(max_length=100)],
    csrf_token: Annotated[str | None, Form()] = None,
    label: Annotated[str | None, Form(max_length=200)] = None,
    labels: Annotated[list[Annotated[str, StringConstraints(max_length=50)]] | None, Form(max_length=50)] = None,
    next: Annotated[str | None, Form(max_length=2000)] = None,  # noqa: A002
) -> Response:
    """Record a correction with the API's own code (`add_corrections`: same checks, same
    scopes); refused ones re-render the item page with the reason, nothing stored."""
    check_csrf(visitor.csrf_token, csrf_token)
    multi = correction_service.is_multi(kind, settings, session)
    wanted = correction_service.CorrectionRequest(
        kind=kind, item_id=item_id, label=None if multi else (label or ""),
        labels=tuple(labels or ()) if multi else None)
    try:
        correction_service.add_corrections(session, [wanted], by=visitor.name, settings=settings,
                                           can_read=visitor.principal.can_read)
    except correction_service.CorrectionError as exc:
        session.rollback()
        if exc.status == 404:  # an item of an audience the visitor cannot read looks absent, as in the API
            raise HTTPException(status_code=404, detail=str(exc)) from None
        return _item_page(request, session, settings, visitor, item_id, status_code=exc.status,
                          error=(kind, str(exc)))
    if next:
        return _redirect(_safe_next(next))
    return _redirect(f"/feedback/{item_id}?{_query(done='corrected', kind=kind)}"
                     f"#correct-{web_corrections.anchor(kind)}")


@router.post("/corrections/{correction_id}/withdraw")
def withdraw_correction_form(
    session: SessionDep, visitor: VisitorDep, correction_id: ItemId,
    csrf_token: Annotated[str | None, Form()] = None,
    next: Annotated[str | None, Form(max_length=2000)] = None,  # noqa: A002
) -> Response:
    """Withdraw a correction (`withdraw_correction`, as DELETE /v1/corrections/{id}): the row
    stays as the audit, analytics serve the model's label again."""
    check_csrf(visitor.csrf_token, csrf_token)
    try:
        row = correction_service.withdraw_correction(session, correction_id, by=visitor.name,
                                                     can_read=visitor.principal.can_read)
    except correction_service.CorrectionError as exc:
        raise HTTPException(status_code=exc.status, detail=str(exc)) from None
    if next:
        return _redirect(_safe_next(next))
    return _redirect(f"/feedback/{row.item_id}?{_query(done='withdrawn', kind=row.kind)}"
                     f"#correct-{web_corrections.anchor(row.kind)}")


@router.get("/corrections")
def label_queue_page(request: Request, session: SessionDep, settings: SettingsDep, visitor: VisitorDep,
                     audience: str | None = None, kind: str = "sentiment", limit: int = 20,
                     done: Annotated[int | None, Query(ge=1, le=DB_INT_MAX)] = None,
                     withdrawn: Annotated[int | None, Query(ge=1, le=DB_INT_MAX)] = None) -> Response:
    """What to label next (GET /v1/corrections/suggestions' choice) with one-click forms, and
    the newest corrections with their withdraw buttons."""
    audience = _audience(visitor, audience)
    heads = correction_service.custom_heads(settings, session)
    kinds = web_corrections.queue_kinds(heads)
    kind = kind if kind in kinds else "sentiment"
    limit = limit if limit in web_corrections.QUEUE_SIZES else 20
    view = web_corrections.queue_view(session, settings, audience=audience, kind=kind, limit=limit, heads=heads)
    here = f"/corrections?{_query(audience=audience, kind=kind, limit=limit)}"
    return render(request, "corrections.html", visitor, audience=audience, kind=kind, limit=limit, view=view,
                  restricted=_raw_items_hidden(visitor, audience),
                  here=here, done=done, withdrawn=withdrawn, kinds=kinds, sizes=web_corrections.QUEUE_SIZES,
                  kind_titles={k: web_corrections.kind_title(k) for k in kinds})


# ---------------------------------------------------------------------------------------------
# Digests


@router.get("/digests")
def digests_page(request: Request, session: SessionDep, visitor: VisitorDep, audience: str | None = None) -> Response:
    audience = _audience(visitor, audience)
    rows = [digest_summary(d) for d in digests_repo.list_digests(session, audience=audience, limit=520)]
    return render(request, "digests.html", visitor, audience=audience, digests=rows)


Week = Annotated[str, PathParam(pattern=r"^\d{4}-W\d{2}$")]


def _digest(session: Any, visitor: Visitor, week: str, audience: str | None) -> Any:
    audience = _audience(visitor, audience)
    digest = digests_repo.get_digest(session, audience=audience, week=week)
    if digest is None:
        raise HTTPException(status_code=404, detail=f"no {audience} digest for {week}")
    return digest


@router.get("/digests/{week}")
def digest_page(request: Request, session: SessionDep, visitor: VisitorDep, week: Week,
                audience: str | None = None) -> Response:
    digest = _digest(session, visitor, week, audience)
    return render(request, "digest.html", visitor, audience=digest.audience, digest=digest, payload=digest.payload)


def _attachment(digest: Any, extension: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="voc-digest-{digest.audience}-{digest.week}.{extension}"'}


@router.get("/digests/{week}/digest.html")
def digest_html(session: SessionDep, visitor: VisitorDep, week: Week, audience: str | None = None,
                download: bool = False) -> Response:
    """The digest as sent: self-contained HTML under the digest's own CSP (no script at all);
    `download=1` saves it as a file."""
    digest = _digest(session, visitor, week, audience)
    headers = {**DIGEST_HTML_HEADERS, **(_attachment(digest, "html") if download else {})}
    return HTMLResponse(digest.html, headers=headers)


@router.get("/digests/{week}/digest.md")
def digest_markdown(session: SessionDep, visitor: VisitorDep, week: Week, audience: str | None = None,
                    view: bool = False) -> Response:
    """The digest's Markdown as a file; `view=1` shows it in the browser as plain text."""
    digest = _digest(session, visitor, week, audience)
    if view:
        return PlainTextResponse(digest.markdown, media_type="text/plain; charset=utf-8")
    return PlainTextResponse(digest.markdown, media_type="text/markdown; charset=utf-8",
                             headers=_attachment(digest, "md"))


# ---------------------------------------------------------------------------------------------
# Sources and health (admin)


@router.get("/sources")
def sources_page(request: Request, session: SessionDep, visitor: VisitorDep, message: str | None = None) -> Response:
    _require_admin(visitor)
    sources = sources_repo.list_sources(session)
    runs = sources_repo.last_runs(session, [s.id for s in sources])
    counts = {s.id: sources_repo.count_items(session, s.id) for s in sources}
    letters = session.scalars(select(DeadLetter).where(DeadLetter.resolved_at.is_(None))
                              .order_by(DeadLetter.id.desc()).limit(100)).all()
    names = {s.id: s.name for s in sources}
    return render(request, "sources.html", visitor, sources=sources, runs=runs, counts=counts, letters=letters,
                  names=names, health=health_status(session), message=message, audience=None)


@router.post("/sources/dead-letters/retry")
def retry_dead_letters_form(request: Request, session: SessionDep, settings: SettingsDep, visitor: VisitorDep,
                            csrf_token: Annotated[str | None, Form()] = None,
                            letter: Annotated[int | None, Form(ge=1, le=DB_INT_MAX)] = None) -> Response:
    check_csrf(visitor.csrf_token, csrf_token)
    _require_admin(visitor)
    from feedback.sources.service import retry_dead_letters

    session.commit()  # the retry has its own transaction
    outcome = retry_dead_letters(request.app.state.engine, settings=settings, ids=[letter] if letter else None)
    text = f"Retried: {len(outcome.resolved)} stored, {len(outcome.failed)} still failing."
    return _redirect(f"/sources?{_query(message=text)}")
