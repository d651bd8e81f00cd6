"""What the detection-quality benchmarks share: their command line and the results file each
extends (one entry per world and scoring model, keyed by the model file's digest)."""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def parser(doc: str | None, results: Path) -> argparse.ArgumentParser:
    """``--world`` (repeatable), ``--model`` and ``--out`` (default ``results``)."""
    ap = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    ap.add_argument("--world", type=Path, action="append", required=True)
    ap.add_argument("--model", type=Path, default=None, help="scoring model (default: shipped)")
    ap.add_argument("--out", type=Path, default=results)
    return ap


def model_digest(model: Path | None) -> str:
    """The first 12 hex digits of the scoring model file's SHA-256 (default: the shipped one)."""
    from antidistill.scoring.model import MODEL_FILE

    path = model or ROOT / "src" / "antidistill" / "data" / "models" / MODEL_FILE
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def previous_results(path: Path) -> dict[str, Any]:
    """The results file's entries so far (empty when there is none yet)."""
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def write_results(path: Path, results: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
