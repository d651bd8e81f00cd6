"""The two-stage scorer: training, calibration, save/load, reasons, the shipped model."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import networkx as nx
import numpy as np
import pyarrow as pa
import pytest

from antidistill.errors import ConfigError
from antidistill.features.accounts import FEATURES, feature_matrix
from antidistill.linking import KINDS
from antidistill.linking.communities import Clustering
from antidistill.scoring import STAGE2_FEATURES, ScoringModel
from antidistill.scoring.model import CLUSTER_FEATURES, cluster_features
from antidistill.scoring.reasons import SENTENCES, reasons_for
from antidistill.scoring.train import (
    HABIT_WORDING,
    WORDING_FEATURES,
    WorldData,
    habitually_asked,
    plainly_asked,
    train,
    worded_alike,
    world_flags,
    world_risk,
)
from test_detect_world import detected, trained  # noqa: F401


def test_model_roundtrip_and_calibration_is_monotone(trained: dict, tmp_path: Path) -> None:  # noqa: F811
    model = ScoringModel.load(trained["model"])
    assert np.all(np.diff(model.calib_y) >= 0)
    grid = np.linspace(-1, 2, 50)
    cal = model.calibrate(grid)
    assert np.all((cal >= 0) & (cal <= 1)) and np.all(np.diff(cal) >= 0)
    copy = tmp_path / "m.json"
    model.save(copy)
    again = ScoringModel.load(copy)
    x = np.random.default_rng(0).random((5, len(FEATURES)))
    assert np.allclose(model.own_score(x), again.own_score(x))


def test_contributions_sum_to_raw_score(trained: dict) -> None:  # noqa: F811
    model = ScoringModel.load(trained["model"])
    x2 = np.random.default_rng(1).random((4, len(STAGE2_FEATURES)))
    contrib = model.contributions(x2)
    raw = model.raw_score(x2)
    assert np.allclose(1 / (1 + np.exp(-contrib.sum(axis=1))), raw, atol=1e-6)


def test_world_flags_flag_what_detect_flags(trained: dict, detected: Path) -> None:  # noqa: F811
    """The benchmarks judge a model with ``world_flags`` on a prepared world; it must flag
    exactly what ``detect`` flags on the same log with the same model, from the same inputs to
    the decision rule (risk, cluster membership, harvest-like count, own and peer scores)."""
    import sys

    import pyarrow.parquet as pq

    from antidistill.scoring.score import flag_rule
    from antidistill.scoring.train import world_risk

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from train_scoring import world_data

    world = world_data(trained["world"], "w4")
    model = ScoringModel.load(trained["model"])
    table = pq.read_table(detected / "accounts.parquet")
    order = {a: i for i, a in enumerate(table.column("account_id").to_pylist())}
    assert sorted(order) == sorted(world.accounts)
    rows = np.array([order[a] for a in world.accounts])

    def col(name: str) -> np.ndarray:
        return table.column(name).to_numpy(zero_copy_only=False)[rows]

    flags = world_flags(model, world)
    assert flags.tolist() == col("flagged").tolist()
    assert 0 < flags.sum() < len(flags)
    assert np.allclose(world_risk(model, world), col("risk"), atol=1e-9)
    assert np.array_equal(np.rint(world.harvest * world.n_exchanges), col("n_harvest_like"))
    assert np.allclose(model.own_score(world.x), col("own_score"), atol=1e-6)
    in_cluster = np.array([c is not None for c in col("cluster_id")])
    again = flag_rule(col("risk"), model.threshold, in_cluster, col("n_harvest_like"),
                      col("own_score"), col("cluster_peer_mean"))
    assert again.tolist() == flags.tolist()


def test_bad_model_files_fail_clearly(tmp_path: Path) -> None:
    p = tmp_path / "m.json"
    p.write_text("{not json")
    with pytest.raises(ConfigError, match="invalid JSON"):
        ScoringModel.load(p)
    p.write_text(json.dumps({"format": "antidistill-scoring-v1", "features": ["x"]}))
    with pytest.raises(ConfigError, match="different feature set"):
        ScoringModel.load(p)
    with pytest.raises(ConfigError):
        ScoringModel.load(tmp_path / "missing.json")


def test_reasons_come_from_the_top_contributions() -> None:
    row = {"n_exchanges": 3100, "share_cot": 2950 / 3100, "share_max_tokens_hit": 0.9}
    contrib = np.zeros((1, len(STAGE2_FEATURES) + 1))
    contrib[0, STAGE2_FEATURES.index("share_cot")] = 2.0
    contrib[0, STAGE2_FEATURES.index("share_max_tokens_hit")] = 1.0
    contrib[0, STAGE2_FEATURES.index("log_exchanges")] = -3.0
    (reasons,) = reasons_for([row], contrib)
    assert reasons[0] == "2,950 of 3,100 requests ask for step-by-step reasoning"
    assert reasons[1].startswith("90% of responses")
    assert len(reasons) == 2  # negative contributions are not reasons


def test_cluster_context_carries_every_evidence_kind() -> None:
    """Each linking evidence kind reaches stage 2 as its own column, members only."""
    ev = {kind: (k + 1) / 100 for k, kind in enumerate(KINDS)}
    clustering = Clustering(cluster_of={"a": "K1", "b": "K1"}, members={"K1": ["a", "b"]},
                            graph=nx.Graph(), evidence={"K1": ev}, membership={"a": 0.5})
    c = cluster_features(["a", "b", "lone"], np.array([0.9, 0.2, 0.7]), np.ones(3),
                         np.array([10.0, 30.0, 5.0]), clustering)
    col = {name: j for j, name in enumerate(CLUSTER_FEATURES)}
    assert [c[0, col[f"ev_{kind}"]] for kind in KINDS] == list(ev.values())
    assert c[0, col["cluster_peer_mean"]] == pytest.approx(0.2)
    assert c[1, col["cluster_peer_max"]] == 0.9
    assert c[0, col["membership"]] == 0.5 and not c[2].any()


def test_feature_matrix_ignores_float_noise() -> None:
    """Last-bit differences of parallel float sums must not reach the model (reproducible
    training); real differences must."""
    base = {f: [0.1, 2.0 / 3.0] for f in FEATURES}
    noisy = {f: [0.1 + 1e-14, 2.0 / 3.0 - 3e-15] for f in FEATURES}
    moved = {f: [0.1 + 1e-6, 2.0 / 3.0] for f in FEATURES}
    m = [feature_matrix(pa.table(t)) for t in (base, noisy, moved)]
    assert np.array_equal(m[0], m[1]) and not np.array_equal(m[0], m[2])


def test_every_feature_has_a_sentence() -> None:
    missing = [f for f in STAGE2_FEATURES if f not in SENTENCES]
    # a few raw counts are deliberately left unexplained
    assert set(missing) <= {"active_days", "active_hours", "cap_concentration", "share_safety",
                            "share_image", "mean_messages", "share_not_ok",
                            "account_type_code"}


def test_shipped_model_loads_when_present() -> None:
    try:
        model = ScoringModel.load()
    except ConfigError as exc:
        pytest.skip(f"no shipped model yet: {exc}")
    assert model.meta.get("calib_seed") not in model.meta.get("train_seeds", [])
    assert 0 < model.threshold < 1


def _wording_world(seed: int, name: str) -> WorldData:
    """Campaign accounts that ask for chain-of-thought *and* collect many hard prompts."""
    rng = np.random.default_rng(seed)
    n = 400
    y = (np.arange(n) < 120).astype(np.float64)
    x = rng.normal(0.0, 0.1, (n, len(FEATURES)))
    col = {f: j for j, f in enumerate(FEATURES)}
    for f in WORDING_FEATURES:
        x[:, col[f]] = y
    x[:, col["log_harvest_like"]] = np.where(y > 0, rng.normal(3.0, 0.2, n),
                                             rng.normal(1.0, 0.4, n))
    ids = [f"{name}-{i}" for i in range(n)]
    return WorldData(name, ids, x, np.zeros(n), np.ones(n),
                     Clustering(cluster_of={}, members={}, graph=nx.Graph()), y)


def test_plainly_asked_zeroes_only_wording_and_only_for_campaign_accounts() -> None:
    world = _wording_world(1, "w")
    plain = plainly_asked(world)
    col = [FEATURES.index(f) for f in WORDING_FEATURES]
    other = [j for j in range(len(FEATURES)) if j not in col]
    pos = world.y > 0
    assert (plain.x[np.ix_(pos, col)] == 0).all()
    assert (plain.x[np.ix_(~pos, col)] == world.x[np.ix_(~pos, col)]).all()
    assert (plain.x[:, other] == world.x[:, other]).all()
    assert (world.x[np.ix_(pos, col)] == 1).all()  # the input is not modified
    assert plain.group == world.name


def test_habitually_asked_sets_wording_only_for_legitimate_accounts() -> None:
    world = _wording_world(1, "w")
    world.x[:, [FEATURES.index(f) for f in HABIT_WORDING]] *= 0.5  # legit at 0: to 0, pos to 0.5
    habit = habitually_asked(world)
    col = [FEATURES.index(f) for f in HABIT_WORDING]
    other = [j for j in range(len(FEATURES)) if j not in col]
    legit = world.y == 0
    assert (habit.x[np.ix_(legit, col)] == 1).all()
    assert (habit.x[np.ix_(~legit, col)] == world.x[np.ix_(~legit, col)]).all()
    assert (habit.x[:, other] == world.x[:, other]).all()
    assert (world.x[np.ix_(legit, col)] == 0).all()  # the input is not modified
    assert habit.group == world.name and habit.name == "w-habit"


def test_worded_alike_rewords_every_account_and_nothing_else() -> None:
    world = _wording_world(1, "w")
    wording = [FEATURES.index(f) for f in WORDING_FEATURES]
    habit = [FEATURES.index(f) for f in HABIT_WORDING]
    plain, always = worded_alike(world, habit=False), worded_alike(world, habit=True)
    assert (plain.x[:, wording] == 0).all()
    assert (always.x[:, habit] == 1).all()
    untouched = [j for j in wording if j not in habit]
    assert (always.x[:, untouched] == world.x[:, untouched]).all()
    for copy, cols in ((plain, wording), (always, habit)):
        other = [j for j in range(len(FEATURES)) if j not in cols]
        assert (copy.x[:, other] == world.x[:, other]).all()
        assert copy.group == world.name and (copy.y == world.y).all()
    assert (world.x[world.y > 0][:, wording] == 1).all()  # the input is not modified


def test_habit_copies_keep_wording_from_flagging_an_honest_habit() -> None:
    """Trained without the copies, a legitimate account that asks step by step every time
    scores as a campaign; with them its other evidence decides."""
    worlds = [_wording_world(s, f"w{s}") for s in (1, 2)]
    calib = _wording_world(3, "c")
    probe = habitually_asked(_wording_world(4, "p"))
    risk = {augment: world_risk(train(worlds, calib, augment=augment), probe)[probe.y == 0]
            for augment in (False, True)}
    assert np.median(risk[False]) > 0.5
    assert (risk[True] < 0.5).mean() > 0.95


def test_plainly_asked_copies_teach_the_evidence_behind_the_wording() -> None:
    """Trained on wording alone a harvester who asks plainly is missed; with the copies not."""
    worlds = [_wording_world(s, f"w{s}") for s in (1, 2)]
    calib = _wording_world(3, "c")
    probe = _wording_world(4, "p")
    risk = {}
    for augment in (False, True):
        model = train(worlds, calib, augment=augment)
        risk[augment] = world_risk(model, plainly_asked(probe))[probe.y > 0]
        assert model.meta["train_accounts"] == 800 * (3 if augment else 1)
    assert np.median(risk[False]) < 0.5
    assert (risk[True] >= 0.5).mean() > 0.95


def test_asking_for_reasoning_every_time_does_not_lower_a_harvesters_score() -> None:
    """Harvesters in training ask for reasoning on some requests, never all; an honest user
    with the habit asks on all. Copies that reworded only one side taught "always asks" as
    evidence of innocence (a harvester at share 1 scored 0.0, at 0.6 or 0 scored 1.0); with
    every account of a copy worded alike, both extremes are left to the other evidence."""

    def world(seed: int, name: str) -> WorldData:
        rng = np.random.default_rng(seed)
        n = 400
        y = (np.arange(n) < 120).astype(np.float64)
        x = rng.normal(0.0, 0.1, (n, len(FEATURES)))
        for f in HABIT_WORDING:
            x[:, FEATURES.index(f)] = np.where(y > 0, rng.uniform(0.3, 0.9, n),
                                               rng.uniform(0.0, 0.1, n))
        x[:, FEATURES.index("log_harvest_like")] = np.where(
            y > 0, rng.normal(1.6, 0.4, n), rng.normal(1.0, 0.4, n))
        return WorldData(name, [f"{name}-{i}" for i in range(n)], x, np.zeros(n), np.ones(n),
                         Clustering(cluster_of={}, members={}, graph=nx.Graph()), y)

    model = train([world(s, f"w{s}") for s in (1, 2)], world(3, "c"))
    probe = world(4, "p")
    pos = probe.y > 0
    cols = [FEATURES.index(f) for f in HABIT_WORDING]
    median = {}
    for share in (0.0, 1.0):
        x = probe.x.copy()
        x[np.ix_(pos, cols)] = share
        median[share] = float(np.median(world_risk(model, replace(probe, x=x))[pos]))
    assert median[1.0] >= 0.5
    assert abs(median[1.0] - median[0.0]) < 0.1
    legit = habitually_asked(probe)
    assert np.median(world_risk(model, legit)[probe.y == 0]) < 0.2


def test_condition_of_names_the_blind_calibration() -> None:
    from antidistill.scoring.model import condition_of

    assert condition_of([]) is None
    assert condition_of(["temperature", "input_tokens"]) is None  # read by no stage
    assert condition_of(["ip"]) == "identity"
    assert condition_of(["output_tokens", "status"]) == "usage"
    assert condition_of(["system_prompt"]) == "shape"
    assert condition_of(["account_created_at", "payment_fp"]) == "all"


def test_each_log_condition_gets_its_own_calibration(tmp_path: Path) -> None:
    worlds = [_wording_world(s, f"w{s}") for s in (1, 2)]
    calib = _wording_world(3, "c")
    # a condition where the same scores mean little: labels unrelated to the features
    noisy = _wording_world(5, "c-blind-usage")
    noisy.y = np.random.default_rng(0).permutation(noisy.y)
    model = train(worlds, calib, augment=False, conditions={"usage": noisy})
    probe = _wording_world(4, "p")
    full = world_risk(model, probe)
    usage = world_risk(model, probe, "usage")
    assert (full[probe.y > 0] >= 0.5).mean() > 0.95
    assert (usage[probe.y > 0] < 0.5).mean() > 0.95  # 30 % base rate, no signal
    assert np.array_equal(world_risk(model, probe, "shape"), full)  # no map: the full one
    assert model.meta["calibration_by_condition"] == {"usage": ["c-blind-usage"]}
    model.save(tmp_path / "m.json")
    again = ScoringModel.load(tmp_path / "m.json")
    assert np.array_equal(world_risk(again, probe, "usage"), usage)


def test_an_unlinked_account_needs_dataset_scale_evidence_unless_the_model_is_certain() -> None:
    from antidistill.scoring.score import (
        CERTAIN_RISK,
        MIN_SOLO_HARVEST,
        MIN_SOLO_HARVEST_CERTAIN,
        flag_rule,
    )

    risk = np.array([0.6, 0.6, CERTAIN_RISK, CERTAIN_RISK, 0.6, 0.4, 1.0, 0.5])
    in_cluster = np.array([False, False, False, False, True, True, False, True])
    n_harvest = np.array([MIN_SOLO_HARVEST, MIN_SOLO_HARVEST - 1, MIN_SOLO_HARVEST_CERTAIN,
                          MIN_SOLO_HARVEST_CERTAIN - 1, 0, 50, np.nan, 50])
    own, peers = np.full(len(risk), 0.9), np.where(in_cluster, 0.9, 0.0)
    assert flag_rule(risk, 0.5, in_cluster, n_harvest, own, peers).tolist() == [
        True,   # alone, dataset-scale
        False,  # alone, too little and the model is not certain
        True,   # alone, near-certain with half as many
        False,  # near-certain but too little
        True,   # linked: the cluster is the evidence
        False,  # linked but under the threshold
        False,  # unknown count is no evidence
        False,  # at the threshold: even odds are no verdict
    ]


def test_a_neighbour_of_harvesting_peers_is_not_flagged() -> None:
    """A customer linked into a hydra's cluster (a shared office address, a public scaffold)
    whose own traffic scores low stays unflagged, however high its harvesting peers carry its
    risk; a cluster whose members all look ordinary on their own is still flagged on its
    coordination (a tactic the scorer never saw)."""
    from antidistill.scoring.score import MIN_OWN_SCORE, PEER_HARVEST, flag_rule

    risk = np.array([1.0, 1.0, 1.0, 0.9, 0.95])
    in_cluster = np.array([True, True, True, True, False])
    n_harvest = np.array([15, 3, 15, 40, 40])
    own = np.array([0.02, MIN_OWN_SCORE, np.nan, 0.02, 0.05])
    peers = np.array([0.99, 0.99, PEER_HARVEST, PEER_HARVEST - 0.01, 0.0])
    assert flag_rule(risk, 0.5, in_cluster, n_harvest, own, peers).tolist() == [
        False,  # a neighbour: its peers harvest, it does not
        True,   # a quiet seat whose few requests look like harvesting
        False,  # unknown own score is no evidence beside harvesting peers
        True,   # every member looks ordinary alone: the coordination is the evidence
        True,   # alone: the solo rule decides, with dataset-scale harvesting
    ]


def test_the_rules_explain_themselves() -> None:
    from antidistill.scoring.score import flag_rule, rule_sentences

    risk = np.array([0.95, 0.6, 0.7, 0.95, 0.3, 0.99])
    in_cluster = np.array([False, False, False, True, False, True])
    n_harvest = np.array([6, 40, 7, 2, 50, 15])
    own = np.array([0.9, 0.9, 0.9, 0.9, 0.9, 0.02])
    peers = np.array([0.0, 0.0, 0.0, 0.9, 0.0, 0.99])
    flagged = flag_rule(risk, 0.5, in_cluster, n_harvest, own, peers)
    said = rule_sentences(risk, 0.5, in_cluster, n_harvest, own, peers, flagged)
    # linked and flagged, or under the threshold: the score says it all
    assert sorted(said) == [0, 1, 2, 5]
    rule = "(10 needed, or 5 at risk >= 0.9)"
    assert said[0] == ("linked to no other account: flagged on its own 6 harvest-like "
                       f"requests {rule}")
    assert said[1].startswith("linked to no other account: flagged on its own 40 ")
    assert said[2] == ("not flagged: linked to no other account and only 7 harvest-like "
                       f"requests {rule}")
    assert said[5] == ("not flagged: its own requests score 0.02 (0.1 needed) against its "
                       "cluster peers' 0.99: it looks like a neighbour of the harvesting "
                       "accounts, not one of them")
