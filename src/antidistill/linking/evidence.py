"""Plain sentences naming what links each cluster (counts of shared instruments, templates…)."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from antidistill.linking.communities import Clustering

_INFRA_TEXT = {
    "payment": "share {v} payment instrument(s)",
    "ip": "share {v} IP address(es)",
    "subnet": "share {v} /24 network(s)",
    "asn": "share {v} small ASN(s)",
    "client": "share {v} client fingerprint(s)",
}
_OTHER_TEXT = {
    "template": "share specific prompt templates (strength {s:.2f})",
    "family": "share a specific prompt-scaffold family (strength {s:.2f})",
    "split": "split one problem family between them with no repeats (strength {s:.2f})",
    "sync": "are active in the same 10-minute windows far above chance (strength {s:.2f})",
    "volume": "change their daily schedules together, as if fed by one queue (strength {s:.2f})",
    "creation": "were created in a burst (strength {s:.2f})",
}


def evidence_texts(con: duckdb.DuckDBPyConnection, clustering: Clustering) -> dict[str, list[str]]:
    """cluster_id -> sentences, from the shared keys (``_keyval``) and edge evidence."""
    out: dict[str, list[str]] = {cid: [] for cid in clustering.members}
    if not clustering.members:
        return out
    ids = list(clustering.cluster_of)
    con.register("_member", pa.table({"account_id": ids,
                                      "cluster_id": [clustering.cluster_of[a] for a in ids]}))
    rows = con.execute("""
      SELECT cluster_id, kind, count(*) AS n_values, max(n_acc) AS most
      FROM (SELECT m.cluster_id, k.kind, k.value, count(DISTINCT k.account_id) AS n_acc
            FROM _keyval k JOIN _member m USING (account_id) GROUP BY ALL
            HAVING count(DISTINCT k.account_id) >= 2)
      GROUP BY ALL
    """).fetchall()
    con.unregister("_member")
    infra = {(c, k): (n, most) for c, k, n, most in rows}
    for cid, members in clustering.members.items():
        ev = clustering.evidence.get(cid, {})
        for kind, tmpl in _INFRA_TEXT.items():
            if (cid, kind) in infra and ev.get(kind, 0) > 0:
                n, most = infra[(cid, kind)]
                out[cid].append(f"{most} of {len(members)} accounts " + tmpl.format(v=n))
        for kind, tmpl in _OTHER_TEXT.items():
            if ev.get(kind, 0) > 0:
                out[cid].append(f"accounts {tmpl.format(s=ev[kind])}")
    return out
