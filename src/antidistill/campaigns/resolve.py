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
   however dense, never joins two units. Joined groups are tested again until nothing changes
   (the parts of a big hydra each hold a few links into the rest). Two more kinds of evidence
   count here, because linking's size caps and template specificity, right for the whole
   population, hide a large hydra's own infrastructure and scaffolds: payment instruments, IPs
   and clients that (almost) only flagged accounts use, however many (``infra``), and
   templates only flagged accounts ever sent (``usage``). Each is admitted only beside the
   other's kind: shared infrastructure and the same hours without a shared method is two
   customers of one proxy supplier, a shared method without shared infrastructure is a copied
   scaffold;
3. a flagged account still alone joins the campaign whose private scaffolds (templates nobody
   outside it ever sent) it uses, when it also has identity evidence into that campaign — or,
   without it, when it uses ``PRIVATE_TEMPLATES_ALONE`` or more of them and (almost) no other
   campaign's: a set of scaffolds only one operation ever sent is that operation's signature.

Only flagged accounts get a campaign: an unflagged account in a flagged cluster is not part of
the operation as detected (it stays in the cluster, with the cluster's campaign id on the cluster).

A log that lacks a column these rules lean on (:data:`CONTENT_FIRST_WITHOUT`: payment, IP or
client fingerprints, or the system prompts that make an operation's scaffolds specific) breaks
them: without identity columns every operation stays in fragments (nothing corroborates a shared
method), and without system prompts two operations' generic wrappers look private and join
through a shared proxy supplier. There step 1's units are the communities of the flagged
accounts' *private-scaffold co-use* graph (:func:`content_units`) instead: two accounts are
linked by the templates that both sent and that no unflagged account ever sent, each template
spreading one unit of weight over its users, scaled by its diversity (a prompt many accounts
sent word for word is an item two operations share, not a scaffold). Two operations that
harvest one public dataset share many such prompts, but each shares more with its own accounts,
so modularity keeps them apart.
Accounts that share no private template keep their cluster part; steps 2 and 3 follow (step 2
only when the log has some infrastructure column: otherwise timing is the only channel beside
the content the communities have weighed already). Full logs do not take this path: where the
log records infrastructure and system prompts, a shared method must be corroborated (two
operators may copy one scaffold nobody else sends, and the co-use graph would join them), and
content first gains little there (ARI on seeds 7 / 201 / 202: 0.997 / 0.994 / 0.761 -> 1.0 /
1.0 / 0.766; 16M: 0.999 -> 0.998).
"""

from __future__ import annotations

from collections.abc import Iterable

import networkx as nx
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from graspologic_native import leiden
from scipy import sparse
from scipy.cluster.hierarchy import DisjointSet
from scipy.sparse.csgraph import connected_components

from antidistill.fingerprint.hashing import combine
from antidistill.linking.communities import MIN_EDGE_WEIGHT, SEED

#: independent evidence channels: kinds inside one channel restate each other
CHANNELS: dict[str, tuple[str, ...]] = {
    "billing": ("payment",),
    "network": ("ip", "subnet"),
    "client": ("client",),
    "content": ("template", "family", "split"),
    "timing": ("sync", "volume", "creation"),
    #: a small hosting/proxy ASN: two operators renting from one provider share it, so it adds
    #: to the total but never corroborates on its own
    "provider": ("asn",),
}
#: channels that say "the same people" rather than "the same method or supplier"
IDENTITY = ("billing", "network", "client", "timing")
_IDENTITY_COLS = [list(CHANNELS).index(c) for c in IDENTITY]
_INFRA_CHANNELS = ("billing", "network", "client")
_INFRA_COLS = [list(CHANNELS).index(c) for c in _INFRA_CHANNELS]
_CONTENT_COL = list(CHANNELS).index("content")
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
#: log columns of the infrastructure channels: with none of them in the log, step 2 is skipped
INFRA_COLUMNS = ("payment_fp", "ip", "client_fp")
#: without any of these columns step 1's units are the communities of private-scaffold co-use
#: (:func:`content_units`): the infrastructure channels, or the system prompts that make an
#: operation's scaffolds specific (without them two operations' generic wrappers look private)
CONTENT_FIRST_WITHOUT = (*INFRA_COLUMNS, "system_prompt")
#: in :func:`content_units`, at most this many (directed) account pairs, or one ring neighbour
#: per template user if even that is more: beyond it the templates with the most users link each
#: user to fewer others (a sparsified clique, same weight per account), so a scaffold sent by
#: thousands of flagged accounts costs thousands of pairs, not millions
COUSE_PAIR_BUDGET = 2_000_000
#: independent Leiden runs in :func:`communities`, the partition of highest modularity kept: one
#: run can stop in a poorer optimum that joins two operations (seed 7 with only the four
#: required columns: ARI 0.58 with one run, 0.96 with 3, 5 or 10)
LEIDEN_TRIALS = 5


def _channel_weights(edges: pa.Table, rows: np.ndarray | None = None) -> np.ndarray:
    """(edges, channels) float32: evidence weight per edge and channel (template/family counted
    once, as in the total), for the edges at ``rows`` (default: all)."""
    names = set(edges.schema.names)
    n = edges.num_rows if rows is None else len(rows)

    def col(kind: str) -> np.ndarray:
        if kind not in names:
            return np.zeros(n)
        values = np.asarray(edges.column(kind).to_numpy(zero_copy_only=False), dtype=np.float64)
        return values if rows is None else values[rows]

    out = np.empty((n, len(CHANNELS)), dtype=np.float32)
    for c, (channel, kinds) in enumerate(CHANNELS.items()):
        if channel == "content":
            out[:, c] = np.maximum(col("template"), col("family")) + col("split")
        else:
            out[:, c] = sum((col(k) for k in kinds), np.zeros(n))
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
            usage: pa.Table | None = None,
            infra: pa.Table | None = None, *,
            absent: Iterable[str] = ()) -> tuple[list[list[str]], dict[str, str]]:
    """Groups of flagged accounts (one per campaign) and each campaign cluster's group key.

    Returns ``(groups, cluster_group)``: ``groups`` sorted by size (largest first), each a sorted
    account list; ``cluster_group`` maps a campaign cluster to the index of the group holding
    most of its flagged members. ``usage`` (account_id, template_hash pairs for the
    templates only flagged accounts used, see ``campaigns.build.template_usage``) and ``infra``
    (account_id, channel, key of private infrastructure, see
    ``campaigns.build.private_infrastructure``) add evidence between groups
    (:func:`_join_units`); ``usage`` also lets a lone flagged account join the campaign whose
    private scaffolds it uses (:func:`_attach_by_private_templates`). ``absent``: the log's
    columns that hold no value (``features.accounts.absent_columns``) or none for a large
    share of its accounts (an address blanked as a shared hop, ``features.hops``); without any of
    :data:`CONTENT_FIRST_WITHOUT` the first units come from :func:`content_units`, and without
    all of :data:`INFRA_COLUMNS` no units are joined (step 2).
    """
    names = sorted(set(flagged))
    ids = {x: i for i, x in enumerate(names)}
    if edges.num_rows:
        ea, eb = _index(edges.column("a"), names), _index(edges.column("b"), names)
        # edges among flagged accounts, by position (no copy of the edge table's strings)
        keep = np.flatnonzero((ea >= 0) & (eb >= 0))
        ea, eb = ea[keep], eb[keep]
        w = np.asarray(edges.column("weight").to_numpy(zero_copy_only=False),
                       dtype=np.float64)[keep]
        stacked = _channel_weights(edges, keep)
    else:
        ea = eb = np.zeros(0, np.int64)
        w = np.zeros(0)
        stacked = np.zeros((0, len(CHANNELS)), dtype=np.float32)
    cluster = np.full(len(names), -1, dtype=np.int64)
    campaign_clusters: dict[str, list[int]] = {}
    for cid, accs in members.items():
        hit = [ids[x] for x in accs if x in ids]
        if not accs or len(hit) / len(accs) < CLUSTER_FLAG_SHARE:
            continue
        cluster[hit] = len(campaign_clusters)
        campaign_clusters[cid] = hit
    # 1. units: each campaign cluster's parts; in a log without a column the corroboration
    # rules lean on, the communities of private-scaffold co-use first (accounts that share no
    # private template with another flagged account keep their part of a campaign cluster)
    unit = _cluster_units(len(names), campaign_clusters, cluster, ea, eb, w, stacked)
    if set(CONTENT_FIRST_WITHOUT) & set(absent) and usage is not None and usage.num_rows:
        unit = _content_first(content_units(names, usage), unit)
    n_units = int(unit.max()) + 1 if len(unit) else 0
    loose = np.nonzero(unit < 0)[0]
    unit[loose] = np.arange(n_units, n_units + len(loose))
    n_units += len(loose)
    # 2. join units on corroborated evidence (several independent channels); in a log without
    # infrastructure columns timing is the only channel beside content, which the communities
    # have weighed already: the units are final there
    records_infra = not set(INFRA_COLUMNS) <= set(absent)
    infra_uses, template_uses = _private_uses(names, infra, usage)
    group = (_join_units(unit, ea, eb, stacked, infra_uses, template_uses)
             if n_units and records_infra else unit)
    if usage is not None and usage.num_rows and n_units:
        # 3. lone accounts
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


def _cluster_units(n_accounts: int, campaign_clusters: dict[str, list[int]],
                   cluster: np.ndarray, ea: np.ndarray, eb: np.ndarray, w: np.ndarray,
                   stacked: np.ndarray) -> np.ndarray:
    """Step 1: each campaign cluster's Louvain parts, re-joined unless content alone bridges
    them (:func:`_rejoin_parts`); -1 for accounts in no campaign cluster."""
    unit = np.full(n_accounts, -1, dtype=np.int64)
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
    return unit


def _content_first(content: np.ndarray, clusters: np.ndarray) -> np.ndarray:
    """Units: content communities, then cluster parts for the accounts in none (-1: neither)."""
    offset = int(content.max(initial=-1)) + 1
    merged = np.where(content >= 0, content, np.where(clusters >= 0, clusters + offset, -1))
    labels, unit = np.unique(merged, return_inverse=True)
    return unit.ravel() - int(labels[0] < 0) if len(labels) else merged


def content_units(names: list[str], usage: pa.Table) -> np.ndarray:
    """Communities of flagged accounts that send the same private templates (-1: shares none).

    ``usage`` holds (account_id, template_hash[, diversity]) for templates no unflagged account
    sent. Each template used by ``n`` of ``names`` links its users with weight ``1 / (n - 1)``
    per pair: one unit per account in all, so a scaffold every account of a big hydra sends
    weighs no more than a prompt two accounts split. The unit is scaled by the template's
    ``diversity`` (distinct contents per user, see ``campaigns.build.template_usage``): one
    public item that hundreds of accounts of two operations sent word for word is not a
    scaffold either owns (the 4M-exchange world's four-column log: the agentic and the hydra
    campaign both sent HumanEval's 164 problems under the same stock instructions, and the
    communities fused them). Leiden on that graph (:func:`communities`). Should
    the cliques exceed :data:`COUSE_PAIR_BUDGET` pairs, each user of a big template links to its
    ``k`` next users along a hashed ring instead (``k`` the largest that fits; still one unit
    per account).
    """
    unit = np.full(len(names), -1, dtype=np.int64)
    idx = _index(usage.column("account_id"), names)
    tmpl = np.asarray(usage.column("template_hash").to_numpy(zero_copy_only=False))
    div = (np.asarray(usage.column("diversity").to_numpy(zero_copy_only=False), dtype=np.float64)
           if "diversity" in usage.column_names else np.ones(len(tmpl)))
    keep = idx >= 0
    idx, tmpl, div = idx[keep], tmpl[keep], div[keep]
    # users of each template in a hashed order (not by account name: no artificial locality)
    order = np.lexsort((combine(tmpl.astype(np.uint64), idx.astype(np.uint64)), tmpl))
    idx, tmpl, div = idx[order], tmpl[order], div[order]
    if not len(tmpl):
        return unit
    starts = np.flatnonzero(np.r_[True, tmpl[1:] != tmpl[:-1]])
    counts = np.diff(np.r_[starts, len(tmpl)])
    size = np.repeat(counts, counts)
    first = np.repeat(starts, counts)
    reach = np.minimum(size - 1, _ring_reach(counts))
    # rows by reach, descending: the rows linking at offset d are a prefix
    by_reach = np.argsort(-reach, kind="stable")
    idx_r, size_r, first_r = idx[by_reach], size[by_reach], first[by_reach]
    div_r = div[by_reach]
    pos_r, reach_r = (np.arange(len(tmpl)) - first)[by_reach], reach[by_reach]
    n_at = np.searchsorted(-reach_r, -np.arange(1, int(reach.max(initial=0)) + 1),
                           side="right")  # rows with reach >= d
    if not len(n_at):
        return unit
    rows = np.concatenate([idx_r[:m] for m in n_at])
    cols = np.concatenate([idx[first_r[:m] + (pos_r[:m] + d) % size_r[:m]]
                           for d, m in enumerate(n_at, start=1)])
    # each unordered pair of a full clique is met twice (offsets d and n - d)
    weights = np.concatenate([0.5 * div_r[:m] / reach_r[:m] for m in n_at])
    lo, hi = np.minimum(rows, cols), np.maximum(rows, cols)
    pairs = sparse.coo_matrix((weights, (lo, hi)), shape=(len(names),) * 2).tocsr().tocoo()
    del rows, cols, weights, lo, hi
    for k, part in enumerate(communities(len(names), pairs.row, pairs.col, pairs.data)):
        unit[part] = k
    return unit


def communities(n_nodes: int, a: np.ndarray, b: np.ndarray, w: np.ndarray) -> list[list[int]]:
    """Leiden (graspologic-native, modularity, seeded) communities of the weighted graph on
    nodes ``0..n_nodes-1`` with edges ``(a, b, w)``, sorted by their smallest node; nodes
    without an edge are in none.

    Leiden runs in Rust on a compact copy of the edges: on the 16M-exchange world's ~2M co-use
    pairs, networkx's Louvain built a graph of Python dicts of 1.2 GB and took 78 s.
    """
    if not len(a):
        return []
    node = [str(i) for i in range(n_nodes)]  # one string per node, shared by its edges
    edges = list(zip([node[i] for i in a.tolist()], [node[i] for i in b.tolist()],
                     np.asarray(w, dtype=np.float64).tolist(), strict=True))
    _, part = leiden(edges, seed=SEED, trials=LEIDEN_TRIALS)
    del edges
    by_id: dict[int, list[int]] = {}
    for key, cid in part.items():
        by_id.setdefault(cid, []).append(int(key))
    return sorted((sorted(c) for c in by_id.values()), key=lambda c: c[0])


def _ring_reach(counts: np.ndarray) -> int:
    """The largest number of ring neighbours per user that keeps the pairs of templates with
    ``counts`` users within :data:`COUSE_PAIR_BUDGET` (full cliques when they fit)."""
    counts = counts[counts >= 2]
    if not len(counts):
        return 0
    lo, hi = 1, int(counts.max()) - 1
    if int((counts * (counts - 1)).sum()) <= COUSE_PAIR_BUDGET:
        return hi
    while lo < hi:  # pairs(k) = sum(n * min(n - 1, k)) grows with k
        mid = (lo + hi + 1) // 2
        if int((counts * np.minimum(counts - 1, mid)).sum()) <= COUSE_PAIR_BUDGET:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _join_units(unit: np.ndarray, ea: np.ndarray, eb: np.ndarray, stacked: np.ndarray,
                infra: list[tuple[int, sparse.csr_matrix]],
                templates: sparse.csr_matrix | None = None) -> np.ndarray:
    """Join units on corroborated evidence until no pair of groups qualifies (fixed point).

    The evidence between two groups is the sum over every edge between their members, so once
    small units have merged, two groups may qualify that none of their units did pairwise (a
    hydra's parts each hold a few links into the rest); re-test the merged groups until stable.

    Two more kinds of evidence, each admitted only beside the other's kind: ``infra`` (per
    billing / network / client column, an account x key matrix of private infrastructure) gives
    the smaller of the two groups' shares of accounts using a key the other group also uses;
    ``templates`` (account x private template) gives the share of the smaller group's accounts
    using a template the other group also uses. Shared infrastructure without a shared method
    is two customers of one proxy supplier; a shared method without shared infrastructure is
    a copied scaffold; both together are one operation. Pairs are int64 keys ``lo * n + hi``.
    """
    group = unit.copy()
    while True:
        labels, group = np.unique(group, return_inverse=True)
        group = group.ravel()
        n = len(labels)
        sizes = np.bincount(group, minlength=n)
        edge_keys, edge_ev = _cross(group[ea], group[eb], stacked, n)
        member = sparse.csc_matrix((np.ones(len(group), dtype=np.float32),
                                    (group, np.arange(len(group)))), shape=(n, len(group)))
        extra = _private_evidence(member, sizes, infra, templates, edge_keys, edge_ev)
        keys = np.unique(np.concatenate([edge_keys, *(k for _, k, _ in extra)]))
        lo, hi = keys // n, keys % n
        ev = np.zeros((len(keys), len(CHANNELS)), dtype=np.float32)
        ev[np.searchsorted(keys, edge_keys)] = edge_ev
        del edge_ev, edge_keys
        ev /= np.minimum(sizes[lo], sizes[hi])[:, None].astype(np.float32)
        private = np.zeros_like(ev)
        for col, k, share in extra:
            np.maximum.at(private[:, col], np.searchsorted(keys, k), share)
        del extra
        has_infra = (ev[:, _INFRA_COLS] + private[:, _INFRA_COLS]).sum(axis=1) \
            >= MIN_CHANNEL_SHARE
        has_content = ev[:, _CONTENT_COL] + private[:, _CONTENT_COL] >= MIN_CHANNEL_SHARE
        private[np.ix_(~has_content, np.asarray(_INFRA_COLS))] = 0.0
        private[~has_infra, _CONTENT_COL] = 0.0
        np.maximum(ev, private, out=ev)
        del private
        merge = joins(ev)
        del ev
        if not merge.any():
            return group
        graph = sparse.coo_matrix((np.ones(int(merge.sum())), (lo[merge], hi[merge])),
                                  shape=(n, n))
        group = connected_components(graph, directed=False)[1].astype(np.int64)[group]


def _private_evidence(member: sparse.csc_matrix, sizes: np.ndarray,
                      infra: list[tuple[int, sparse.csr_matrix]],
                      templates: sparse.csr_matrix | None, edge_keys: np.ndarray,
                      edge_ev: np.ndarray) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(channel column, pair keys, shares >= ``MIN_CHANNEL_SHARE``) of private infrastructure
    and private scaffolds, for pairs that may have the other kind too (the rest could not be
    admitted: dropping them early keeps the 16M-exchange world's pair arrays small)."""
    def significant(k: np.ndarray, share: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ok = share >= MIN_CHANNEL_SHARE
        return k[ok], share[ok]

    found = [(col, *significant(*_key_share(member, sizes, m, mutual=True)))
             for col, m in infra]
    scaffolds = (significant(*_key_share(member, sizes, templates, mutual=False,
                                         min_keys=MIN_PRIVATE_TEMPLATES))
                 if templates is not None else (np.zeros(0, np.int64), np.zeros(0)))
    with_infra = np.concatenate([edge_keys[edge_ev[:, _INFRA_COLS].sum(axis=1) > 0],
                                 *(k for _, k, _ in found)])
    with_content = np.concatenate([edge_keys[edge_ev[:, _CONTENT_COL] > 0], scaffolds[0]])
    out = []
    for col, k, share in found:
        ok = np.isin(k, with_content)
        out.append((col, k[ok], share[ok]))
    ok = np.isin(scaffolds[0], with_infra)
    out.append((_CONTENT_COL, scaffolds[0][ok], scaffolds[1][ok]))
    return out


def _pair_key(g: np.ndarray, h: np.ndarray, n: int) -> np.ndarray:
    return np.minimum(g, h).astype(np.int64) * n + np.maximum(g, h)


def _key_share(member: sparse.csc_matrix, sizes: np.ndarray, uses: sparse.csr_matrix, *,
               mutual: bool, min_keys: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Pair keys and the share of a group's accounts using ``min_keys`` keys the other group
    also uses: of the smaller group, or (``mutual``) the smaller of the two groups' shares.

    ``member`` is group x account, ``uses`` account x key (binary).
    """
    n = len(sizes)
    present = (member @ uses).T.tocsr()
    present.data[:] = 1.0  # key x group
    reach = sparse.csr_matrix((n, n), dtype=np.float32)
    # [g, h]: accounts of g using keys group h uses; in blocks of accounts, since accounts x
    # groups (which groups each account reaches) is the big intermediate
    for start in range(0, uses.shape[0], REACH_BLOCK):
        block = uses[start:start + REACH_BLOCK] @ present  # account x group: shared keys
        block.data = (block.data >= min_keys).astype(np.float32)
        block.eliminate_zeros()
        reach = reach + member[:, start:start + REACH_BLOCK] @ block
    reach = reach.tocoo()
    off = reach.row != reach.col
    g, h = reach.row[off].astype(np.int64), reach.col[off].astype(np.int64)
    share = reach.data[off] / sizes[g]
    if not mutual:
        small = (sizes[g] < sizes[h]) | ((sizes[g] == sizes[h]) & (g < h))
        return _pair_key(g[small], h[small], n), share[small]
    keys, inverse = np.unique(_pair_key(g, h, n), return_inverse=True)
    out = np.full(len(keys), np.inf)
    np.minimum.at(out, inverse.ravel(), share)
    return keys, out


#: accounts per block when counting which groups each account reaches through shared keys
REACH_BLOCK = 4096


def _uses(n_accounts: int, idx: np.ndarray, key: np.ndarray) -> sparse.csr_matrix | None:
    """Binary account x key matrix of (account position, key) rows; position -1 is dropped."""
    keep = idx >= 0
    if not keep.any():
        return None
    distinct, col = np.unique(key[keep], return_inverse=True)
    m = sparse.csr_matrix((np.ones(int(keep.sum()), dtype=np.float32), (idx[keep], col.ravel())),
                          shape=(n_accounts, len(distinct)))
    m.data[:] = 1.0  # repeated rows
    return m


def _private_uses(names: list[str], infra: pa.Table | None,
                  usage: pa.Table | None) -> tuple[list[tuple[int, sparse.csr_matrix]],
                                                   sparse.csr_matrix | None]:
    """Account x key matrices: per identity channel of ``infra``, and of ``usage``."""
    per_channel: list[tuple[int, sparse.csr_matrix]] = []
    if infra is not None and infra.num_rows:
        idx = _index(infra.column("account_id"), names)
        key = np.asarray(infra.column("key").to_numpy(zero_copy_only=False))
        for name in _INFRA_CHANNELS:
            this = np.asarray(pc.equal(infra.column("channel"), name).to_numpy(
                zero_copy_only=False), dtype=bool)
            m = _uses(len(names), np.where(this, idx, -1), key)
            if m is not None:
                per_channel.append((list(CHANNELS).index(name), m))
    templates = None
    if usage is not None and usage.num_rows:
        templates = _uses(len(names), _index(usage.column("account_id"), names),
                          np.asarray(usage.column("template_hash").to_numpy(
                              zero_copy_only=False)))
    return per_channel, templates


def _cross(ux: np.ndarray, uy: np.ndarray, stacked: np.ndarray,
           n: int) -> tuple[np.ndarray, np.ndarray]:
    """Pair keys (:func:`_pair_key`, ``n`` units) of the units the edges cross between, and
    the summed channel evidence of those edges (pairs x channels)."""
    cut = np.flatnonzero(ux != uy)
    keys, inverse = np.unique(_pair_key(ux[cut], uy[cut], n), return_inverse=True)
    inverse = inverse.ravel()
    sums = np.empty((len(keys), stacked.shape[1]))
    for c in range(stacked.shape[1]):  # column by column: no copy of the whole edge block
        sums[:, c] = np.bincount(inverse, weights=stacked[cut, c], minlength=len(keys))
    return keys, sums


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
    keys, sums = _cross(part[x], part[y], stacked, len(parts))
    sizes = np.array([len(p) for p in parts])
    lo, hi = keys // len(parts), keys % len(parts)
    identity = sums[:, _IDENTITY_COLS].sum(axis=1)
    for ux, uy in zip(*(v[identity / np.minimum(sizes[lo], sizes[hi]) >= MIN_CHANNEL_SHARE]
                        for v in (lo, hi)), strict=True):
        ds.merge(int(ux), int(uy))
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


def joins(per_account: np.ndarray) -> np.ndarray:
    """The join rule, for every row of a (pairs, channels) array of per-account cross evidence
    (channels in the order of ``CHANNELS``)."""
    total = per_account.sum(axis=1)
    corroborating = (per_account[:, _CORROBORATING_COLS] >= MIN_CHANNEL_SHARE).sum(axis=1)
    return (total >= JOIN_THRESHOLD) & (corroborating >= MIN_CHANNELS)
