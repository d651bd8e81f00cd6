"""Render the detection report from a :class:`~antidistill.detect.DetectResult`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import networkx as nx

from antidistill.report import svg

if TYPE_CHECKING:
    from antidistill.detect import DetectResult

TOP_CLUSTERS = 8
TOP_ACCOUNTS = 40


def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("antidistill", "report"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
    )


def write_report(out: Path, result: DetectResult, *, graph: nx.Graph | None = None) -> Path:
    """Write ``out/report.html`` and return its path."""
    graph = graph if graph is not None else nx.Graph()
    accounts = result.accounts
    flagged = {a for a, f in zip(accounts.column("account_id").to_pylist(),
                                 accounts.column("flagged").to_pylist(), strict=True) if f}
    clusters = result.clusters.to_pylist()
    top = [c for c in clusters if c["campaign_id"] is not None][:TOP_CLUSTERS] or \
        clusters[:min(3, len(clusters))]
    cluster_views: list[dict[str, Any]] = []
    for c in top:
        mix = dict(c["capability_mix"] or [])
        cluster_views.append({
            "id": c["cluster_id"], "campaign": c["campaign_id"], "n": c["n_accounts"],
            "exchanges": c["exchanges"], "risk": c["risk"],
            "evidence": c["evidence_text"] or [],
            "flagged": sum(1 for a in c["accounts"] if a in flagged),
            "graph": svg.account_graph(graph, list(c["accounts"]), flagged),
            "mix": svg.stacked(mix), "mix_text": ", ".join(
                f"{k} {100 * v:.0f}%" for k, v in list(mix.items())[:5]),
        })
    campaigns = []
    for camp in result.campaigns:
        campaigns.append(dict(camp, mix_svg=svg.stacked(camp["capability_mix"]),
                              n_clusters=len(camp["clusters"])))
    timeline = svg.bars({c["campaign_id"]: {d: float(v) for d, v in c["daily_volume"].items()}
                         for c in result.campaigns[:8]},
                        title="exchanges per day, by campaign") if result.campaigns else ""
    cols = ["account_id", "risk", "cluster_id", "campaign_id", "harvest_share", "n_exchanges",
            "reasons"]
    rows = accounts.select([c for c in cols if c in accounts.schema.names]).slice(
        0, TOP_ACCOUNTS).to_pylist()
    html = _env().get_template("template.html.j2").render(
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        result=result, n_flagged=result.n_flagged, campaigns=campaigns, clusters=cluster_views,
        timeline=timeline, accounts=rows, legend=svg.edge_legend(),
        evaluation=result.evaluation,
    )
    path = out / "report.html"
    path.write_text(html, encoding="utf-8")
    return path
