"""The shipped two-stage scorer: account behaviour → cluster context → calibrated risk.

Stage 1 (LightGBM) scores each account on its own behaviour. Stage 2 (LightGBM) adds what its
cluster looks like — peers' stage-1 scores, how firmly it belongs, which coordination evidence
binds the cluster — so a hydra's quiet, low-volume accounts are scored with their cluster. An
isotonic map fitted on a separate calibration world turns stage 2's output into a probability
(risk ≈ 0.8 means about 80% of such accounts are campaign accounts on the benchmark worlds).
The model file is JSON: LightGBM model strings, the isotonic knots, the threshold and provenance.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

from antidistill.errors import ConfigError
from antidistill.features.accounts import FEATURE_DECIMALS, FEATURES
from antidistill.linking import KINDS
from antidistill.linking.communities import Clustering
from antidistill.schema import COLUMN_GROUPS

MODEL_FILE = "scoring_v1.json"
#: cluster context: peers, membership, harvest share, and the weight of every evidence kind
#: that binds the cluster (``ev_<kind>`` for each of :data:`antidistill.linking.KINDS`)
CLUSTER_FEATURES: tuple[str, ...] = (
    "cluster_log_size", "cluster_peer_mean", "cluster_peer_max", "cluster_peer_q75",
    "membership", "cluster_harvest_share", *(f"ev_{kind}" for kind in KINDS),
)
STAGE2_FEATURES: tuple[str, ...] = (*FEATURES, *CLUSTER_FEATURES)
#: optional columns no detection stage reads (their absence changes nothing)
UNREAD_COLUMNS = frozenset({"input_tokens", "temperature"})

PARAMS: dict[str, Any] = {
    "objective": "binary", "learning_rate": 0.05, "num_leaves": 15, "min_data_in_leaf": 10,
    "feature_fraction": 0.8, "bagging_fraction": 0.8, "bagging_freq": 1, "lambda_l2": 1.0,
    "seed": 0, "deterministic": True, "force_row_wise": True, "num_threads": 2, "verbose": -1,
}
ROUNDS = 300


def condition_of(absent: Iterable[str]) -> str | None:
    """The log condition a run is calibrated for: None for a full log, the name of the one
    group of :data:`~antidistill.schema.COLUMN_GROUPS` with an absent column, or ``"all"``
    when several groups are (a key of :data:`~antidistill.schema.BLIND_VARIANTS`, the reduced
    logs the scorer was calibrated on)."""
    gone = set(absent) - UNREAD_COLUMNS
    hit = [g for g, cols in COLUMN_GROUPS.items() if gone.intersection(cols)]
    if not hit:
        return None
    return hit[0] if len(hit) == 1 else "all"


def cluster_features(accounts: list[str], p1: np.ndarray, harvest: np.ndarray,
                     n_exchanges: np.ndarray, clustering: Clustering) -> np.ndarray:
    """Per-account cluster context (zeros for accounts in no cluster), rounded like the account
    features (:data:`~antidistill.features.accounts.FEATURE_DECIMALS`) so that last-bit noise
    of float sums cannot reach the model."""
    index = {a: i for i, a in enumerate(accounts)}
    out = np.zeros((len(accounts), len(CLUSTER_FEATURES)))
    col = {name: j for j, name in enumerate(CLUSTER_FEATURES)}
    for cid, members in clustering.members.items():
        idx = np.array([index[m] for m in members if m in index], dtype=np.int64)
        if len(idx) == 0:
            continue
        scores = p1[idx]
        ev = clustering.evidence.get(cid, {})
        vol = n_exchanges[idx]
        share = float((harvest[idx] * vol).sum() / max(vol.sum(), 1.0))
        total = scores.sum()
        for pos, i in enumerate(idx):
            peers = np.delete(scores, pos)
            out[i, col["cluster_log_size"]] = np.log10(len(idx))
            out[i, col["cluster_peer_mean"]] = (total - scores[pos]) / max(len(peers), 1)
            out[i, col["cluster_peer_max"]] = peers.max() if len(peers) else 0.0
            out[i, col["cluster_peer_q75"]] = np.quantile(peers, 0.75) if len(peers) else 0.0
            out[i, col["membership"]] = clustering.membership.get(accounts[i], 0.0)
            out[i, col["cluster_harvest_share"]] = share
            for kind in KINDS:
                out[i, col[f"ev_{kind}"]] = ev.get(kind, 0.0)
    return np.round(out, FEATURE_DECIMALS)


@dataclass
class ScoringModel:
    """Two boosters, isotonic calibrations and the flag threshold.

    ``calib_x``/``calib_y`` calibrate full logs; ``conditions`` holds one more map per log
    condition (:func:`condition_of`): the same raw score means a different share of campaign
    accounts when a log lacks, say, its token counts, so each is calibrated on its own copies.
    """

    stage1: lgb.Booster
    stage2: lgb.Booster
    calib_x: np.ndarray
    calib_y: np.ndarray
    threshold: float = 0.5
    meta: dict[str, Any] = field(default_factory=dict)
    conditions: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def own_score(self, x: np.ndarray) -> np.ndarray:
        """Stage 1: probability from the account's own behaviour."""
        if len(x) == 0:
            return np.zeros(0)
        return np.asarray(self.stage1.predict(x), dtype=np.float64)

    def raw_score(self, x2: np.ndarray) -> np.ndarray:
        if len(x2) == 0:
            return np.zeros(0)
        return np.asarray(self.stage2.predict(x2), dtype=np.float64)

    def calibrate(self, raw: np.ndarray, condition: str | None = None) -> np.ndarray:
        """Risk from stage 2's output, with the map of ``condition`` when the model has one."""
        x, y = self.conditions.get(condition or "", (self.calib_x, self.calib_y))
        return np.clip(np.interp(raw, x, y), 0.0, 1.0)

    def contributions(self, x2: np.ndarray) -> np.ndarray:
        """SHAP-like per-feature contributions (log-odds) of stage 2; last column is bias."""
        if len(x2) == 0:
            return np.zeros((0, len(STAGE2_FEATURES) + 1))
        return np.asarray(self.stage2.predict(x2, pred_contrib=True), dtype=np.float64)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "antidistill-scoring-v1",
            "features": list(FEATURES),
            "stage2_features": list(STAGE2_FEATURES),
            "stage1": self.stage1.model_to_string(),
            "stage2": self.stage2.model_to_string(),
            "calibration": {"x": self.calib_x.tolist(), "y": self.calib_y.tolist()},
            "calibration_by_condition": {k: {"x": x.tolist(), "y": y.tolist()}
                                         for k, (x, y) in self.conditions.items()},
            "threshold": self.threshold,
            "meta": self.meta,
        }

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=1), encoding="utf-8")

    @classmethod
    def from_json(cls, data: dict[str, Any], *, where: str) -> ScoringModel:
        if data.get("format") != "antidistill-scoring-v1":
            raise ConfigError("not an antidistill scoring model", where=where, field="format")
        if tuple(data.get("features", ())) != FEATURES or tuple(
                data.get("stage2_features", ())) != STAGE2_FEATURES:
            raise ConfigError("model was trained on a different feature set; retrain it with "
                              "benchmarks/train_scoring.py", where=where, field="features")
        return cls(
            stage1=lgb.Booster(model_str=data["stage1"]),
            stage2=lgb.Booster(model_str=data["stage2"]),
            calib_x=np.asarray(data["calibration"]["x"], dtype=np.float64),
            calib_y=np.asarray(data["calibration"]["y"], dtype=np.float64),
            threshold=float(data["threshold"]),
            meta=dict(data.get("meta", {})),
            conditions={k: (np.asarray(v["x"], dtype=np.float64),
                            np.asarray(v["y"], dtype=np.float64))
                        for k, v in data.get("calibration_by_condition", {}).items()},
        )

    @classmethod
    def load(cls, path: Path | None = None) -> ScoringModel:
        """Load ``path`` or the model shipped in ``antidistill/data/models``."""
        if path is None:
            ref = resources.files("antidistill") / "data" / "models" / MODEL_FILE
            if not ref.is_file():
                raise ConfigError("no trained scoring model is shipped; run "
                                  "benchmarks/train_scoring.py", where=str(ref))
            text, where = ref.read_text(encoding="utf-8"), str(ref)
        else:
            try:
                text, where = path.read_text(encoding="utf-8"), str(path)
            except OSError as exc:
                raise ConfigError(f"cannot read model: {exc.strerror}", where=str(path)) from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"invalid JSON at line {exc.lineno}", where=where) from exc
        return cls.from_json(data, where=where)


def fit_booster(x: np.ndarray, y: np.ndarray, names: tuple[str, ...]) -> lgb.Booster:
    """One deterministic LightGBM fit (shared by training and its tests)."""
    data = lgb.Dataset(x, label=y, feature_name=list(names), free_raw_data=False)
    return lgb.train(PARAMS, data, num_boost_round=ROUNDS)
