"""`voc topics`: fit a topic version, list and show topics, rename, merge and pin them."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import Console

from feedback.config import get_settings
from feedback.db import get_engine, retry_locked, session_factory, session_scope

topics_app = typer.Typer(
    help="Topics: fit (refit) a version, list, show, rename, merge, pin.", no_args_is_help=True
)
console = Console(stderr=True)
out = Console()

AudienceOpt = Annotated[str, typer.Option(help="customer or employee")]
_encoders: dict[str, Any] = {}


def phrase_embedder_for(encoder_name: str) -> Callable[[list[str]], Any] | None:
    """The shared encoder for label phrases, if it is the one that embedded the items.

    Items embedded by a tuned encoder (a name with "+adapter") get labels from counts alone.
    """
    from classifiers.encoder import DEFAULT_ENCODER_NAME, Encoder

    if encoder_name != DEFAULT_ENCODER_NAME:
        return None
    if encoder_name not in _encoders:
        _encoders[encoder_name] = Encoder(None, max_length=32)
    encoder = _encoders[encoder_name]
    return lambda texts: encoder.encode(list(texts))[0]


def _check_audience(audience: str) -> None:
    if audience not in ("customer", "employee"):
        console.print(f"[red]error:[/red] audience must be customer or employee, not {audience!r}")
        raise typer.Exit(2)


@topics_app.command("fit")
def fit(
    audience: Annotated[
        list[str] | None, typer.Option(help="customer and/or employee (default: both)")
    ] = None,
    max_documents: Annotated[
        int | None, typer.Option(help="fit on the newest N items only")
    ] = None,
) -> None:
    """Fit a new topic version per audience on the stored embeddings, aligned to the last one."""
    from feedback.topics.service import refit

    settings = get_settings()
    engine = get_engine(settings.database_url)
    for name in audience or ["customer", "employee"]:
        _check_audience(name)
        def fit(name: str = name) -> Any:
            with session_scope(engine) as session:
                return refit(
                    session,
                    var_dir=settings.var_dir,
                    audience=name,
                    max_documents=max_documents,
                    phrase_embedder=phrase_embedder_for,
                )

        try:  # another writer (the tagging job, a push) may hold the lock: wait it out
            report = retry_locked(fit, what=f"topic refit ({name})")
        except ValueError as exc:
            console.print(f"[yellow]{name}:[/yellow] {exc}")
            continue
        out.print(
            f"{name}: version {report.version}: {report.n_topics} topics on "
            f"{report.n_documents} items, "
            f"{report.outlier_share:.1%} outliers; {report.kept} kept, {report.created} new, "
            f"{report.retired} retired ({report.seconds:.1f}s)"
        )


def _listing(audience: str, include_inactive: bool) -> dict[str, Any]:
    from feedback.topics.service import list_topics

    settings = get_settings()
    with session_factory(get_engine(settings.database_url))() as session:
        return list_topics(
            session, settings=settings, audience=audience, include_inactive=include_inactive
        )


@topics_app.command("list")
def list_(
    audience: AudienceOpt = "customer",
    all_: Annotated[bool, typer.Option("--all", help="also retired and merged topics")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List topics: id, label, size, share negative, emerging flag."""
    _check_audience(audience)
    listing = _listing(audience, all_)
    if as_json:
        out.print_json(json.dumps(listing, default=str))
        return
    if listing["version"] is None:
        out.print(f"no {audience} topic model yet: run `voc topics fit --audience {audience}`")
        return
    out.print(
        f"{audience} topics, version {listing['version']} ({listing['n_documents']} items fitted, "
        f"{(listing['outlier_share'] or 0):.1%} outliers)"
    )
    for t in listing["topics"]:
        size = "hidden" if t["suppressed"] else str(t["size"])
        negative = t["sentiment"]["share_negative"] if t.get("sentiment") else None
        flags = [t["status"]] if t["status"] != "active" else []
        if t["pinned"]:
            flags.append("pinned")
        if t.get("trend") and t["trend"].get("emerging"):
            flags.append(f"emerging ({t['trend']['reason']})")
        neg = f"{negative:.0%} neg" if negative is not None else ""
        out.print(f"{t['id']:>5}  {t['label'][:40]:<40} {size:>7}  {neg:>8}  {', '.join(flags)}")


@topics_app.command("show")
def show(topic_id: int, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """One topic: keywords, trend, quotes, edits."""
    from feedback.topics.service import topic_detail

    settings = get_settings()
    with session_factory(get_engine(settings.database_url))() as session:
        try:
            detail = topic_detail(session, settings=settings, topic_id=topic_id)
        except LookupError as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from None
    if as_json:
        out.print_json(json.dumps(detail, default=str))
        return
    out.print(
        f"#{detail['id']} {detail['label']} ({detail['audience']}, {detail['status']}"
        f"{', pinned' if detail['pinned'] else ''})"
    )
    out.print(f"keywords: {', '.join(detail['keywords'])}")
    if detail["suppressed"]:
        out.print("numbers hidden: too few people for the minimum group size")
        return
    out.print(f"size: {detail['size']}  sentiment: {detail['sentiment']}")
    trend = detail["trend"]
    out.print("trend: " + "  ".join(f"{p['label']}={p['n']}" for p in trend["periods"][-12:]))
    if trend.get("emerging"):
        out.print(f"emerging: {trend['reason']} (p={trend.get('p_value')})")
    for q in detail["quotes"]:
        out.print(f'  "{q["text"]}"')
    for edit in detail["history"]:
        out.print(f"  edit: {edit}")


def _edit(fn: Any, **kwargs: Any) -> Any:
    from feedback.topics.taxonomy import TopicEditError

    settings = get_settings()
    try:
        with session_scope(get_engine(settings.database_url)) as session:
            topic = fn(session, **kwargs)
            return topic.id, topic.label
    except (LookupError, TopicEditError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None


@topics_app.command("rename")
def rename(topic_id: int, label: str) -> None:
    """Give a topic a label of your own (kept across refits)."""
    from feedback.topics.taxonomy import rename as do_rename

    tid, new = _edit(do_rename, topic_id=topic_id, label=label)
    out.print(f"topic {tid} is now {new!r}")


@topics_app.command("merge")
def merge(topic_id: int, into: int) -> None:
    """Merge TOPIC_ID into INTO (same audience): items move now and after every refit."""
    from feedback.topics.taxonomy import merge as do_merge

    tid, label = _edit(do_merge, topic_id=topic_id, into_id=into)
    out.print(f"topic {topic_id} merged into {tid} ({label!r})")


@topics_app.command("pin")
def pin(
    topic_id: int, unpin: Annotated[bool, typer.Option("--unpin", help="unpin instead")] = False
) -> None:
    """Pin a topic's label so refits keep it (or --unpin)."""
    from feedback.topics.taxonomy import pin as do_pin

    tid, label = _edit(do_pin, topic_id=topic_id, pinned=not unpin)
    out.print(f"topic {tid} ({label!r}) {'unpinned' if unpin else 'pinned'}")
