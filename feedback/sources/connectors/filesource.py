"""Sources that are files: one path re-read when it changes, or a watched folder whose files are
read once and archived.

The cursor says which file (by SHA-256) and how many records of it are stored, so a crash in the
middle of a file resumes at the next record, and a file that was stored but not yet archived
when the process died is archived without being read again.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from feedback.db import utcnow
from feedback.ingest.readers import Decoded, IngestError, RawRecord, decode_bytes, has_surrogates
from feedback.sources.connectors.base import Batch, Connector, ConnectorOptions

csv.field_size_limit(10_000_000)
DONE_KEPT = 1000  # digests of finished files remembered in the cursor
PARTIAL_SUFFIXES = (".part", ".tmp", ".crdownload", ".partial", ".filepart")


class FileOptions(ConnectorOptions):
    """Where the files are."""

    path: str = Field(description="A file, or a folder to watch")
    pattern: str = Field(
        default="*", description="Files to pick up in a watched folder, e.g. '*.csv'"
    )
    archive_dir: str | None = Field(default=None, description="Default: <folder>/archive")
    failed_dir: str | None = Field(default=None, description="Default: <folder>/failed")
    settle_seconds: float = Field(
        default=5.0, ge=0.0, description="Skip files modified more recently (still being written)"
    )
    encoding: str | None = Field(
        default=None, description="Default: UTF-8 (UTF-16 with a BOM is detected)"
    )

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(
                f"encoding {value!r} is not an encoding Python knows; write e.g. 'utf-8', "
                "'cp1252' (Excel on Western Windows), 'latin-1' or 'utf-16', or leave it out to "
                "detect it"
            ) from None
        return value


class FileSourceConnector(Connector):
    """Base of the file connectors: subclasses turn one file into records."""

    Options = FileOptions

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.encodings: dict[str, str] = {}  # file name -> the encoding it was read in

    def table(self, path: Path, *, header_rows: int, delimiter: str | None = None) -> Table:
        """`path` as a delimited export in the configured (or detected) encoding, noted."""
        table = Table(path, header_rows=header_rows, encoding=self.options.encoding, delimiter=delimiter)
        self.encodings[path.name] = table.encoding
        return table

    def records(self, path: Path) -> Iterator[RawRecord]:
        """Every record of `path`, in a stable order (the cursor counts them)."""
        raise NotImplementedError

    # -- pulling ----------------------------------------------------------------------------
    def pull(self, cursor: dict[str, Any] | None) -> Iterator[Batch]:
        root = Path(os.path.expanduser(self.options.path))
        if root.is_dir():
            yield from self._pull_folder(root, dict(cursor or {}))
        elif root.is_file():
            yield from self._pull_file(root, dict(cursor or {}))
        else:
            raise IngestError(
                f"{root}: no such file or folder; fix options.path of source "
                f"{self.ctx.source_name!r}"
            )

    def _pull_file(self, path: Path, cursor: dict[str, Any]) -> Iterator[Batch]:
        digest = file_digest(path)
        state = cursor.get("file") or {}
        same = state.get("sha256") == digest
        failed = state.get("error")
        if same and state.get("done") and not failed:
            return  # unchanged since it was stored
        offset = int(state.get("offset", 0)) if same and not failed else 0
        # Being read after a refusal (a crash mid-way keeps this): its dead letter is resolved
        # when the last batch is stored.
        was_refused = bool(failed or (same and state.get("was_refused")))

        def position(count: int, done: bool, error: str | None = None) -> dict[str, Any]:
            mark: dict[str, Any] = {
                "name": path.name,
                "sha256": digest,
                "offset": count,
                "done": done,
            }
            if error:
                mark["error"] = error
            elif was_refused and not done:
                mark["was_refused"] = True
            return {"file": mark}

        try:
            yield from self._stream(
                path, offset, position, after_last=None, resolves=[path.name] if was_refused else []
            )
        except IngestError as exc:
            # A refused file is not done: every pull reads it again (the mapping or the encoding
            # may have been fixed) and fails again until it is read; its dead letter is kept
            # once, not once per pull.
            reason = str(exc)
            yield Batch(
                [],
                position(0, False, reason),
                stream=path.name,
                dead=[]
                if same and failed == reason
                else [(RawRecord(path.name, None, file_head(path)), reason)],
            )
            raise

    def _pull_folder(self, root: Path, cursor: dict[str, Any]) -> Iterator[Batch]:
        archive = (
            Path(self.options.archive_dir).expanduser()
            if self.options.archive_dir
            else root / "archive"
        )
        failed_dir = (
            Path(self.options.failed_dir).expanduser()
            if self.options.failed_dir
            else root / "failed"
        )
        done: list[str] = list(cursor.get("done") or [])
        # Digests of refused files -> why: such a file is not done; put back, it is read again.
        failed: dict[str, str] = dict(cursor.get("failed") or {})
        current = cursor.get("current") or {}
        refused: list[str] = []
        for path in self._candidates(root):
            digest = file_digest(path)
            if digest in done:
                move_aside(path, archive)  # stored before a crash, not yet archived
                continue
            offset = int(current.get("offset", 0)) if current.get("sha256") == digest else 0
            finished = [*done, digest][-DONE_KEPT:]
            # A refused file stays in `failed` until its last batch is stored (a crash mid-way
            # keeps it there, so its dead letter is still resolved when it is read).
            still_failed = {d: r for d, r in failed.items() if d != digest}
            pending = dict(failed)

            def position(
                count: int,
                last: bool,
                error: str | None = None,
                _path: Path = path,
                _digest: str = digest,
                _finished: list[str] = finished,
                _before: tuple[str, ...] = tuple(done),
                _failed: dict[str, str] = still_failed,
                _pending: dict[str, str] = pending,
            ) -> dict[str, Any]:
                if last:
                    return {"current": None, "done": list(_finished), "failed": dict(_failed)}
                return {
                    "current": {"name": _path.name, "sha256": _digest, "offset": count},
                    "done": list(_before),
                    "failed": dict(_pending),
                }

            try:
                yield from self._stream(
                    path,
                    offset,
                    position,
                    after_last=_mover(path, archive),
                    resolves=[path.name] if digest in failed else [],
                )
            except IngestError as exc:
                reason = str(exc)
                known = failed.get(digest) == reason
                failed = dict(list({**still_failed, digest: reason}.items())[-DONE_KEPT:])
                yield Batch(
                    [],
                    {"current": None, "done": list(done), "failed": dict(failed)},
                    stream=path.name,
                    dead=[] if known else [(RawRecord(path.name, None, file_head(path)), reason)],
                    after_commit=_mover(path, failed_dir),
                )
                refused.append(reason if reason.startswith(path.name) else f"{path.name}: {reason}")
                current = {}
                continue
            done = finished
            failed = still_failed
            current = {}
        if refused:
            # The other files are read and archived; the run still fails, naming what it refused.
            raise IngestError(
                f"{len(refused)} file(s) refused and moved to {failed_dir}: "
                + "; ".join(refused)
                + f". Fix the source's mapping or options (or the file) and move the file back "
                f"into {root}: it is read again"
            )

    def _stream(
        self,
        path: Path,
        offset: int,
        position: Callable[..., dict[str, Any]],
        after_last: Callable[[], None] | None,
        resolves: list[str],
    ) -> Iterator[Batch]:
        size = self.ctx.batch_size
        batch: list[RawRecord] = []
        count = 0
        checked = False
        for record in self.records(path):
            count += 1
            if count <= offset:
                continue
            if not checked and record.payload is not None:
                # A missing text column is a whole-file problem: fail before storing any row.
                self.ctx.mapping.resolve(record.payload.keys(), where=path.name)
                checked = True
            batch.append(record)
            if len(batch) >= size:
                yield Batch(batch, position(count, False), stream=path.name)
                batch = []
        yield Batch(
            batch,
            position(count, True),
            stream=path.name,
            after_commit=after_last,
            resolves=resolves,
        )

    def _candidates(self, root: Path) -> list[Path]:
        settle = self.options.settle_seconds
        now = time.time()
        found = []
        for path in root.glob(self.options.pattern):
            if (
                not path.is_file()
                or path.name.startswith(".")
                or path.name.endswith(PARTIAL_SUFFIXES)
            ):
                continue
            mtime = path.stat().st_mtime
            if settle and now - mtime < settle:
                continue  # still being written
            found.append((mtime, path.name, path))
        return [p for _, _, p in sorted(found)]


def _mover(path: Path, folder: Path) -> Callable[[], None]:
    """An after-commit action: move `path` into `folder`."""

    def move() -> None:
        move_aside(path, folder)

    return move


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def move_aside(path: Path, folder: Path) -> Path | None:
    """Move a processed file into `folder` (never overwriting); None if it is already gone."""
    if not path.exists():
        return None
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    if target.exists():
        target = folder / f"{path.stem}.{utcnow():%Y%m%dT%H%M%S%f}{path.suffix}"
    shutil.move(str(path), str(target))
    return target


def file_head(path: Path, limit: int = 2000) -> str:
    try:
        return path.read_bytes()[:limit].decode("utf-8", errors="replace")
    except OSError:
        return ""


# -- delimited text with several header rows (survey exports) ----------------------------------
def decode_text(path: Path, encoding: str | None = None) -> Decoded:
    """The file's text (see `decode_bytes`: given, UTF-16 by BOM, UTF-8, else detected)."""
    data = path.read_bytes()
    if not data.strip():
        raise IngestError(f"{path.name}: the file is empty; export it again")
    return decode_bytes(path.name, data, encoding)


def printable(value: str) -> str:
    return value.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")


class Table:
    """A delimited export: its header rows, then (line number, cells) for each data row."""

    def __init__(
        self,
        path: Path,
        *,
        header_rows: int,
        encoding: str | None = None,
        delimiter: str | None = None,
    ) -> None:
        decoded = decode_text(path, encoding)
        text, self.invalid, self.encoding = decoded.text, decoded.invalid, decoded.encoding
        if delimiter is None:
            try:
                delimiter = csv.Sniffer().sniff(text[:20_000], delimiters=",;\t").delimiter
            except csv.Error:
                delimiter = ","
        self.path = path
        self.delimiter = delimiter
        self._text = text
        self._reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        self.headers: list[list[str]] = []
        for number in range(header_rows):
            row = next(self._reader, None)
            if row is None:
                raise IngestError(
                    f"{path.name}: expected {header_rows} header rows, found {number}; "
                    f"is this the right export format?"
                )
            self.headers.append([cell.strip() for cell in row])

    def column_values(self, index: int) -> Iterator[str]:
        """One column's cells, every data row (a first pass; `rows()` is unaffected)."""
        reader = csv.reader(io.StringIO(self._text, newline=""), delimiter=self.delimiter)
        for number, row in enumerate(reader):
            if number >= len(self.headers) and index < len(row):
                yield row[index]

    def rows(self) -> Iterator[tuple[int, list[str], str | None]]:
        """(line, cells, error): error says why a row cannot be read (bad bytes)."""
        for row in self._reader:
            line = self._reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if self.invalid and any(has_surrogates(cell) for cell in row):
                yield (
                    line,
                    [printable(cell) for cell in row],
                    (
                        f"{self.path.name}:line {line}: invalid UTF-8 bytes; re-export as UTF-8 "
                        "or set "
                        f"options.encoding (e.g. cp1252)"
                    ),
                )
                continue
            yield line, row, None

    def raw(self, cells: list[str]) -> str:
        return printable(self.delimiter.join(cells))
