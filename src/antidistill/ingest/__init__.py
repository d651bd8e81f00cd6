"""Ingestion: provider logs in many shapes -> one normalised schema-v1 Parquet dataset.

Public API: :func:`ingest` (with its :class:`IngestReport`), :func:`read_exchanges` (stream an
already-normalised log as record batches), :func:`load_mapping`. Formats and every defined
behaviour are documented in ``docs/formats.md``.
"""

from __future__ import annotations

from antidistill.ingest.mapping import Mapping, load_mapping
from antidistill.ingest.pipeline import IngestReport, SourceReport, ingest, print_report
from antidistill.ingest.read import dataset_files, read_exchanges
from antidistill.ingest.readers import FORMATS, detect_format

__all__ = [
    "FORMATS",
    "IngestReport",
    "Mapping",
    "SourceReport",
    "dataset_files",
    "detect_format",
    "ingest",
    "load_mapping",
    "print_report",
    "read_exchanges",
]
