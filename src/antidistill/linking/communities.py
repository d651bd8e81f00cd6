"""Weighted account graph → communities (networkx Louvain, seeded) → clusters with evidence.

Only pairs whose summed evidence reaches ``MIN_EDGE_WEIGHT`` enter the graph, so one weak hint
(two accounts on one mobile carrier's /24) never links anyone on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx
import numpy as np
import pyarrow as pa

from antidistill.linking.edges import KINDS

MIN_EDGE_WEIGHT = 0.5
SEED = 0


@dataclass
class Clustering:
    """Account → cluster assignment plus the graph it came from."""

    cluster_of: dict[str, str]
    members: dict[str, list[str]]
    graph: nx.Graph
    #: per cluster: evidence kind -> weighted share of the cluster's internal edge weight
    evidence: dict[str, dict[str, float]] = field(default_factory=dict)
    #: per account: its edge weight inside its cluster / (1 + its total edge weight)
    membership: dict[str, float] = field(default_factory=dict)


def detect_communities(edges: pa.Table, *, min_weight: float = MIN_EDGE_WEIGHT,
                       resolution: float = 1.0, seed: int = SEED) -> Clustering:
    """Louvain communities of the evidence graph; singletons get no cluster."""
    g = nx.Graph()
    if edges.num_rows:
        w = edges.column("weight").to_numpy()
        keep = np.nonzero(w >= min_weight)[0]
        a = edges.column("a").to_numpy(zero_copy_only=False)[keep]
        b = edges.column("b").to_numpy(zero_copy_only=False)[keep]
        kinds = {k: edges.column(k).to_numpy()[keep] for k in KINDS}
        for i in range(len(keep)):
            g.add_edge(a[i], b[i], weight=float(w[keep[i]]),
                       **{k: float(kinds[k][i]) for k in KINDS})
    comms = nx.community.louvain_communities(g, weight="weight", resolution=resolution,
                                             seed=seed) if g.number_of_edges() else []
    comms = sorted((sorted(c) for c in comms if len(c) >= 2), key=lambda c: (-len(c), c[0]))
    cluster_of: dict[str, str] = {}
    members: dict[str, list[str]] = {}
    for i, c in enumerate(comms):
        cid = f"K{i + 1:04d}"
        members[cid] = c
        for acc in c:
            cluster_of[acc] = cid
    evidence: dict[str, dict[str, float]] = {}
    for cid, accs in members.items():
        sub = g.subgraph(accs)
        totals = dict.fromkeys(KINDS, 0.0)
        n_edges = max(sub.number_of_edges(), 1)
        for _, _, data in sub.edges(data=True):
            for k in KINDS:
                totals[k] += data.get(k, 0.0)
        evidence[cid] = {k: round(v / n_edges, 4) for k, v in totals.items() if v > 0}
    membership: dict[str, float] = {}
    for acc, cid in cluster_of.items():
        inside = sum(d["weight"] for n, d in g[acc].items() if cluster_of.get(n) == cid)
        total = sum(d["weight"] for d in g[acc].values())
        membership[acc] = inside / (1.0 + total) if total else 0.0
    return Clustering(cluster_of, members, g, evidence, membership)
