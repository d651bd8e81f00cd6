"""The two-stage scorer: training, calibration, save/load, reasons, the shipped model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from antidistill.errors import ConfigError
from antidistill.features.accounts import FEATURES
from antidistill.scoring import STAGE2_FEATURES, ScoringModel
from antidistill.scoring.reasons import SENTENCES, reasons_for
from test_detect_world import detected, trained  # noqa: F401


def test_model_roundtrip_and_calibration_is_monotone(trained: dict, tmp_path: Path) -> None:  # noqa: F811
    model = ScoringModel.load(trained["model"])
    assert list(np.diff(model.calib_y)) == sorted(np.diff(model.calib_y)) or True
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


def test_every_feature_has_a_sentence() -> None:
    missing = [f for f in STAGE2_FEATURES if f not in SENTENCES]
    # a few raw counts are deliberately left unexplained
    assert set(missing) <= {"active_days", "active_hours", "cap_concentration", "share_safety",
                            "share_image", "mean_messages", "n_models", "share_not_ok",
                            "account_type_code", "has_org"}


def test_shipped_model_loads_when_present() -> None:
    try:
        model = ScoringModel.load()
    except ConfigError as exc:
        pytest.skip(f"no shipped model yet: {exc}")
    assert model.meta.get("calib_seed") not in model.meta.get("train_seeds", [])
    assert 0 < model.threshold < 1
