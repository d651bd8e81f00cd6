"""report.html is one self-contained page with plots and evidence."""

from __future__ import annotations

import re
from html import escape
from pathlib import Path

import pyarrow.parquet as pq

from antidistill.report.svg import account_graph, bars, stacked
from test_detect_world import detected, trained  # noqa: F401


def test_report_is_self_contained(detected: Path) -> None:  # noqa: F811
    html = (detected / "report.html").read_text()
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=['\"]https?:", html)
    assert html.count("<svg") >= 3  # timeline, capability mix, account graph
    assert "C001" in html and "AML.T0024.002" in html
    top = pq.read_table(detected / "accounts.parquet").slice(0, 1).to_pylist()[0]
    assert top["reasons"] and all(escape(r) in html for r in top["reasons"])  # evidence


def test_svg_helpers_escape_and_handle_empty() -> None:
    import networkx as nx

    assert "no data" in bars({})
    svg = bars({"<x>": {"2026-11-01": 3.0}})
    assert "&lt;x&gt;" in svg and "<x>" not in svg
    assert stacked({"a": 0.5, "b": 0.5}).count("<rect") == 2
    g = nx.Graph()
    g.add_edge("a", "b", weight=1.0, payment=1.0)
    out = account_graph(g, ["a", "b"], {"a"})
    assert out.count("<circle") == 2 and "#d62728" in out
