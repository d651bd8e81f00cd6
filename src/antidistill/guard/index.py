"""What known-bad clusters look like from one request: templates and infrastructure.

A brand-new hydra account has no history, but it shares things with the flagged accounts of
its cluster: the harvesting script's prompt scaffold, the payment instrument, the client build,
the /24 it runs from, the ASN. The index maps each such feature to the flagged accounts (and
clusters) seen using it, and to how many *cleared* accounts use it too, so that a feature shared
with ordinary customers (a coding agent's system prompt, "thanks", a cloud ASN) weighs nothing.

Sources: the flagged accounts of ``accounts.parquet`` joined with the exchange log they were
detected from, plus the guard's own observation of flagged accounts' live traffic. Online "other
use" is counted only for accounts the batch run has seen and not flagged: a cluster opening many
fresh accounts cannot dilute its own template that way.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pyarrow as pa

from antidistill.guard.risk import RiskTable
from antidistill.guard.templates import scaffold_features

#: feature kind -> description used in evidence text
KIND_LABEL = {
    "tpl": "prompt template",
    "sys": "system prompt",
    "pre": "prompt opening",
    "suf": "prompt ending",
    "pay": "payment instrument",
    "cfp": "client fingerprint",
    "net": "network (/24)",
    "asn": "ASN",
}


@lru_cache(maxsize=65536)
def _network(ip: str) -> str | None:
    parts = ip.split(".")
    if len(parts) == 4 and all(p.isdigit() and int(p) < 256 for p in parts):
        return f"{int(parts[0])}.{int(parts[1])}.{int(parts[2])}.0/24"
    try:
        addr = ipaddress.ip_address(ip.strip())
    except ValueError:
        return None
    prefix = 24 if addr.version == 4 else 48
    return str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False))


def network_of(ip: str | None) -> str | None:
    """``a.b.c.0/24`` for IPv4, ``/48`` for IPv6; None for missing or unparsable addresses."""
    return _network(ip.strip()) if ip else None


def request_features(
    prompt: str,
    system_prompt: str | None = None,
    *,
    payment_fp: str | None = None,
    client_fp: str | None = None,
    ip: str | None = None,
    asn: int | None = None,
) -> list[tuple[str, str]]:
    """Every indexable feature of one request, as ``(kind, value)``."""
    feats = scaffold_features(prompt or "", system_prompt)
    if payment_fp:
        feats.append(("pay", payment_fp))
    if client_fp:
        feats.append(("cfp", client_fp))
    net = network_of(ip)
    if net:
        feats.append(("net", net))
    if asn is not None:
        feats.append(("asn", str(asn)))
    return feats


@dataclass(slots=True)
class FeatureStats:
    bad: set[str] = field(default_factory=set)  # flagged accounts using it
    clusters: Counter[str] = field(default_factory=Counter)
    others: set[str] = field(default_factory=set)  # cleared accounts using it (capped)


@dataclass(frozen=True, slots=True)
class Link:
    """One feature the request shares with flagged accounts."""

    kind: str
    weight: float
    bad_accounts: int
    other_accounts: int
    clusters: tuple[str, ...]

    def text(self) -> str:
        cl = ", ".join(self.clusters) or "unclustered flagged accounts"
        return (
            f"{KIND_LABEL.get(self.kind, self.kind)} shared with {cl} "
            f"({self.bad_accounts} flagged, {self.other_accounts} other accounts; "
            f"weight {self.weight:.2f})"
        )


class BadIndex:
    """Feature -> flagged/cleared usage: "what does this request share with bad clusters"."""

    def __init__(
        self,
        *,
        min_bad: dict[str, int] | None = None,
        other_penalty: float = 3.0,
        max_others: int = 20,
    ):
        self.features: dict[tuple[str, str], FeatureStats] = {}
        # payment instruments are personal: one flagged user is enough; scaffolds must be shared
        self.min_bad = {"pay": 1, **(min_bad or {})}
        self.other_penalty = other_penalty
        self.max_others = max_others
        #: features one flagged account used live, waiting for a second account to share them
        self._pending: dict[tuple[str, str], set[str]] = {}

    def __len__(self) -> int:
        return len(self.features)

    def specificity(self, st: FeatureStats) -> float:
        """How much a shared feature implicates: bad / (bad + penalty * others + 1); 0 past
        ``max_others`` cleared users."""
        n_bad, n_other = len(st.bad), len(st.others)
        if n_other > self.max_others:
            return 0.0
        return n_bad / (n_bad + self.other_penalty * n_other + 1.0)

    # -- building ---------------------------------------------------------------------------
    @classmethod
    def build(
        cls, risk: RiskTable, exchanges: pa.Table | None = None, **kwargs: object
    ) -> BadIndex:
        """Index the features flagged accounts used in ``exchanges`` (schema v1 columns)."""
        idx = cls(**kwargs)  # type: ignore[arg-type]
        if exchanges is None or exchanges.num_rows == 0:
            return idx
        names = exchanges.schema.names

        def col(n: str) -> list[object]:
            return exchanges.column(n).to_pylist() if n in names else [None] * exchanges.num_rows

        cands: dict[tuple[str, str], FeatureStats] = {}
        rows = zip(
            col("account_id"),
            col("prompt"),
            col("system_prompt"),
            col("payment_fp"),
            col("client_fp"),
            col("ip"),
            col("asn"),
            strict=True,
        )
        for acc, prompt, system, pay, cfp, ip, asn in rows:
            r = risk.get(str(acc))
            feats = request_features(
                str(prompt or ""),
                system,
                payment_fp=pay,
                client_fp=cfp,
                ip=ip,
                asn=asn,
            )
            for f in feats:
                st = cands.get(f)
                if st is None:
                    st = cands[f] = FeatureStats()
                if r is not None and r.flagged:
                    st.bad.add(str(acc))
                    st.clusters[r.cluster_id or ""] += 1
                elif len(st.others) <= idx.max_others:
                    st.others.add(str(acc))
        for f, st in cands.items():
            if len(st.bad) >= idx.min_bad.get(f[0], 2):
                st.clusters.pop("", None)
                idx.features[f] = st
        return idx

    @classmethod
    def from_paths(
        cls, risk: RiskTable, logs: Iterable[str | Path] = (), **kwargs: object
    ) -> BadIndex:
        """Build from exchange logs (Parquet/JSONL files or directories, via ``ingest``)."""
        paths = [Path(p) for p in logs]
        if not paths:
            return cls.build(risk, None, **kwargs)
        wanted = ["account_id", "prompt", "system_prompt", "payment_fp", "client_fp", "ip", "asn"]
        try:
            from antidistill.ingest import read_exchanges
        except ImportError:  # ingest not installed in this build: plain Parquet only
            import pyarrow.dataset as ds

            dataset = ds.dataset([str(p) for p in paths], format="parquet")
            cols = [c for c in wanted if c in dataset.schema.names]
            return cls.build(risk, dataset.to_table(columns=cols), **kwargs)
        batches = list(read_exchanges(paths, columns=wanted))
        table = pa.Table.from_batches(batches) if batches else None
        return cls.build(risk, table, **kwargs)

    # -- online updates ---------------------------------------------------------------------
    def observe_bad(self, account: str, cluster: str | None, feats: list[tuple[str, str]]) -> None:
        """A flagged account's live request: its features become (more) indicative."""
        for f in feats:
            st = self.features.get(f)
            if st is None:
                if self.min_bad.get(f[0], 2) > 1:
                    # remember single-account candidates separately until a second account shows up
                    pend = self._pending.setdefault(f, set())
                    if account not in pend and len(self._pending) < 1_000_000:
                        pend.add(account)
                    if len(pend) < self.min_bad.get(f[0], 2):
                        continue
                    st = self.features[f] = FeatureStats(bad=set(pend))
                    del self._pending[f]
                else:
                    st = self.features[f] = FeatureStats()
            if account not in st.bad:
                st.bad.add(account)
            if cluster:
                st.clusters[cluster] += 1

    def observe_cleared(self, account: str, feats: list[tuple[str, str]]) -> None:
        """An account the batch run cleared uses these features: they implicate less."""
        for f in feats:
            st = self.features.get(f)
            if st is not None and account not in st.bad and len(st.others) <= self.max_others:
                st.others.add(account)

    # -- lookup -----------------------------------------------------------------------------
    def links(self, account: str, feats: list[tuple[str, str]]) -> list[Link]:
        """The strongest shared feature of each kind (the account's own use excluded)."""
        best: dict[str, Link] = {}
        for f in feats:
            st = self.features.get(f)
            if st is None:
                continue
            n_bad = len(st.bad) - (account in st.bad)
            if n_bad <= 0:
                continue
            n_other = len(st.others)
            spec = (
                0.0
                if n_other > self.max_others
                else n_bad / (n_bad + self.other_penalty * n_other + 1.0)
            )
            if spec <= 0.0:
                continue
            cur = best.get(f[0])
            if cur is None or spec > cur.weight:
                clusters = tuple(c for c, _ in st.clusters.most_common(3))
                best[f[0]] = Link(f[0], spec, n_bad, n_other, clusters)
        return sorted(best.values(), key=lambda link: -link.weight)
