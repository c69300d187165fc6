"""`file`: CSV, TSV, JSON, JSONL and Excel (.xlsx) from a path or a watched folder."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import Field

from feedback.ingest.readers import RawRecord, detect_format, read_records
from feedback.sources.connectors.filesource import FileOptions, FileSourceConnector


class FileConnectorOptions(FileOptions):
    format: Literal["csv", "tsv", "json", "jsonl", "xlsx"] | None = Field(
        default=None, description="Default: from the file suffix"
    )
    header_rows: int = Field(
        default=1, ge=1, le=10, description="Rows before the data; the first names columns"
    )


class FileConnector(FileSourceConnector):
    """Any tabular or JSON file whose columns map to item fields (see `mapping`)."""

    kind = "file"
    description = "CSV, TSV, JSON, JSONL or .xlsx from a path or a watched folder"
    Options = FileConnectorOptions

    def records(self, path: Path) -> Iterator[RawRecord]:
        delimited = detect_format(path, self.options.format) in ("csv", "tsv")
        for record in read_records(
            path,
            fmt=self.options.format,
            encoding=self.options.encoding,
            header_rows=self.options.header_rows,
            on_decoded=lambda encoding: self.encodings.__setitem__(path.name, encoding),
        ):
            if delimited and record.payload is not None:
                # Keep the row with its column names so `voc deadletters retry` can re-map it.
                record.raw = json.dumps(record.payload, default=str, ensure_ascii=False)
            yield record
