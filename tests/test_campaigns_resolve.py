"""Campaign resolution: one operator's accounts join on several kinds of evidence, two operators
that share only a method (scaffolds) and a hosting ASN stay apart."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from antidistill.campaigns.build import private_infrastructure, template_usage
from antidistill.campaigns.resolve import resolve
from antidistill.detect import connect
from antidistill.linking.edges import KINDS


def _edges(rows: list[dict[str, Any]]) -> pa.Table:
    """Edge table with every kind column; ``weight`` as linking sums it."""
    out = []
    for r in rows:
        full = {"a": min(r["a"], r["b"]), "b": max(r["a"], r["b"])}
        full.update({k: float(r.get(k, 0.0)) for k in KINDS})
        content = max(full["template"], full["family"])
        full["weight"] = min(5.0, sum(full[k] for k in KINDS if k not in ("template", "family"))
                             + content)
        out.append(full)
    return pa.Table.from_pylist(out)


def _operator(prefix: str, n: int, **kinds: float) -> list[dict[str, Any]]:
    accs = [f"{prefix}{i}" for i in range(n)]
    return [{"a": x, "b": y, **kinds} for x, y in itertools.combinations(accs, 2)]


def _usage(rows: dict[str, list[int]]) -> pa.Table:
    pairs = [(a, t) for a, ts in rows.items() for t in ts]
    return pa.table({"account_id": [a for a, _ in pairs],
                     "template_hash": pa.array([t for _, t in pairs], pa.uint64())})


def _group_of(groups: list[list[str]]) -> dict[str, int]:
    return {a: i for i, g in enumerate(groups) for a in g}


def test_two_operators_sharing_scaffolds_and_an_asn_stay_apart() -> None:
    # X: shared payment + office IP; Y: shared client build + IPs. Between them: the same
    # public CoT scaffold on every pair and one hosting ASN — a method and a supplier.
    rows = _operator("x", 8, payment=1.0, ip=0.5) + _operator("y", 8, client=0.4, ip=0.5,
                                                             template=0.9)
    rows += [{"a": f"x{i}", "b": f"y{j}", "template": 0.9, "asn": 0.1}
             for i in range(8) for j in range(8)]
    edges = _edges(rows)
    accs = [f"x{i}" for i in range(8)] + [f"y{i}" for i in range(8)]
    # community detection fused them into one cluster; as two clusters they stay apart too
    for members in ({"K1": accs}, {"K1": accs[:8], "K2": accs[8:]}):
        groups, clusters = resolve(accs, members, edges)
        g = _group_of(groups)
        assert len({g[a] for a in accs[:8]}) == 1 and len({g[a] for a in accs[8:]}) == 1
        assert g["x0"] != g["y0"], members
        assert set(clusters) == set(members)


def test_identity_plus_content_joins_clusters() -> None:
    # the same operator's two clusters: scaffolds AND payment instruments cross between them
    rows = _operator("x", 6, payment=1.0) + _operator("y", 6, payment=1.0)
    rows += [{"a": f"x{i}", "b": f"y{i}", "template": 0.8, "payment": 0.3} for i in range(6)]
    edges = _edges(rows)
    accs = [f"x{i}" for i in range(6)] + [f"y{i}" for i in range(6)]
    groups, clusters = resolve(accs, {"K1": accs[:6], "K2": accs[6:]}, edges)
    assert len(groups) == 1
    assert clusters["K1"] == clusters["K2"]
    # one channel, however dense, does not: the same edges with template only
    only_content = _edges(_operator("x", 6, payment=1.0) + _operator("y", 6, payment=1.0)
                          + [{"a": f"x{i}", "b": f"y{j}", "template": 1.0}
                             for i in range(6) for j in range(6)])
    groups, _ = resolve(accs, {"K1": accs[:6], "K2": accs[6:]}, only_content)
    assert len(groups) == 2


def test_quiet_account_joins_through_private_scaffolds_and_identity() -> None:
    accs = [f"x{i}" for i in range(6)]
    rows = _operator("x", 6, payment=1.0, template=0.9)
    # q: flagged, no strong edge; a weak reseller-damped payment/IP link to one operator account
    rows.append({"a": "q", "b": "x0", "payment": 0.04, "ip": 0.09})
    # r: the same scaffolds, no identity evidence at all; s: the same weak identity link, but
    # only one of the operator's scaffolds (plus scaffolds of its own)
    rows.append({"a": "s", "b": "x1", "payment": 0.04, "ip": 0.09})
    edges = _edges(rows)
    private = [101, 102, 103]
    usage = {a: [*private, 900] for a in accs}
    usage.update({"q": [101, 102, 103, 7], "r": [101, 102, 103], "s": [101, 555, 556]})
    flagged = [*accs, "q", "r", "s"]
    groups, _ = resolve(flagged, {"K1": accs}, edges, _usage(usage))
    g = _group_of(groups)
    assert g["q"] == g["x0"]
    assert g["r"] != g["x0"] and g["s"] != g["x0"]
    # without the usage table q stays alone (its pair evidence is far too weak)
    groups, _ = resolve(flagged, {"K1": accs}, edges)
    assert _group_of(groups)["q"] != _group_of(groups)["x0"]


def test_quiet_account_with_many_of_one_campaigns_private_scaffolds_joins_it() -> None:
    # no identity evidence at all: 5 scaffolds only campaign X ever sent join t to X; 4 do not,
    # nor do 5 of X's next to 3 of Y's (not one operator's signature)
    rows = _operator("x", 6, payment=1.0, template=0.9) + _operator("y", 6, payment=1.0)
    edges = _edges(rows)
    xs, ys = [f"x{i}" for i in range(6)], [f"y{i}" for i in range(6)]
    usage = {a: [101, 102, 103, 104, 105] for a in xs}
    usage.update({a: [201, 202, 203] for a in ys})
    usage.update({"t": [101, 102, 103, 104, 105, 7], "u": [101, 102, 103, 104],
                  "v": [101, 102, 103, 104, 105, 201, 202, 203]})
    flagged = [*xs, *ys, "t", "u", "v"]
    groups, _ = resolve(flagged, {"K1": xs, "K2": ys}, edges, _usage(usage))
    g = _group_of(groups)
    assert g["t"] == g["x0"]
    assert g["u"] not in (g["x0"], g["y0"]) and g["v"] not in (g["x0"], g["y0"])


def test_only_flagged_accounts_get_a_campaign() -> None:
    accs = [f"x{i}" for i in range(5)]
    edges = _edges(_operator("x", 5, payment=1.0, ip=0.5))
    groups, clusters = resolve(accs[:4], {"K1": accs}, edges)
    assert groups == [accs[:4]]
    assert clusters == {"K1": "0"}
    # a cluster mostly unflagged is no campaign cluster; its flagged accounts are loose and
    # join each other on their own corroborated (payment + IP) link
    groups, clusters = resolve(accs[:2], {"K1": accs}, edges)
    assert clusters == {} and groups == [["x0", "x1"]]
    weak = _edges([{"a": "x0", "b": "x1", "payment": 1.0}])
    groups, _ = resolve(accs[:2], {"K1": accs}, weak)
    assert sorted(groups) == [["x0"], ["x1"]]


def test_template_usage_keeps_only_scaffolds_no_unflagged_account_used(tmp_path: Path) -> None:
    con = connect(tmp_path)
    con.execute("""CREATE TABLE ex AS SELECT * FROM (VALUES
      ('x0', 1::UBIGINT, 10::UBIGINT), ('x1', 1, 10), ('x0', 2, 11), ('u', 2, 12),
      ('x1', 3, 13), ('x1', 3, 14), ('u', NULL, 15), ('x0', 4, 16), ('x1', 4, 17))
      t(account_id, template_hash, content_hash)""")
    usage = template_usage(con, ["x0", "x1"])
    assert sorted(zip(usage.column("account_id").to_pylist(),
                      usage.column("template_hash").to_pylist(),
                      usage.column("diversity").to_pylist(), strict=True)) == [
        # template 1: both sent the same text (one content, two users); 3 and 4 wrap an item
        # per request (at most one per user counts)
        ("x0", 1, 0.5), ("x0", 4, 1.0), ("x1", 1, 0.5), ("x1", 3, 1.0), ("x1", 4, 1.0)]


def _infra(rows: dict[str, list[tuple[str, int]]]) -> pa.Table:
    triples = [(a, c, k) for a, keys in rows.items() for c, k in keys]
    return pa.table({"account_id": [t[0] for t in triples], "channel": [t[1] for t in triples],
                     "key": pa.array([t[2] for t in triples], pa.uint64())})


def test_groups_are_retested_after_merging() -> None:
    # q1 and q2 join each other; each alone has one kind of link into X (not enough), together
    # they carry payment and IP evidence into X: the merged group joins X
    rows = _operator("x", 6, payment=1.0, ip=0.5)
    rows += [{"a": "q1", "b": "q2", "payment": 1.0, "ip": 0.5},
             {"a": "q1", "b": "x0", "payment": 1.0}, {"a": "q2", "b": "x1", "ip": 1.0}]
    xs = [f"x{i}" for i in range(6)]
    groups, _ = resolve([*xs, "q1", "q2"], {"K1": xs}, _edges(rows))
    assert len(groups) == 1


def test_private_egress_and_private_scaffolds_together_join_groups() -> None:
    # X and Y: one operator whose big shared egress linking dropped as public; between them
    # only synchrony in the edges -> apart; the private egress plus the scaffolds only flagged
    # accounts use -> one campaign
    rows = _operator("x", 6, payment=1.0) + _operator("y", 6, payment=1.0)
    rows += [{"a": f"x{i}", "b": f"y{j}", "sync": 0.5} for i in range(6) for j in range(6)]
    edges = _edges(rows)
    xs, ys = [f"x{i}" for i in range(6)], [f"y{i}" for i in range(6)]
    members, flagged = {"K1": xs, "K2": ys}, [*xs, *ys]
    egress = _infra({a: [("network", 1)] for a in flagged})
    scaffolds = _usage({a: [101, 102] for a in flagged})
    assert len(resolve(flagged, members, edges)[0]) == 2
    assert len(resolve(flagged, members, edges, scaffolds, egress)[0]) == 1
    # egress and synchrony without a shared method: two customers of one proxy supplier
    assert len(resolve(flagged, members, edges, infra=egress)[0]) == 2
    # a shared method and synchrony without shared infrastructure: a copied scaffold
    assert len(resolve(flagged, members, edges, scaffolds)[0]) == 2
    # one scaffold in common is not enough (a popular prompt); two are
    assert len(resolve(flagged, members, edges, _usage({a: [101] for a in flagged}),
                       egress)[0]) == 2
    # egress used by one account of each side only: a share of 1/6 on both sides still counts;
    # used by every account of X but one of a big Y (1/30) it does not
    few = _infra({"x0": [("network", 2)], "y0": [("network", 2)]})
    assert len(resolve(flagged, members, edges, scaffolds, few)[0]) == 1
    big_y = [f"y{i}" for i in range(30)]
    big_rows = _operator("x", 6, payment=1.0) + _operator("y", 30, payment=1.0)
    big_rows += [{"a": f"x{i}", "b": f"y{j}", "sync": 0.5} for i in range(6) for j in range(30)]
    proxy = _infra({a: [("network", 2)] for a in [*xs, "y0"]})
    groups, _ = resolve([*xs, *big_y], {"K1": xs, "K2": big_y}, _edges(big_rows),
                        _usage({a: [101, 102] for a in [*xs, *big_y]}), proxy)
    assert len(groups) == 2


def test_private_scaffolds_join_beside_infrastructure_not_beside_timing() -> None:
    xs, ys, zs = ([f"{p}{i}" for i in range(6)] for p in "xyz")
    rows = (_operator("x", 6, payment=1.0) + _operator("y", 6, payment=1.0)
            + _operator("z", 6, payment=1.0))
    # X-Y: some shared residential addresses (network only); X-Z: synchrony only
    rows += [{"a": f"x{i}", "b": f"y{i}", "ip": 0.5} for i in range(6)]
    rows += [{"a": f"x{i}", "b": f"z{j}", "sync": 0.5} for i in range(6) for j in range(6)]
    edges = _edges(rows)
    members = {"K1": xs, "K2": ys, "K3": zs}
    flagged = [*xs, *ys, *zs]
    assert len(resolve(flagged, members, edges)[0]) == 3
    # the same private scaffolds (only flagged accounts ever sent them) in all three
    usage = _usage({a: [101, 102, 103] for a in flagged})
    g = _group_of(resolve(flagged, members, edges, usage)[0])
    assert g["x0"] == g["y0"]
    assert g["z0"] != g["x0"]


def test_private_infrastructure_is_what_flagged_accounts_almost_alone_use(tmp_path: Path) -> None:
    con = connect(tmp_path)
    flagged = [f"x{i}" for i in range(10)]
    rows = [(a, "1.1.1.1", None, None) for a in [*flagged, "u0"]]  # 10 of 11: private
    rows += [(a, "2.2.2.2", None, None) for a in ["x0", "x1", "u1", "u2"]]  # 2 of 4: public
    rows += [("x0", "3.3.3.3", "pay1", ""), ("x1", None, "pay1", "c1"), ("x2", None, None, "c1")]
    con.register("_r", pa.table({"account_id": [r[0] for r in rows],
                                 "ip": [r[1] for r in rows], "payment_fp": [r[2] for r in rows],
                                 "client_fp": [r[3] for r in rows]}))
    con.execute("CREATE TABLE ex AS SELECT * FROM _r")
    infra = private_infrastructure(con, flagged)
    users: dict[tuple[str, int], set[str]] = {}
    for r in infra.to_pylist():
        users.setdefault((r["channel"], r["key"]), set()).add(r["account_id"])
    assert sorted((c, sorted(a)) for (c, _), a in users.items()) == [
        ("billing", ["x0", "x1"]), ("client", ["x1", "x2"]), ("network", flagged)]
    assert infra.schema.field("key").type == pa.uint64()
    assert private_infrastructure(con, []).num_rows == 0


def test_private_evidence_alone_joins_accounts_without_pair_edges() -> None:
    # no edge at all between p and q (linking dropped their shared blocks): a private egress and
    # two private scaffolds in common are two channels; r shares the egress only
    empty = _edges([])
    flagged = ["p", "q", "r"]
    egress = _infra({a: [("network", 7)] for a in flagged})
    usage = _usage({"p": [1, 2], "q": [1, 2], "r": [3]})
    groups, clusters = resolve(flagged, {}, empty, usage, egress)
    assert sorted(groups) == [["p", "q"], ["r"]] and clusters == {}
    assert resolve([], {}, empty, usage, egress) == ([], {})


def _two_operations_without_infrastructure() -> tuple[list[str], list[str], dict[str, list[int]]]:
    """X and Y (8 accounts each) send their own private scaffolds, each by 3-6 of the
    operation's accounts (about 11 per account); both harvest one public dataset, so two of X's
    and two of Y's accounts sent the same two items; z shares nothing with anyone."""
    xs, ys = [f"x{i}" for i in range(8)], [f"y{i}" for i in range(8)]
    usage: dict[str, list[int]] = {a: [] for a in [*xs, *ys, "z"]}
    for base, accs in ((100, xs), (200, ys)):
        for t in range(20):
            for j in range(3 + t % 4):
                usage[accs[(3 * t + j) % 8]].append(base + t)
    for a in ("x0", "x1", "y0", "y1"):
        usage[a] += [900, 901]  # the dataset items both operations sent
    usage["z"] = [777]
    return xs, ys, usage


def test_without_infrastructure_or_system_prompts_private_scaffold_communities_lead() -> None:
    from antidistill.campaigns.resolve import INFRA_COLUMNS

    xs, ys, usage = _two_operations_without_infrastructure()
    flagged = [*xs, *ys, "z"]
    # every account in one content cluster; pair edges carry content only
    rows = [{"a": a, "b": b, "template": 0.6} for a, b in itertools.combinations(flagged[:-1], 2)
            if a[0] == b[0] or {a, b} <= {"x0", "x1", "y0", "y1"}]
    edges = _edges(rows)
    # whether linking fused them into one cluster or found none (a hydra's quiet accounts), in
    # a log without infrastructure columns or without system prompts
    for members in ({"K1": flagged[:-1]}, {}):
        for absent in (INFRA_COLUMNS, ("system_prompt",)):
            groups, clusters = resolve(flagged, members, edges, _usage(usage), absent=absent)
            assert sorted(groups) == sorted([xs, ys, ["z"]])
            assert set(clusters) == set(members)
    # a log that records infrastructure asks for it beside content: accounts in no cluster
    # stay alone on content evidence, however dense
    default, _ = resolve(flagged, {}, edges, _usage(usage))
    assert len(default) == len(flagged)


def test_content_units_sparsify_big_templates_within_the_pair_budget(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import antidistill.campaigns.resolve as resolve_module

    xs, ys, usage = _two_operations_without_infrastructure()
    for a in xs:
        usage[a].append(555)  # one scaffold every X account sent
    names = sorted(usage)
    table = _usage(usage)
    exact = resolve_module.content_units(names, table)
    counts = np.bincount(np.unique(table.column("template_hash").to_numpy(),
                                   return_inverse=True)[1])
    pairs = int((counts * (counts - 1)).sum())
    assert resolve_module._ring_reach(counts) == counts.max() - 1  # full cliques fit
    monkeypatch.setattr(resolve_module, "COUSE_PAIR_BUDGET", pairs - 20)
    k = resolve_module._ring_reach(counts)
    assert 1 <= k < counts.max() - 1
    assert int((counts * np.minimum(counts - 1, k)).sum()) <= pairs - 20
    assert int((counts * np.minimum(counts - 1, k + 1)).sum()) > pairs - 20
    sparse_units = resolve_module.content_units(names, table)
    group = {a: (u, v) for a, u, v in zip(names, exact, sparse_units, strict=True)}
    assert len({group[a] for a in xs}) == 1 and len({group[a] for a in ys}) == 1
    assert group["x0"][0] != group["y0"][0] and group["x0"][1] != group["y0"][1]
    assert group["z"] == (-1, -1)  # its one template has no other user


def test_items_two_operations_sent_word_for_word_do_not_fuse_them() -> None:
    """Both operations send public items under one stock instruction, word for word (at scale
    the extraction takes each such prompt for a template): 80 items, each sent by two accounts
    of each. Their own scaffolds wrap the items each splits. Weighted by diversity (one text,
    four users: 1/4), the shared items stop outweighing each operation's own scaffolds."""
    import antidistill.campaigns.resolve as resolve_module

    xs, ys, usage = _two_operations_without_infrastructure()
    rng = np.random.default_rng(0)
    for t in range(80):
        for a in [*rng.choice(xs, 2, replace=False), *rng.choice(ys, 2, replace=False)]:
            usage[str(a)].append(1000 + t)
    names = sorted(usage)
    table = _usage(usage)
    diversity = [0.25 if t >= 1000 else 1.0 for t in table.column("template_hash").to_pylist()]
    weighted = table.append_column("diversity", pa.array(diversity, pa.float64()))
    plain = dict(zip(names, resolve_module.content_units(names, table), strict=True))
    assert {plain[a] for a in xs} & {plain[a] for a in ys}  # unweighted, they mix
    units = dict(zip(names, resolve_module.content_units(names, weighted), strict=True))
    assert len({units[a] for a in xs}) == 1 and len({units[a] for a in ys}) == 1
    assert units["x0"] != units["y0"]


def test_accounts_without_shared_scaffolds_keep_their_cluster_part() -> None:
    xs, ys, usage = _two_operations_without_infrastructure()
    # c0-c2: one card, every prompt their own (no private template in common with anyone)
    cs = ["c0", "c1", "c2"]
    usage.update({c: [500 + i] for i, c in enumerate(cs)})
    groups, _ = resolve([*xs, *ys, "z", *cs], {"K9": cs}, _edges(_operator("c", 3, payment=1.0)),
                        _usage(usage), absent=("system_prompt",))
    assert cs in groups and xs in groups and ys in groups and ["z"] in groups


def test_communities_are_seeded_leiden_parts_of_the_weighted_graph() -> None:
    from antidistill.campaigns.resolve import communities

    # two 5-cliques bridged by one weak edge; node 10 has no edge
    pairs = [(i, j, 1.0) for base in (0, 5) for i, j in
             itertools.combinations(range(base, base + 5), 2)] + [(4, 5, 0.1)]
    a, b, w = (np.array(c) for c in zip(*pairs, strict=True))
    got = communities(11, a, b, w)
    assert got == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    assert communities(11, a, b, w) == got  # seeded: the same partition every run
    # a strong bridge of many edges makes them one
    dense = pairs + [(i, j, 1.0) for i in range(5) for j in range(5, 10)]
    a, b, w = (np.array(c) for c in zip(*dense, strict=True))
    assert communities(11, a, b, w) == [list(range(10))]
    assert communities(3, np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)) == []
