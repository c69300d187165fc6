"""`google_play`: the Google Play Console reviews export (`reviews_<package>_<YYYYMM>.csv`).

Google writes these monthly files to the developer's Cloud Storage bucket, UTF-16 with a BOM,
and rewrites the current month's file as reviews come in or change; the pull re-reads a file
when it changed and updates reviews whose text or rating changed. Ratings without text are
skipped (an item is a piece of text). The review id comes from the `Review Link`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from feedback.ingest.readers import IngestError, RawRecord
from feedback.sources.connectors.base import json_record
from feedback.sources.connectors.filesource import FileOptions, FileSourceConnector

COLUMNS = (
    "Package Name",
    "App Version Code",
    "App Version Name",
    "Reviewer Language",
    "Device",
    "Review Submit Date and Time",
    "Review Submit Millis Since Epoch",
    "Review Last Update Date and Time",
    "Review Last Update Millis Since Epoch",
    "Star Rating",
    "Review Title",
    "Review Text",
    "Developer Reply Date and Time",
    "Developer Reply Millis Since Epoch",
    "Developer Reply Text",
    "Review Link",
)
REQUIRED = ("Package Name", "Review Submit Date and Time", "Star Rating", "Review Text")
KEYS = (
    "external_id",
    "text",
    "created_at",
    "stars",
    "language",
    "package",
    "app_version_code",
    "app_version_name",
    "device",
    "updated_at",
    "developer_reply",
)


class GooglePlayConnector(FileSourceConnector):
    """Google Play reviews from the Console's CSV export."""

    kind = "google_play"
    description = "Google Play Console reviews export CSV (UTF-16)"
    Options = FileOptions
    channel = "app_review"

    def records(self, path: Path) -> Iterator[RawRecord]:
        table = self.table(path, header_rows=1, delimiter=",")
        header = table.headers[0]
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise IngestError(
                f"{path.name}: columns {missing} missing (columns: {', '.join(header)}); this "
                f"does not look like a Google Play reviews export"
            )
        position = {c: i for i, c in enumerate(header)}
        for line, cells, error in table.rows():
            location = f"{path.name}:line {line}"
            if error is None and len(cells) < len(header):
                error = (f"{location}: {len(cells)} fields where the header has {len(header)}; "
                         f"the row looks truncated")
            row = {c: cells[i].strip() if i < len(cells) else "" for c, i in position.items()}
            if error is not None:
                yield RawRecord(location, None, json.dumps(row, ensure_ascii=False), error)
                continue
            title, body = row.get("Review Title", ""), row.get("Review Text", "")
            if not (title or body):
                continue  # a star rating without a review text
            text = f"{title}\n{body}" if title and body else title or body
            payload: dict[str, Any] = dict.fromkeys(KEYS)
            payload.update(
                external_id=_review_id(row),
                text=text,
                created_at=row.get("Review Submit Millis Since Epoch")
                or row["Review Submit Date and Time"],
                stars=row["Star Rating"] or None,
                language=row.get("Reviewer Language") or None,
                package=row["Package Name"] or None,
                app_version_code=row.get("App Version Code") or None,
                app_version_name=row.get("App Version Name") or None,
                device=row.get("Device") or None,
                updated_at=row.get("Review Last Update Date and Time") or None,
                developer_reply=row.get("Developer Reply Text") or None,
            )
            yield json_record(location, payload)


def _review_id(row: dict[str, str]) -> str:
    link = row.get("Review Link", "")
    if link:
        found = parse_qs(urlparse(link).query).get("reviewId")
        if found and found[0]:
            return found[0][:255]
    basis = "\x1f".join(
        (
            row.get("Package Name", ""),
            row.get("Review Submit Millis Since Epoch", ""),
            row.get("Review Submit Date and Time", ""),
            row.get("Review Text", ""),
        )
    )
    return "gp:" + hashlib.sha1(basis.encode("utf-8"), usedforsecurity=False).hexdigest()
