"""report.html: one self-contained page an analyst reads (jinja2 template + inline SVG)."""

from __future__ import annotations

from antidistill.report.render import write_report

__all__ = ["write_report"]
