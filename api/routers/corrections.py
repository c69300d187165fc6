"""Corrections: analysts fix an item's tags; analytics serve the fix, `voc adapt` learns from it.

Scopes: cx corrects customer items, hr employee items, admin all; an item of an audience the key
cannot read looks absent (404), as on GET /v1/feedback/{id}. Bad input changes nothing.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy import select

from api.auth import Principal, PrincipalDep
from api.deps import SessionDep, SettingsDep
from api.params import IdCursor, RowId
from classifiers.custom import CUSTOM_KIND
from feedback.apikeys import AUDIENCE_SCOPE
from feedback.corrections import service
from feedback.corrections.schemas import (
    KIND_PATTERN,
    BatchCorrectionIn,
    CorrectionBatchIn,
    CorrectionIn,
    CorrectionOut,
    CorrectionsOut,
    ModelsOut,
    ModelVersionOut,
    SuggestionOut,
    SuggestionsOut,
)
from feedback.corrections.suggestions import suggestions as suggest
from feedback.corrections.versions import describe_versions
from feedback.models import Correction, FeedbackItem

router = APIRouter(tags=["corrections"])
SUGGESTED_KINDS = rf"^(sentiment|touchpoint|{CUSTOM_KIND})$"


def out(row: Correction, audience: str, multi_custom: frozenset[str] = frozenset()) -> CorrectionOut:
    """A correction as answered; `labels` (the set) for multi-label kinds, among them the
    custom categories named in `multi_custom`."""
    multi = row.kind in service.MULTI_LABEL or row.kind in multi_custom
    return CorrectionOut(id=row.id, item_id=row.item_id, audience=audience, kind=row.kind, label=row.label,
                         labels=[label for label in row.label.split("|") if label] if multi else None,
                         model_label=row.model_label, held_out=row.held_out, created_by=row.created_by,
                         created_at=row.created_at, withdrawn_at=row.withdrawn_at, withdrawn_by=row.withdrawn_by)


def _http(exc: service.CorrectionError) -> Exception:
    """The answer to a refused correction; a 422 in FastAPI's declared shape (a list of errors)."""
    if exc.status == 422:
        return RequestValidationError([{"type": "value_error", "loc": ("body",), "msg": str(exc), "input": None}])
    return HTTPException(status_code=exc.status, detail=str(exc))


def _request(body: CorrectionIn | BatchCorrectionIn, item_id: int | None = None) -> service.CorrectionRequest:
    return service.CorrectionRequest(
        kind=body.kind, label=body.label, labels=tuple(body.labels) if body.labels is not None else None,
        item_id=item_id if item_id is not None else getattr(body, "item_id", None),
        source=getattr(body, "source", None), external_id=getattr(body, "external_id", None))


def _check_scope(principal: Principal) -> None:
    if not any(principal.can_read(a) for a in AUDIENCE_SCOPE):
        has = ", ".join(sorted(principal.scopes)) or "none"
        raise HTTPException(status_code=403, detail="corrections need a key with scope cx (customer items), "
                            f"hr (employee items) or admin (this key has: {has})")


def _store(session: SessionDep, settings: SettingsDep, principal: Principal,
           requests: list[service.CorrectionRequest]) -> list[CorrectionOut]:
    _check_scope(principal)
    try:
        rows = service.add_corrections(session, requests, by=principal.name, settings=settings,
                                       can_read=principal.can_read)
    except service.CorrectionError as exc:
        raise _http(exc) from None
    audiences = dict(session.execute(select(FeedbackItem.id, FeedbackItem.audience)
                                     .where(FeedbackItem.id.in_([r.item_id for r in rows]))).all())
    multi = _multi_custom(session, settings)
    return [out(row, audiences[row.item_id], multi) for row in rows]


def _multi_custom(session: SessionDep, settings: SettingsDep) -> frozenset[str]:
    """The kinds (custom:NAME) of the configured multi-label custom categories."""
    return frozenset(service.CUSTOM_PREFIX + name for name, meta in service.custom_heads(settings, session).items()
                     if meta.get("multi_label"))


@router.post("/v1/feedback/{item_id}/corrections", response_model=CorrectionOut, status_code=201)
def correct_item(item_id: RowId, body: CorrectionIn, session: SessionDep, settings: SettingsDep,
                 principal: PrincipalDep) -> CorrectionOut:
    """Correct one kind of this item's tags (sentiment, emotion, need, touchpoint or topic). Stored
    beside the model's tag, served by analytics at once; a different active correction of the same
    kind is withdrawn (kept, as the audit). 409 for the same correction twice."""
    return _store(session, settings, principal, [_request(body, item_id)])[0]


@router.post("/v1/corrections", response_model=CorrectionsOut, status_code=201)
def correct_batch(body: CorrectionBatchIn, session: SessionDep, settings: SettingsDep,
                  principal: PrincipalDep) -> CorrectionsOut:
    """Up to 1,000 corrections at once, each naming its item by `item_id` or by `source` and
    `external_id`; all are stored or none (the error names the first bad one by its index)."""
    return CorrectionsOut(corrections=_store(session, settings, principal, [_request(c) for c in body.corrections]))


@router.get("/v1/corrections", response_model=CorrectionsOut)
def list_corrections(
    session: SessionDep, principal: PrincipalDep, settings: SettingsDep,
    item_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    kind: Annotated[str | None, Query(pattern=KIND_PATTERN, description="sentiment, emotion, need, touchpoint, "
                                      "topic or custom:NAME")] = None,
    include_withdrawn: bool = False,
    cursor: IdCursor = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> CorrectionsOut:
    """Corrections of the items this key can read, oldest first (withdrawn ones with
    include_withdrawn=true), a page at a time."""
    _check_scope(principal)
    audiences = [a for a in AUDIENCE_SCOPE if principal.can_read(a)]
    rows = service.list_corrections(session, audiences=audiences, item_id=item_id, kind=kind,
                                    include_withdrawn=include_withdrawn, after_id=cursor or 0, limit=limit)
    multi = _multi_custom(session, settings)
    return CorrectionsOut(corrections=[out(row, audience, multi) for row, audience in rows],
                          next_cursor=rows[-1][0].id if len(rows) == limit else None)


@router.get("/v1/corrections/suggestions", response_model=SuggestionsOut)
def get_suggestions(
    request: Request, session: SessionDep, settings: SettingsDep, principal: PrincipalDep,
    kind: Annotated[str, Query(pattern=SUGGESTED_KINDS, description="sentiment, touchpoint or custom:NAME")]
    = "sentiment",
    audience: Literal["customer", "employee"] | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> SuggestionsOut:
    """The items whose correction would teach the model most: uncertain for the live model
    (from the probabilities stored with their tags) and unlike each other and the items already
    corrected (their stored embeddings), among the newest 5,000 tagged items without one."""
    _check_scope(principal)
    audiences = [a for a in AUDIENCE_SCOPE if principal.can_read(a) and (audience is None or a == audience)]
    if not audiences:
        raise HTTPException(status_code=404, detail=f"this key cannot read {audience} feedback")
    # touchpoints: the live prototypes say how torn an item is between two touchpoints (the
    # tagger loads on the first such request)
    head = None
    if kind.startswith(service.CUSTOM_PREFIX):
        try:
            head = service.custom_head_of(kind, settings, session)
        except service.UnknownCustomKind as exc:
            raise HTTPException(status_code=404, detail=f"no custom category {kind!r}; custom categories: "
                                f"{exc.categories}") from None
    touchpoints = request.app.state.tagger_provider().touchpoints if kind == "touchpoint" else None
    rows = suggest(session, kind=kind, audiences=audiences, limit=limit, touchpoints=touchpoints, custom_head=head)
    method = ("uncertainty (margin of the stored probabilities) x distance to the nearest item already picked "
              "or corrected (stored embeddings), greedily" if kind != "touchpoint" else
              "uncertainty (gap between the two best touchpoints of the live prototypes), one pick per cluster "
              "of an uncertainty-weighted k-means of the stored embeddings")
    return SuggestionsOut(kind=kind, suggestions=[SuggestionOut(**row) for row in rows], method=method)


@router.get("/v1/models", response_model=ModelsOut)
def get_models(session: SessionDep, principal: PrincipalDep) -> ModelsOut:
    """Tagger versions: the shipped one and those adapted from corrections (live, candidates,
    rejected with their scores on the held-back corrections), and every promotion and rollback."""
    _check_scope(principal)
    described = describe_versions(session)
    return ModelsOut(live=described["live"], promotions=described["promotions"],
                     versions=[ModelVersionOut(**{k: v for k, v in row.items() if k in ModelVersionOut.model_fields})
                               for row in described["versions"]])


@router.delete("/v1/corrections/{correction_id}", response_model=CorrectionOut)
def withdraw(correction_id: RowId, session: SessionDep, settings: SettingsDep,
             principal: PrincipalDep) -> CorrectionOut:
    """Withdraw a correction: analytics serve the model's label again; the row stays, with who
    withdrew it and when. 409 if it was already withdrawn."""
    _check_scope(principal)
    try:
        row = service.withdraw_correction(session, correction_id, by=principal.name, can_read=principal.can_read)
    except service.CorrectionError as exc:
        raise _http(exc) from None
    audience = session.get(FeedbackItem, row.item_id).audience  # type: ignore[union-attr]
    return out(row, audience, _multi_custom(session, settings))
