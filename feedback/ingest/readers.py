"""Readers turn a file into raw records: one per row, each with where it came from.

A reader never drops a row: a row it cannot read becomes a `RawRecord` with an `error`, which
the ingest service sends to the dead-letter table. Problems with the whole file (empty, no
header) raise `IngestError` with the fix.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SUPPORTED_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".txt": "csv", ".json": "json", ".jsonl": "jsonl",
                      ".ndjson": "jsonl", ".xlsx": "xlsx"}

csv.field_size_limit(10_000_000)


class IngestError(ValueError):
    """A problem with a whole input (file or batch) that stops it, with the fix in the message."""


@dataclass(slots=True)
class RawRecord:
    """One input row as read: its payload, or the reason it could not be read."""

    location: str
    payload: dict[str, Any] | None
    raw: str
    error: str | None = None


def detect_format(path: Path, fmt: str | None = None) -> str:
    """The reader for `path`: `fmt` if given, else by suffix."""
    if fmt:
        if fmt not in {"csv", "tsv", "json", "jsonl", "xlsx"}:
            raise IngestError(f"unknown format {fmt!r}; use one of csv, tsv, json, jsonl, xlsx")
        return fmt
    found = SUPPORTED_SUFFIXES.get(path.suffix.lower())
    if found is None:
        raise IngestError(
            f"{path.name}: cannot tell the format from the suffix {path.suffix!r}; "
            f"rename it to .csv/.tsv/.json/.jsonl/.xlsx or pass --format"
        )
    return found


@dataclass(frozen=True, slots=True)
class Decoded:
    """A file's text, the encoding it was read in, and whether bytes that encoding cannot read
    were kept (as lone surrogates, so that their rows go to the dead letters).

    NUL characters are dropped from the text: no export means one (they come from a damaged or
    binary file), and no text column can hold one (PostgreSQL refuses the whole batch; the API
    answers a NUL in a request 422 for the same reason)."""

    text: str
    encoding: str
    invalid: bool = False

    def __post_init__(self) -> None:
        if "\x00" in self.text:
            object.__setattr__(self, "text", self.text.replace("\x00", ""))


def decode_bytes(name: str, data: bytes, encoding: str | None = None) -> Decoded:
    """Decode a file: `encoding` if given, UTF-16 by its BOM, UTF-8, else the detected encoding.

    A file that is not UTF-8 at all (Excel's "CSV" is Windows-1252 on Western systems) is read
    in the encoding charset-normalizer finds. A UTF-8 file with a few bad bytes (it holds valid
    multi-byte characters too) stays UTF-8: its bad rows are dead-lettered, the rest ingest.
    """
    if encoding:
        try:
            return Decoded(data.decode(encoding), encoding)
        except (LookupError, UnicodeDecodeError) as exc:
            raise IngestError(f"{name}: cannot decode as {encoding}: {exc}") from exc
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return Decoded(data.decode("utf-16"), "utf-16")  # Google Play exports are UTF-16 with a BOM
    try:
        return Decoded(data.decode("utf-8-sig"), "utf-8")
    except UnicodeDecodeError:
        lenient = data.decode("utf-8-sig", errors="surrogateescape")
    if not any(ord(char) > 0x7F and not 0xDC80 <= ord(char) <= 0xDCFF for char in lenient):
        detected = _detect_encoding(data)
        if detected is not None:
            return Decoded(data.decode(detected), detected)
    return Decoded(lenient, "utf-8", invalid=True)


def _detect_encoding(data: bytes) -> str | None:
    from charset_normalizer import from_bytes  # only for files that are not UTF-8

    matches = from_bytes(data)
    best = matches.best()
    if best is None:
        return None
    # Short Western text often reads equally well in several code pages (French in cp1250 and
    # cp1252 alike, though 'à' is 'ŕ' in cp1250): among equals, Excel's Western Windows one wins.
    tied = [m for m in matches if (m.chaos, m.coherence) == (best.chaos, best.coherence)]
    encoding = "cp1252" if any("cp1252" in m.could_be_from_charset for m in tied) else best.encoding
    try:
        data.decode(encoding)
    except (LookupError, UnicodeDecodeError):
        return None
    return encoding


def has_surrogates(value: str) -> bool:
    """Whether `value` holds a lone surrogate (text no UTF-8 file or database can hold)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _printable(value: str) -> str:
    return value.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")


def read_records(path: Path, *, fmt: str | None = None, encoding: str | None = None,
                 delimiter: str | None = None, header_rows: int = 1,
                 on_decoded: Callable[[str], None] | None = None) -> Iterator[RawRecord]:
    """Read `path` into raw records, lazily where the format allows; `on_decoded` is told the
    encoding a text file was read in."""
    path = Path(path)
    if not path.is_file():
        raise IngestError(f"{path}: no such file")
    kind = detect_format(path, fmt)
    if kind == "xlsx":
        yield from _read_xlsx(path)
        return
    data = path.read_bytes()
    if not data.strip():
        raise IngestError(
            f"{path.name}: the file is empty (no header, no rows); export it again with a header "
            f"row naming the columns, e.g. external_id,text,created_at"
        )
    decoded = decode_bytes(path.name, data, encoding)
    if on_decoded is not None:
        on_decoded(decoded.encoding)
    text, invalid = decoded.text, decoded.invalid
    if kind in ("csv", "tsv"):
        yield from _read_delimited(path, text, invalid, delimiter or ("\t" if kind == "tsv" else None),
                                   header_rows)
    elif kind == "jsonl":
        yield from _read_jsonl(path, text)
    else:
        yield from _read_json(path, text)


def _read_delimited(path: Path, text: str, invalid: bool, delimiter: str | None,
                    header_rows: int) -> Iterator[RawRecord]:
    if delimiter is None:
        sample = text[:20_000]
        try:
            delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise IngestError(f"{path.name}: the file has no header row") from None
    header = [h.strip() for h in header]
    if not any(header):
        raise IngestError(f"{path.name}: the header row is blank; the first line must name the columns")
    for _ in range(header_rows - 1):
        next(reader, None)
    width = len(header)
    for row in reader:
        line = reader.line_num
        location = f"{path.name}:line {line}"
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # a blank line is not a record
        raw = _join_row(row, delimiter)
        if invalid and has_surrogates(raw):
            yield RawRecord(location, None, _printable(raw),
                            f"{location}: invalid UTF-8 bytes; re-export the file as UTF-8 or pass "
                            f"--encoding (e.g. cp1252)")
            continue
        if len(row) < width:
            yield RawRecord(location, None, raw,
                            f"{location}: {len(row)} fields where the header has {width}; the row "
                            f"looks truncated (check quoting and line breaks inside fields)")
            continue
        if len(row) > width and any(cell.strip() for cell in row[width:]):
            yield RawRecord(location, None, raw,
                            f"{location}: {len(row)} fields where the header has {width}; an "
                            f"unquoted delimiter inside a field? Quote fields that contain "
                            f"{delimiter!r}")
            continue
        yield RawRecord(location, dict(zip(header, row, strict=False)), raw)


def _join_row(row: list[str], delimiter: str) -> str:
    """The row as one delimited line that `csv.reader` reads back into the same cells (a dead
    letter keeps it, and `voc deadletters retry` parses it again): plain join unless a cell
    holds the delimiter, a quote or a line break, then CSV quoting."""
    if not any(delimiter in cell or '"' in cell or "\n" in cell or "\r" in cell for cell in row):
        return delimiter.join(row)
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="").writerow(row)
    return out.getvalue()


def _read_jsonl(path: Path, text: str) -> Iterator[RawRecord]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        location = f"{path.name}:line {number}"
        if has_surrogates(line):
            yield RawRecord(location, None, _printable(line),
                            f"{location}: invalid UTF-8 bytes; re-export the file as UTF-8")
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield RawRecord(location, None, line,
                            f"{location}: not valid JSON ({exc.msg} at column {exc.colno}); "
                            f"the line may be truncated")
            continue
        if not isinstance(obj, dict):
            yield RawRecord(location, None, line, f"{location}: expected a JSON object per line")
            continue
        yield RawRecord(location, obj, line)


def _read_json(path: Path, text: str) -> Iterator[RawRecord]:
    if has_surrogates(text):
        raise IngestError(f"{path.name}: invalid UTF-8 bytes in a JSON document; re-export it as UTF-8")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise IngestError(
            f"{path.name}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); "
            f"the file may be truncated. For one object per line, name it .jsonl"
        ) from exc
    if isinstance(doc, dict):
        for key in ("items", "data", "results", "feedback", "reviews", "records"):
            if isinstance(doc.get(key), list):
                doc = doc[key]
                break
        else:
            doc = [doc]
    if not isinstance(doc, list):
        raise IngestError(f"{path.name}: expected a JSON array of objects or {{'items': [...]}}")
    for index, obj in enumerate(doc):
        location = f"{path.name}:item {index}"
        raw = json.dumps(obj, ensure_ascii=False)
        if not isinstance(obj, dict):
            yield RawRecord(location, None, raw, f"{location}: expected an object, got {type(obj).__name__}")
            continue
        yield RawRecord(location, obj, raw)


def _read_xlsx(path: Path) -> Iterator[RawRecord]:
    from openpyxl import load_workbook  # only for .xlsx files

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a broken file
        raise IngestError(f"{path.name}: not a readable .xlsx workbook ({exc})") from exc
    sheet = workbook.worksheets[0]
    rows = sheet.iter_rows(values_only=True)
    header_row = next(rows, None)
    if header_row is None or not any(header_row):
        raise IngestError(f"{path.name}: the first sheet is empty; put a header row in row 1")
    header = [str(h).strip() if h is not None else "" for h in header_row]
    for number, row in enumerate(rows, start=2):
        if row is None or not any(cell not in (None, "") for cell in row):
            continue
        payload = {h: row[i] if i < len(row) else None for i, h in enumerate(header) if h}
        yield RawRecord(f"{path.name}:row {number}", payload,
                        json.dumps(payload, default=str, ensure_ascii=False))
    workbook.close()
