"""Ingestion: readers (files), field mapping, and the batch ingest service."""

from feedback.ingest.mapping import FieldMapping, RowError
from feedback.ingest.readers import IngestError, RawRecord, read_records
from feedback.ingest.service import Ingestor, IngestStats

__all__ = ["FieldMapping", "IngestError", "IngestStats", "Ingestor", "RawRecord", "RowError", "read_records"]
