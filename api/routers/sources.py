"""Admin API for sources: declare, list, change, delete, pull now, and see runs (scope admin).

Sources declared in the config file are listed too, but changed only in the file: the file is
applied again at every start, so an API edit to them would be silently undone.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, HTTPException, Query, Request, Response
from pydantic import ValidationError
from sqlalchemy import delete
from sqlalchemy.orm import Session

from api.deps import SessionDep, SettingsDep
from feedback.models import FeedbackItem, Source
from feedback.sources import repository
from feedback.sources.config import SourceConfig
from feedback.sources.connectors import CONNECTORS
from feedback.sources.schemas import PullOut, RunOut, SourceOut, SourcePatch
from feedback.sources.service import pull_source, save_source, source_config, sync_declared_sources

# Scope admin: api.main adds `require_scopes("admin")` to this router.
router = APIRouter(prefix="/v1/sources", tags=["sources"])


def _out(session: Session, source: Source, *, with_counts: bool = True) -> SourceOut:
    config = dict(source.config or {})
    run = repository.last_runs(session, [source.id]).get(source.id)
    out = SourceOut(
        name=source.name,
        connector=source.connector,
        audience=source.audience,
        schedule=source.schedule,
        enabled=source.enabled,
        origin=config.get("origin", "api"),
        cursor=source.cursor,
        items=repository.count_items(session, source.id) if with_counts else None,
        last_run=RunOut.model_validate(run) if run else None,
    )
    try:
        declared = source_config(source)
    except (ValueError, ValidationError) as exc:
        out.error = str(exc)
        return out
    out.channel = declared.channel
    out.options = declared.options
    out.mapping = declared.mapping.model_dump(exclude_defaults=True)
    out.credentials_env = declared.credentials_env
    return out


def _get(session: Session, name: str) -> Source:
    source = repository.get_source(session, name)
    if source is None:
        raise HTTPException(status_code=404, detail=f"no source named {name!r}")
    return source


def _editable(source: Source) -> None:
    if (source.config or {}).get("origin") == "config":
        raise HTTPException(
            status_code=409,
            detail=f"source {source.name!r} is declared in the config file; "
            f"change it there (the file is applied at every start)",
        )


@router.get("", response_model=list[SourceOut])
def list_sources(session: SessionDep, settings: SettingsDep) -> list[SourceOut]:
    """Every source with its last run."""
    sync_declared_sources(session, settings)
    return [_out(session, s) for s in repository.list_sources(session)]


@router.post("", response_model=SourceOut, status_code=201)
def create_source(body: SourceConfig, session: SessionDep, settings: SettingsDep) -> SourceOut:
    """Declare a source; credentials are given as environment-variable names (credentials_env)."""
    sync_declared_sources(session, settings)
    if repository.get_source(session, body.name) is not None:
        raise HTTPException(
            status_code=409,
            detail=f"a source named {body.name!r} exists; PATCH it, or choose another name",
        )
    return _out(session, save_source(session, body, origin="api"))


@router.get("/{name}", response_model=SourceOut)
def get_source(name: str, session: SessionDep, settings: SettingsDep) -> SourceOut:
    sync_declared_sources(session, settings)
    return _out(session, _get(session, name))


@router.patch("/{name}", response_model=SourceOut)
def update_source(name: str, patch: SourcePatch, session: SessionDep) -> SourceOut:
    """Change a source declared through the API; `reset_cursor` makes the next pull start over."""
    source = _get(session, name)
    _editable(source)
    current = source_config(source).model_dump(mode="json")
    changes = patch.model_dump(mode="json", exclude_unset=True, exclude={"reset_cursor"})
    try:
        updated = SourceConfig.model_validate({**current, **changes})
    except ValidationError as exc:
        raise HTTPException(
            status_code=422, detail=exc.errors(include_url=False, include_context=False)
        ) from None
    save_source(session, updated, origin="api")
    if patch.reset_cursor:
        source.cursor = None
    session.flush()
    return _out(session, source)


@router.delete("/{name}", status_code=204)
def delete_source(
    name: str,
    session: SessionDep,
    purge_items: Annotated[bool, Query(description="Also delete the source's items")] = False,
) -> Response:
    """Delete a source; one that has items needs purge_items=true (or disable it instead)."""
    source = _get(session, name)
    _editable(source)
    count = repository.count_items(session, source.id)
    if count and not purge_items:
        raise HTTPException(
            status_code=409,
            detail=f"source {name!r} has {count} items; disable it with PATCH "
            f'{{"enabled": false}}, or delete with ?purge_items=true '
            f"to remove its items too",
        )
    session.execute(delete(FeedbackItem).where(FeedbackItem.source_id == source.id))
    session.execute(delete(Source).where(Source.id == source.id))  # runs cascade in the database
    return Response(status_code=204)


@router.post(
    "/{name}/pull", response_model=PullOut, responses={202: {"description": "pull started"}}
)
def pull_now(
    name: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    background: BackgroundTasks,
    response: Response,
    wait: Annotated[bool, Query(description="Answer when the pull is done")] = False,
) -> Any:
    """Pull the source now; with wait=false (default) it runs after the answer (202)."""
    source = _get(session, name)
    connector = CONNECTORS.get(source.connector)
    if connector is None or not connector.pulls:  # refused now, not failed after a 202
        how = connector.description if connector else "its connector is unknown"
        raise HTTPException(status_code=400, detail=f"source {name!r} ({source.connector}) is not pulled: "
                                                    f"its items arrive through the API ({how})")
    session.commit()  # release the request's transaction: the pull has its own
    engine = request.app.state.engine
    if not wait:
        background.add_task(pull_source, engine, source.name, settings=settings)
        response.status_code = 202
        return PullOut(source=name, status="started")
    return PullOut(**pull_source(engine, source.name, settings=settings).as_dict())


@router.get("/{name}/runs", response_model=list[RunOut])
def list_runs(
    name: str, session: SessionDep, limit: Annotated[int, Query(ge=1, le=500)] = 20
) -> list[RunOut]:
    """The source's newest runs first: start, end, items new / updated / unchanged / dead, error."""
    source = _get(session, name)
    return [RunOut.model_validate(r) for r in repository.list_runs(session, source.id, limit=limit)]
