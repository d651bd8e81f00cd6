"""Small hand-written inline SVG plots (no plotting dependency; the report stays one file)."""

from __future__ import annotations

from html import escape

import networkx as nx

PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
           "#ff9da7", "#9c755f", "#bab0ac")
KIND_COLOURS = {
    "payment": "#e15759", "ip": "#f28e2b", "subnet": "#edc948", "asn": "#bab0ac",
    "client": "#9c755f", "template": "#4e79a7", "family": "#76b7b2", "split": "#b07aa1",
    "sync": "#59a14f", "volume": "#8cd17d", "creation": "#ff9da7",
}


def bars(series: dict[str, dict[str, float]], *, width: int = 640, height: int = 180,
         title: str = "") -> str:
    """Grouped daily bars: ``series`` is name -> {day: value}."""
    days = sorted({d for s in series.values() for d in s})
    if not days:
        return "<p class='muted'>no data</p>"
    top = max((v for s in series.values() for v in s.values()), default=1.0) or 1.0
    pad_l, pad_b, pad_t = 48, 28, 18
    plot_w, plot_h = width - pad_l - 8, height - pad_b - pad_t
    group_w = plot_w / len(days)
    names = list(series)
    bar_w = max(group_w * 0.8 / max(len(names), 1), 1.0)
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
             f"role='img' aria-label='{escape(title)}'>",
             f"<text x='{pad_l}' y='12' font-size='11'>{escape(title)}</text>",
             f"<line x1='{pad_l}' y1='{pad_t + plot_h}' x2='{width - 8}' y2='{pad_t + plot_h}' "
             "stroke='#888'/>",
             f"<text x='4' y='{pad_t + 10}' font-size='10'>{top:,.0f}</text>"]
    for i, day in enumerate(days):
        x0 = pad_l + i * group_w + group_w * 0.1
        for j, name in enumerate(names):
            v = series[name].get(day, 0.0)
            h = plot_h * v / top
            parts.append(
                f"<rect x='{x0 + j * bar_w:.1f}' y='{pad_t + plot_h - h:.1f}' width='{bar_w:.1f}' "
                f"height='{h:.1f}' fill='{PALETTE[j % len(PALETTE)]}'><title>{escape(name)} "
                f"{escape(day)}: {v:,.0f}</title></rect>")
        parts.append(f"<text x='{x0:.1f}' y='{height - 10}' font-size='10'>{escape(day[5:])}"
                     "</text>")
    parts.append("</svg>")
    legend = " ".join(f"<span class='key' style='background:{PALETTE[j % len(PALETTE)]}'>"
                      f"</span>{escape(n)}" for j, n in enumerate(names))
    return "".join(parts) + f"<div class='legend'>{legend}</div>"


def stacked(mix: dict[str, float], *, width: int = 320, height: int = 18) -> str:
    """One horizontal stacked bar of shares (capability mix)."""
    total = sum(mix.values()) or 1.0
    x = 0.0
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}'>"]
    for j, (name, v) in enumerate(mix.items()):
        w = width * v / total
        parts.append(f"<rect x='{x:.1f}' y='0' width='{w:.1f}' height='{height}' "
                     f"fill='{PALETTE[j % len(PALETTE)]}'><title>{escape(name)}: "
                     f"{100 * v / total:.0f}%</title></rect>")
        x += w
    parts.append("</svg>")
    return "".join(parts)


def account_graph(graph: nx.Graph, members: list[str], flagged: set[str], *,
                  size: int = 300, max_nodes: int = 120, seed: int = 0) -> str:
    """The cluster's account graph: red = flagged, grey = not; edge colour = strongest evidence."""
    nodes = members[:max_nodes]
    sub = graph.subgraph(nodes)
    if sub.number_of_nodes() == 0:
        return "<p class='muted'>no graph</p>"
    pos = nx.spring_layout(sub, seed=seed, weight="weight")
    m = 14

    def xy(n: str) -> tuple[float, float]:
        px, py = pos[n]
        return m + (px + 1) / 2 * (size - 2 * m), m + (py + 1) / 2 * (size - 2 * m)

    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{size}' height='{size}' "
             "class='graph'>"]
    for a, b, d in sub.edges(data=True):
        kind = max(KIND_COLOURS, key=lambda k: d.get(k, 0.0))
        (x1, y1), (x2, y2) = xy(a), xy(b)
        parts.append(f"<line x1='{x1:.1f}' y1='{y1:.1f}' x2='{x2:.1f}' y2='{y2:.1f}' "
                     f"stroke='{KIND_COLOURS[kind]}' stroke-opacity='0.5' "
                     f"stroke-width='{0.5 + min(d.get('weight', 0.5), 3):.1f}'/>")
    for n in sub.nodes:
        x, y = xy(n)
        colour = "#d62728" if n in flagged else "#9e9e9e"
        parts.append(f"<circle cx='{x:.1f}' cy='{y:.1f}' r='4' fill='{colour}'>"
                     f"<title>{escape(n)}</title></circle>")
    parts.append("</svg>")
    note = "" if len(members) <= max_nodes else (
        f"<div class='muted'>first {max_nodes} of {len(members)} accounts shown</div>")
    return "".join(parts) + note


def edge_legend() -> str:
    return " ".join(f"<span class='key' style='background:{c}'></span>{k}"
                    for k, c in KIND_COLOURS.items())
