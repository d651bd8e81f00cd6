"""Which flagged accounts are one operation: split clusters, re-join on corroborated evidence.

Two different operators can share one *kind* of link: the same public prompt scaffold or CoT
elicitation wrapper (content), the same proxy provider or cloud ASN (network). What they do not
share is several independent kinds at once — payment instruments, client fingerprints, network
egress, private templates, timing — while one operator's accounts, even its quiet ones, share
several of them, because one team with one budget, one toolchain and one proxy pool runs them.

So campaign resolution is "over-split, then join on corroboration":

1. the flagged members of each campaign cluster are re-partitioned (Louvain on the cluster's own
   strong edges); parts stay together unless the evidence between them is content alone, so two
   operations that community detection fused over shared scaffolds fall apart;
2. units (these parts, and flagged accounts in no cluster) are joined when the evidence crossing
   between them — summed per *channel*, divided by the smaller unit's size — reaches
   ``JOIN_THRESHOLD`` in total AND at least ``MIN_CHANNELS`` channels each carry
   ``MIN_CHANNEL_SHARE`` of it (a shared hosting ASN never counts as one). One channel alone,
   however dense, never joins two units;
3. a flagged account still alone joins the campaign whose private scaffolds (templates nobody
   outside it ever sent) it uses, when it also has identity evidence into that campaign — or,
   without it, when it uses ``PRIVATE_TEMPLATES_ALONE`` or more of them and (almost) no other
   campaign's: a set of scaffolds only one operation ever sent is that operation's signature.

Only flagged accounts get a campaign: an unflagged account in a flagged cluster is not part of
the operation as detected (it stays in the cluster, with the cluster's campaign id on the cluster).
"""

from __future__ import annotations

from collections.abc import Iterable

import networkx as nx
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.cluster.hierarchy import DisjointSet

from antidistill.linking.communities import MIN_EDGE_WEIGHT, SEED

#: independent evidence channels: kinds inside one channel restate each other
CHANNELS: dict[str, tuple[str, ...]] = {
    "billing": ("payment",),
    "network": ("ip", "subnet"),
    "client": ("client",),
    "content": ("template", "family", "split"),
    "timing": ("sync", "creation"),
    #: a small hosting/proxy ASN: two operators renting from one provider share it, so it adds
    #: to the total but never corroborates on its own
    "provider": ("asn",),
}
#: channels that say "the same people" rather than "the same method or supplier"
IDENTITY = ("billing", "network", "client", "timing")
_IDENTITY_COLS = [list(CHANNELS).index(c) for c in IDENTITY]
_CORROBORATING_COLS = [i for i, c in enumerate(CHANNELS) if c != "provider"]
#: cross-unit evidence (summed edge weight / smaller unit size) needed to join two units: on
#: average every account of the smaller unit carries one full link into the other
JOIN_THRESHOLD = 1.0
#: independent channels that must each carry part of that evidence
MIN_CHANNELS = 2
#: a channel counts when it carries at least this much of the per-account cross evidence
MIN_CHANNEL_SHARE = 0.05
#: a lone account needs this many of one campaign's private templates to count as content
#: evidence for it, and this many for full (1.0) strength
MIN_PRIVATE_TEMPLATES = 2
PRIVATE_TEMPLATES_FULL = 3
#: ... and this many, when they are at least ``OWNER_SHARE`` of the private templates it uses
#: that have an owner, join it to that campaign on content alone: a hydra's quiet accounts at
#: scale often share no payment, egress or timing with the rest, only the operator's scaffolds
PRIVATE_TEMPLATES_ALONE = 5
OWNER_SHARE = 0.8
#: a cluster is a campaign cluster when flagged accounts carry this share of its members
CLUSTER_FLAG_SHARE = 0.5


def _channel_weights(edges: pa.Table) -> dict[str, np.ndarray]:
    """Per edge and channel: evidence weight (template/family counted once, as in the total)."""
    n = edges.num_rows
    names = set(edges.schema.names)

    def col(kind: str) -> np.ndarray:
        if kind not in names:
            return np.zeros(n)
        return np.asarray(edges.column(kind).to_numpy(zero_copy_only=False), dtype=np.float64)

    out: dict[str, np.ndarray] = {}
    for channel, kinds in CHANNELS.items():
        if channel == "content":
            out[channel] = np.maximum(col("template"), col("family")) + col("split")
        else:
            out[channel] = sum((col(k) for k in kinds), np.zeros(n))
    return out


def _index(column: pa.ChunkedArray | pa.Array, names: list[str]) -> np.ndarray:
    """Position of each value of ``column`` in ``names`` (-1: absent), in Arrow: the
    16M-exchange world has millions of edges and usage rows, too many for Python lists."""
    pos = pc.index_in(column, value_set=pa.array(names, pa.string()))
    return np.asarray(pc.fill_null(pos, -1).to_numpy(zero_copy_only=False), dtype=np.int64)


def split_cluster(n_accounts: int, x: np.ndarray, y: np.ndarray,
                  w: np.ndarray) -> list[list[int]]:
    """Louvain parts of one cluster's strong-edge graph (local ids; isolated accounts alone)."""
    g = nx.Graph()
    g.add_nodes_from(range(n_accounts))
    g.add_weighted_edges_from(zip(x.tolist(), y.tolist(), w.tolist(), strict=True))
    if g.number_of_edges() == 0:
        return [[i] for i in range(n_accounts)]
    return [sorted(p) for p in nx.community.louvain_communities(g, weight="weight", seed=SEED)]


def resolve(flagged: Iterable[str], members: dict[str, list[str]], edges: pa.Table,
            usage: pa.Table | None = None) -> tuple[list[list[str]], dict[str, str]]:
    """Groups of flagged accounts (one per campaign) and each campaign cluster's group key.

    Returns ``(groups, cluster_group)``: ``groups`` sorted by size (largest first), each a sorted
    account list; ``cluster_group`` maps a campaign cluster to the index of the group holding
    most of its flagged members. ``usage`` (account_id, template_hash pairs for the
    templates only flagged accounts used, see ``campaigns.build.template_usage``) lets a lone
    flagged account join the campaign whose private scaffolds it uses
    (:func:`_attach_by_private_templates`).
    """
    names = sorted(set(flagged))
    ids = {x: i for i, x in enumerate(names)}
    # edges among flagged accounts, as integer ids
    if edges.num_rows:
        ea, eb = _index(edges.column("a"), names), _index(edges.column("b"), names)
        keep = (ea >= 0) & (eb >= 0)
        ea, eb, edges = ea[keep], eb[keep], edges.filter(pa.array(keep))
        w = np.asarray(edges.column("weight").to_numpy(zero_copy_only=False), dtype=np.float64)
        channels = _channel_weights(edges)
        stacked = np.stack([channels[c] for c in CHANNELS], axis=1)
        del channels
    else:
        ea = eb = np.zeros(0, np.int64)
        w = np.zeros(0)
        stacked = np.zeros((0, len(CHANNELS)))
    cluster = np.full(len(names), -1, dtype=np.int64)
    campaign_clusters: dict[str, list[int]] = {}
    for cid, accs in members.items():
        hit = [ids[x] for x in accs if x in ids]
        if not accs or len(hit) / len(accs) < CLUSTER_FLAG_SHARE:
            continue
        cluster[hit] = len(campaign_clusters)
        campaign_clusters[cid] = hit
    # 1. re-partition each campaign cluster; keep parts together unless content alone bridges
    unit = np.full(len(names), -1, dtype=np.int64)
    n_units = 0
    inside = (cluster[ea] >= 0) & (cluster[ea] == cluster[eb]) if len(ea) else np.zeros(0, bool)
    order = np.argsort(cluster[ea[inside]], kind="stable") if len(ea) else np.zeros(0, np.int64)
    in_rows = np.nonzero(inside)[0][order]
    bounds = np.searchsorted(cluster[ea[in_rows]], np.arange(len(campaign_clusters) + 1))
    for k, hit in enumerate(campaign_clusters.values()):
        rows = in_rows[bounds[k]:bounds[k + 1]]
        local = {g: i for i, g in enumerate(hit)}
        lx = np.array([local[int(v)] for v in ea[rows]], dtype=np.int64)
        ly = np.array([local[int(v)] for v in eb[rows]], dtype=np.int64)
        strong = w[rows] >= MIN_EDGE_WEIGHT
        parts = split_cluster(len(hit), lx[strong], ly[strong], w[rows][strong])
        if len(parts) > 1:
            parts = _rejoin_parts(parts, lx, ly, stacked[rows])
        hit_arr = np.asarray(hit, dtype=np.int64)
        for part in parts:
            unit[hit_arr[part]] = n_units
            n_units += 1
    loose = np.nonzero(unit < 0)[0]
    unit[loose] = np.arange(n_units, n_units + len(loose))
    n_units += len(loose)
    # 2. join units on corroborated evidence (several independent channels)
    sizes = np.bincount(unit, minlength=n_units)
    ds = DisjointSet(range(n_units))
    for (ux, uy), per_channel in _cross(unit[ea], unit[eb], stacked).items():
        if joins(per_channel / min(sizes[ux], sizes[uy])):
            ds.merge(ux, uy)
    root = np.array([ds[u] for u in range(n_units)], dtype=np.int64)
    group = root[unit] if n_units else unit
    if usage is not None and usage.num_rows and n_units:
        group = _attach_by_private_templates(names, group, usage, ea, eb, stacked)
    by_group: dict[int, list[str]] = {}
    for i, g in enumerate(group.tolist()):
        by_group.setdefault(g, []).append(names[i])
    groups = sorted((sorted(v) for v in by_group.values()), key=lambda g: (-len(g), g[0]))
    group_of = {x: i for i, g in enumerate(groups) for x in g}
    cluster_group: dict[str, str] = {}
    for cid, hit in campaign_clusters.items():
        counts: dict[int, int] = {}
        for i in hit:
            g = group_of[names[i]]
            counts[g] = counts.get(g, 0) + 1
        cluster_group[cid] = str(max(counts, key=lambda g: (counts[g], -g)))
    return groups, cluster_group


def _cross(ux: np.ndarray, uy: np.ndarray,
           stacked: np.ndarray) -> dict[tuple[int, int], np.ndarray]:
    """(unit, unit) -> summed channel evidence of the edges between them."""
    cut = ux != uy
    if not cut.any():
        return {}
    lo, hi = np.minimum(ux[cut], uy[cut]), np.maximum(ux[cut], uy[cut])
    pairs, inverse = np.unique(np.stack([lo, hi], axis=1), axis=0, return_inverse=True)
    sums = np.zeros((len(pairs), stacked.shape[1]))
    np.add.at(sums, inverse.ravel(), stacked[cut])
    return {(int(p[0]), int(p[1])): sums[i] for i, p in enumerate(pairs)}


def _rejoin_parts(parts: list[list[int]], x: np.ndarray, y: np.ndarray,
                  stacked: np.ndarray) -> list[list[int]]:
    """Parts of one cluster stay together unless only content evidence bridges them.

    Community detection put them in one cluster, so their links are dense; what it cannot see
    is that a shared method (the same scaffolds or elicitation wrapper: content) is something
    two operators can both copy, while shared identity evidence (payment, egress, client,
    timing) is not. Parts bridged by content alone are two operations.
    """
    part = np.empty(sum(len(p) for p in parts), dtype=np.int64)
    for u, accs in enumerate(parts):
        part[accs] = u
    ds = DisjointSet(range(len(parts)))
    for (ux, uy), per_channel in _cross(part[x], part[y], stacked).items():
        identity = float(per_channel[_IDENTITY_COLS].sum())
        if identity / min(len(parts[ux]), len(parts[uy])) >= MIN_CHANNEL_SHARE:
            ds.merge(ux, uy)
    return [sorted(i for u in s for i in parts[u]) for s in ds.subsets()]


def _attach_by_private_templates(names: list[str], group: np.ndarray, usage: pa.Table,
                                 ea: np.ndarray, eb: np.ndarray,
                                 stacked: np.ndarray) -> np.ndarray:
    """A lone flagged account joins the campaign whose *private* scaffolds it uses.

    A template is private to a campaign when every account that ever used it is one of that
    campaign's accounts or a lone flagged account. Pair edges miss a quiet account that used
    each such scaffold only once or twice (template links need repeated use, to keep one
    shared popular prompt from linking strangers), but using several scaffolds nobody outside
    one operation has ever sent is content evidence; it still needs identity evidence into the
    same campaign (payment, egress, client, timing), as any join does.
    """
    idx = _index(usage.column("account_id"), names)
    tmpl = np.asarray(usage.column("template_hash").to_numpy(zero_copy_only=False))
    lone = np.bincount(group, minlength=int(group.max()) + 1)[group] == 1
    user_group = np.where(idx >= 0, group[np.maximum(idx, 0)], -1)
    user_lone = (idx >= 0) & lone[np.maximum(idx, 0)]
    # a template's owner: the one campaign all its non-lone users belong to (-1: none)
    t_codes, t_inv = np.unique(tmpl, return_inverse=True)
    t_inv = t_inv.ravel()
    big = np.iinfo(np.int64).max
    g_min = np.full(len(t_codes), big, dtype=np.int64)
    g_max = np.full(len(t_codes), -1, dtype=np.int64)
    member_rows = ~user_lone
    np.minimum.at(g_min, t_inv[member_rows], user_group[member_rows])
    np.maximum.at(g_max, t_inv[member_rows], user_group[member_rows])
    owner = np.where((g_min == g_max) & (g_min >= 0), g_min, -1)
    # each lone account's count of private templates per owning campaign
    rows = user_lone & (owner[t_inv] >= 0)
    if not rows.any():
        return group
    pairs, counts = np.unique(np.stack([idx[rows], owner[t_inv[rows]]], axis=1), axis=0,
                              return_counts=True)
    # identity evidence from each lone account into each campaign
    identity = stacked[:, _IDENTITY_COLS].sum(axis=1)
    link: dict[tuple[int, int], float] = {}
    for x, y in ((ea, eb), (eb, ea)):
        sel = lone[x] & (identity > 0)
        for i, g, v in zip(x[sel].tolist(), group[y[sel]].tolist(), identity[sel].tolist(),
                           strict=True):
            link[(i, g)] = link.get((i, g), 0.0) + v
    out = group.copy()
    best: dict[int, tuple[float, int]] = {}
    owned = np.bincount(pairs[:, 0], weights=counts, minlength=len(names))
    for (i, g), k in zip(pairs.tolist(), counts.tolist(), strict=True):
        content = min(1.0, k / PRIVATE_TEMPLATES_FULL)
        ident = link.get((i, g), 0.0)
        corroborated = (k >= MIN_PRIVATE_TEMPLATES and ident >= MIN_CHANNEL_SHARE
                        and content + ident >= JOIN_THRESHOLD)
        # many scaffolds private to one campaign and (almost) none of anybody else's
        signature = k >= PRIVATE_TEMPLATES_ALONE and k >= OWNER_SHARE * owned[i]
        if (corroborated or signature) and content + ident > best.get(i, (0.0, -1))[0]:
            best[i] = (content + ident, g)
    for i, (_, g) in best.items():
        out[i] = g
    return out


def joins(per_account: np.ndarray) -> bool:
    """The join rule on per-account cross evidence by channel (order of ``CHANNELS``)."""
    total = float(per_account.sum())
    corroborating = int((per_account[_CORROBORATING_COLS] >= MIN_CHANNEL_SHARE).sum())
    return total >= JOIN_THRESHOLD and corroborating >= MIN_CHANNELS
