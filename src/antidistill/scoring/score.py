"""Apply the shipped scorer to prepared accounts: risk, flag, reasons, cluster context."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from antidistill.scoring.model import (
    CLUSTER_FEATURES,
    ScoringModel,
    cluster_features,
    condition_of,
)
from antidistill.scoring.reasons import reasons_for

if TYPE_CHECKING:
    from antidistill.detect import Prepared
    from antidistill.linking.communities import Clustering


#: Rule: harvesting is dataset-scale work. An account linked to no cluster is flagged on its own
#: only with at least this many harvest-like exchanges (the smallest unclustered campaign account
#: on the calibration world had 18); below that one account is too little evidence...
MIN_SOLO_HARVEST = 10
#: ...unless the model is near-certain (calibrated risk at least :data:`CERTAIN_RISK`), when half
#: as many do. A log without identity columns links fewer accounts, and a quiet seat of a hydra
#: then stands alone with 5-9 harvest-like exchanges at risk 1.0 (seeds 7 and 201: 4 and 6 such
#: campaign accounts, the 4M world 43 and one student; full logs: none legitimate up to 16M).
MIN_SOLO_HARVEST_CERTAIN = 5
CERTAIN_RISK = 0.9
#: Rule: a neighbour is not a seat. An account whose own traffic scores under this on its own
#: (stage 1), in a cluster whose other members score at least :data:`PEER_HARVEST` on theirs,
#: is not flagged: a customer who shares an office address, a proxy or a public scaffold with a
#: hydra is linked into its cluster and the peers' scores carry its risk up (own 0.001-0.04,
#: peers 0.99, risk 0.5-1.0: 9 such accounts on the 4M, 16M and seed 7/204 logs), while no
#: flagged campaign account on any benchmark world or replay step scored under 0.18 alone.
#: A cluster whose members all look ordinary on their own is still flagged on its coordination:
#: a tactic the scorer never saw looks ordinary account by account, and the coordination is then
#: the evidence.
MIN_OWN_SCORE = 0.1
PEER_HARVEST = 0.5
#: Reasons explain a risk: accounts calibrated below this get none (most legitimate accounts
#: calibrate to exactly 0, and sentences about their mildest features only mislead a reader).
#: It also spares the costliest step of scoring, per-feature contributions (TreeSHAP), for
#: accounts nobody will read about.
REASONS_MIN_RISK = 0.05
#: accounts turned into dicts at a time for reason sentences (bounded memory)
_REASON_SLICE = 8192


@dataclass
class Scored:
    """The prepared account table with risk, flagged, cluster_id, reasons and stage outputs."""

    accounts: pa.Table
    #: rows at or above :data:`REASONS_MIN_RISK`, and their stage-2 contributions (log-odds,
    #: bias last), in the same order
    explained: np.ndarray
    contributions: np.ndarray
    #: the log condition whose calibration map was asked for (:func:`condition_of`)
    condition: str | None = None


@dataclass
class Decision:
    """Detection's decision on a set of accounts and what it rests on (row-aligned)."""

    own_score: np.ndarray  # stage 1, on the account's own behaviour
    context: np.ndarray  # cluster features, one column per CLUSTER_FEATURES
    x2: np.ndarray  # stage 2's input: features then context
    risk: np.ndarray  # calibrated
    in_cluster: np.ndarray
    peer_score: np.ndarray  # the cluster peers' mean own score (cluster_peer_mean)
    flagged: np.ndarray


def decide(model: ScoringModel, accounts: list[str], x: np.ndarray, harvest_share: np.ndarray,
           n_exchanges: np.ndarray, n_harvest_like: np.ndarray, clustering: Clustering,
           condition: str | None) -> Decision:
    """Stage 1 → cluster context → stage 2 → the calibration map of the log's ``condition``
    → :func:`flag_rule`: what ``detect`` decides, and what the benchmarks judge a model by
    (:func:`antidistill.scoring.train.world_flags`)."""
    p1 = model.own_score(x)
    if len(accounts):
        c = cluster_features(accounts, p1, harvest_share, n_exchanges, clustering)
    else:
        c = np.zeros((0, len(CLUSTER_FEATURES)))
    x2 = np.hstack([x, c])
    risk = model.calibrate(model.raw_score(x2), condition)
    in_cluster = np.array([a in clustering.cluster_of for a in accounts], dtype=bool)
    peers = c[:, CLUSTER_FEATURES.index("cluster_peer_mean")]
    flagged = flag_rule(risk, model.threshold, in_cluster, n_harvest_like, p1, peers)
    return Decision(p1, c, x2, risk, in_cluster, peers, flagged)


def flag_rule(risk: np.ndarray, threshold: float, in_cluster: np.ndarray,
              n_harvest_like: np.ndarray, own_score: np.ndarray,
              peer_score: np.ndarray) -> np.ndarray:
    """Flag above ``threshold`` (a campaign account more likely than not: a calibration map's
    plateau at exactly 0.5 is a coin toss, not evidence), unless the account is
    :func:`neighbours` of harvesting peers; an account in no cluster also needs dataset-scale
    harvesting of its own (:data:`MIN_SOLO_HARVEST`, or :data:`MIN_SOLO_HARVEST_CERTAIN` at
    :data:`CERTAIN_RISK`)."""
    n = np.nan_to_num(np.asarray(n_harvest_like, dtype=np.float64))
    enough = (n >= MIN_SOLO_HARVEST) | ((n >= MIN_SOLO_HARVEST_CERTAIN) & (risk >= CERTAIN_RISK))
    return np.asarray((risk > threshold) & ~neighbours(own_score, peer_score)
                      & (in_cluster | enough), dtype=bool)


def neighbours(own_score: np.ndarray, peer_score: np.ndarray) -> np.ndarray:
    """Accounts that look nothing like their cluster's harvesting members: own (stage-1) score
    under :data:`MIN_OWN_SCORE` (unknown counts as none), the peers' mean at least
    :data:`PEER_HARVEST` (0 for an account in no cluster)."""
    own = np.nan_to_num(np.asarray(own_score, dtype=np.float64))
    peers = np.nan_to_num(np.asarray(peer_score, dtype=np.float64))
    return np.asarray((own < MIN_OWN_SCORE) & (peers >= PEER_HARVEST), dtype=bool)


def rule_sentences(risk: np.ndarray, threshold: float, in_cluster: np.ndarray,
                   n_harvest_like: np.ndarray, own_score: np.ndarray,
                   peer_score: np.ndarray, flagged: np.ndarray) -> dict[int, str]:
    """What the rules of :func:`flag_rule` decided, as a sentence, for each account above
    ``threshold`` that they held back or that stands in no cluster (by row): the score alone
    does not say why such an account is, or is not, flagged."""
    out: dict[int, str] = {}
    needed = (f"{MIN_SOLO_HARVEST} needed, or {MIN_SOLO_HARVEST_CERTAIN} at risk >= "
              f"{CERTAIN_RISK:g}")
    own = np.nan_to_num(np.asarray(own_score, dtype=np.float64))
    peers = np.nan_to_num(np.asarray(peer_score, dtype=np.float64))
    held = neighbours(own_score, peer_score)
    for i in np.flatnonzero(risk > threshold).tolist():
        n = int(np.nan_to_num(float(n_harvest_like[i])))
        if held[i]:
            out[i] = (f"not flagged: its own requests score {own[i]:.2f} ({MIN_OWN_SCORE:g} "
                      f"needed) against its cluster peers' {peers[i]:.2f}: it looks like a "
                      "neighbour of the harvesting accounts, not one of them")
        elif not in_cluster[i]:
            out[i] = (f"linked to no other account: flagged on its own {n:,} harvest-like "
                      f"requests ({needed})" if flagged[i] else
                      f"not flagged: linked to no other account and only {n:,} harvest-like "
                      f"requests ({needed})")
    return out


def score(prep: Prepared, model: ScoringModel) -> Scored:
    """Stage 1 → cluster context → stage 2 → isotonic calibration (the map for the log's
    absent columns, see :func:`~antidistill.scoring.model.condition_of`) → threshold →
    reasons."""
    ids = prep.account_ids
    condition = condition_of(prep.absent_columns)
    n_harvest = prep.column("n_harvest_like") if len(ids) else np.zeros(0)
    d = decide(model, ids, prep.matrix(), prep.column("share_harvest_like"),
               prep.column("n_exchanges"), n_harvest, prep.clustering, condition)
    risk, flagged = d.risk, d.flagged
    explained = np.flatnonzero(risk >= REASONS_MIN_RISK)
    contrib = model.contributions(d.x2[explained])
    table = prep.accounts
    table = table.append_column("own_score", pa.array(d.own_score, pa.float64()))
    for j, name in enumerate(CLUSTER_FEATURES):
        table = table.append_column(name, pa.array(d.context[:, j], pa.float64()))
    table = table.append_column("risk", pa.array(risk, pa.float64()))
    table = table.append_column("flagged", pa.array(flagged, pa.bool_()))
    table = table.append_column(
        "cluster_id", pa.array([prep.clustering.cluster_of.get(a) for a in ids], pa.string()))
    # rows as dicts in slices: a whole-table to_pylist() costs ~0.5 GB at 130k accounts
    reasons: list[list[str]] = [[] for _ in range(table.num_rows)]
    for start in range(0, len(explained), _REASON_SLICE):
        part = explained[start:start + _REASON_SLICE]
        rows = table.take(pa.array(part)).to_pylist()
        sentences = reasons_for(rows, contrib[start:start + _REASON_SLICE])
        for i, found in zip(part.tolist(), sentences, strict=True):
            reasons[i] = found
    for i, sentence in rule_sentences(risk, model.threshold, d.in_cluster, n_harvest,
                                      d.own_score, d.peer_score, flagged).items():
        reasons[i] = [*reasons[i], sentence]
    table = table.append_column("reasons", pa.array(reasons, pa.list_(pa.string())))
    return Scored(table, explained, contrib, condition)
