"""antidistill: detect, act on, trace and share LLM distillation attacks."""

from __future__ import annotations

from antidistill.schema import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "__version__"]
__version__ = "0.1.0"
