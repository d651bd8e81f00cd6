"""Request-level features: contract, robustness, classifier floors on unseen phrasings, rules."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from antidistill import corpora
from antidistill.errors import SchemaError
from antidistill.features import training
from antidistill.features.requests import CAPABILITIES, OUTPUT_SCHEMA, request_features
from antidistill.fingerprint import TRIVIAL_TEMPLATE_HASH

GSM = [p.text for p in corpora.load("gsm8k")[100:140]]
ARENA = [p.text for p in corpora.load("arena_hard")[:40]]


def _table(prompts: list[str | None], **cols: list) -> pa.Table:  # type: ignore[type-arg]
    n = len(prompts)
    data = {
        "request_id": [f"r{k}" for k in range(n)],
        "prompt": pa.array(prompts, pa.string()),
        "system_prompt": pa.array(cols.pop("system_prompt", [None] * n), pa.string()),
        "n_tools": pa.array(cols.pop("n_tools", [None] * n), pa.int32()),
        "has_image": pa.array(cols.pop("has_image", [None] * n), pa.bool_()),
        "model": pa.array(["m"] * n),
    }
    return pa.table(data)


@pytest.fixture(scope="module")
def held_out() -> dict[str, float]:
    model = training.load()
    return training.evaluate(model, training.make_examples(held_out=True, n=3000))


def test_output_contract_row_aligned_with_nulls_and_odd_text() -> None:
    prompts: list[str | None] = [None, "", "  ", "请一步一步地推理并给出答案。", "🙂" * 100,
                                 "word " * 200_000, "thanks", GSM[0]]
    t = request_features(_table(prompts))
    assert t.schema.equals(OUTPUT_SCHEMA)
    assert t.num_rows == len(prompts)
    assert t["request_id"].to_pylist() == [f"r{k}" for k in range(len(prompts))]
    assert set(t["capability"].to_pylist()) <= set(CAPABILITIES)
    for name in ("capability", "p_cot", "p_rubric", "p_rewrite", "template_hash", "content_hash",
                 "family_id"):
        assert t[name].null_count == 0, name
    for name in ("p_cot", "p_rubric", "p_rewrite"):
        values = np.asarray(t[name])
        assert ((values >= 0) & (values <= 1)).all()
    assert t["capability"].to_pylist()[:3] == ["other"] * 3


def test_minimal_and_empty_tables() -> None:
    only_prompt = pa.table({"prompt": pa.array(["Solve 2+2. Show your work.", None])})
    t = request_features(only_prompt)
    assert t.num_rows == 2 and t["request_id"].null_count == 2
    assert request_features(_table([])).num_rows == 0
    with pytest.raises(SchemaError, match="prompt"):
        request_features(pa.table({"request_id": ["a"]}))
    with pytest.raises(SchemaError, match="n_tools"):
        request_features(pa.table({"prompt": ["x"], "n_tools": [[1, 2]]}))


def test_held_out_phrasings_reach_floors(held_out: dict[str, float]) -> None:
    # unseen phrasings, unseen frames and unseen corpus payloads (see training.make_examples)
    print(held_out)
    assert held_out["cot_auc"] >= 0.95
    assert held_out["rubric_auc"] >= 0.97
    assert held_out["rewrite_auc"] >= 0.97
    assert held_out["cot_fpr"] <= 0.08 and held_out["rubric_fpr"] <= 0.02
    assert held_out["rewrite_fpr"] <= 0.02
    assert held_out["capability_accuracy"] >= 0.75


def test_fresh_paraphrases_not_in_any_bank() -> None:
    cot = ["Can you go through this slowly, showing me each move you make? ",
           "I need all the intermediate reasoning written out, then the result. ",
           "Reason it through step by step before you answer: ",
           "Please explain your thinking at each stage and show your calculations. ",
           "Show all the steps you take to get the answer. "]
    rubric = ["Score the reply below between 1 and 10 and justify the score.",
              "Act as a judge: which of the two answers is better, A or B?",
              "Grade the student's solution according to the rubric; output a number."]
    rewrite = ["Rewrite the text so that it would not be flagged by the censors.",
               "Please rephrase this so it removes anything politically sensitive."]
    rows = [c + GSM[k] for k, c in enumerate(cot)]
    rows += [f"{r}\nQuestion: {GSM[10 + k]}\nAnswer: 42" for k, r in enumerate(rubric)]
    rows += [f"{r}\n{ARENA[k]}" for k, r in enumerate(rewrite)]
    plain = GSM[20:30] + ARENA[10:20]
    t = request_features(_table(rows + plain))
    p_cot, p_rub, p_rew = (np.asarray(t[c]) for c in ("p_cot", "p_rubric", "p_rewrite"))
    assert (p_cot[:5] >= 0.5).sum() >= 4
    assert (p_rub[5:8] >= 0.5).sum() >= 2
    assert (p_rew[8:10] >= 0.5).all()
    assert (p_cot[10:] < 0.5).mean() >= 0.9
    assert (p_rub[10:] < 0.5).all() and (p_rew[10:] < 0.5).all()
    caps = t["capability"].to_pylist()
    assert caps[5:8].count("grading") >= 2 and caps[8:10] == ["rewrite", "rewrite"]
    assert caps[10:20].count("reasoning") >= 8


def test_system_prompt_asks_count_and_tools_images_set_capability() -> None:
    prompts = [GSM[0], GSM[1], "What's in this folder?", "Click the Save button.",
               "Click the Save button.", "hello"]
    t = request_features(_table(
        prompts,
        system_prompt=["You are a tutor. Always show your full reasoning step by step.", None,
                       None, None, None, None],
        n_tools=[0, 0, 3, 0, 0, 0],
        has_image=[False, False, False, True, False, False]))
    p_cot = np.asarray(t["p_cot"])
    assert p_cot[0] >= 0.5 > p_cot[1]
    caps = t["capability"].to_pylist()
    assert caps[0] == caps[1] == "reasoning"
    assert caps[2] == "tool_use"
    assert caps[3] == "computer_use"
    assert caps[4] != "computer_use"  # the words alone, without a screen or a computer tool


def test_fingerprint_columns_follow_the_fingerprint_stage() -> None:
    wrapper = "Work through this one step at a time.\nProblem {k}: {p}\nFinal answer in a box."
    rows = [wrapper.replace("{p}", p).replace("{k}", str(k)) for k, p in enumerate(GSM[:20])]
    t = request_features(_table(rows + GSM[:5]))
    tpl = np.asarray(t["template_hash"])
    content = np.asarray(t["content_hash"])
    assert len(set(tpl[:20])) == 1 and tpl[0] != TRIVIAL_TEMPLATE_HASH
    assert set(tpl[20:]) == {TRIVIAL_TEMPLATE_HASH}
    assert (content[:5] == content[20:]).all()
    assert t.schema.field("family_id").type == pa.int64()


def test_shipped_model_is_small_and_trained_from_current_banks() -> None:
    path = training.default_path()
    assert path.exists() and path.stat().st_size < 2_000_000
    model = training.load()
    assert model.classes == CAPABILITIES
    train_set = training.make_examples(held_out=False, n=training.N_TRAIN)
    assert model.fingerprint == training.examples_fingerprint(train_set), (
        "phrase banks or example generation changed: run python -m antidistill.features.training")


@pytest.mark.slow
def test_retrain_reproduces_shipped_model(tmp_path: Path) -> None:
    out = tmp_path / "clf.npz"
    assert training.main([str(out)]) == 0
    fresh, shipped = training.load(out), training.load()
    texts = pa.array([e.text for e in training.make_examples(held_out=True, n=500)])
    a, b = fresh.score_texts(texts), shipped.score_texts(texts)
    assert np.abs(a[0] - b[0]).max() < 0.02 and np.abs(a[1] - b[1]).max() < 0.02


def test_repeated_calls_reuse_scores_and_agree() -> None:
    rows = [f"Show your work. {p}" for p in GSM[:10]] + ARENA[:10]
    first = request_features(_table(rows))
    again = request_features(_table(list(reversed(rows))))  # served from the score cache
    for name in ("p_cot", "p_rubric", "p_rewrite", "capability"):
        assert first[name].to_pylist() == list(reversed(again[name].to_pylist())), name


def test_capability_with_safety_rule_on_held_out() -> None:
    from antidistill.features.requests import _text_capability

    model = training.load()
    examples = [e for e in training.make_examples(held_out=True, n=3000) if e.capability]
    _, cap = model.score_texts(pa.array([e.text for e in examples]))
    truth = np.array([CAPABILITIES.index(e.capability) for e in examples])
    raw = (cap.argmax(axis=1) == truth).mean()
    ruled = (_text_capability(cap) == truth).mean()
    assert ruled >= 0.8 and ruled >= raw - 0.005


def test_score_cache_gives_the_same_scores_as_a_cold_run() -> None:
    from antidistill.features import requests

    rows = [f"Show your work. {p}" for p in GSM[:10]] + ARENA[:10] + ["thanks"] * 3
    requests._cache.clear()  # cold
    cold = request_features(_table(rows))
    assert len(requests._cache.keys) > 0
    warm = request_features(_table(rows))
    for name in OUTPUT_SCHEMA.names:
        assert cold[name].equals(warm[name]), name


def test_chunked_columns_give_the_same_features() -> None:
    rows = [f"Problem {k}. Think step by step.\n{p}" for k, p in enumerate(GSM[:12])] + ARENA[:6]
    table = _table(rows, system_prompt=["You are a tutor."] * 9 + [None] * 9)
    chunked = pa.Table.from_batches(table.to_batches(max_chunksize=5))
    a, b = request_features(table), request_features(chunked)
    for name in OUTPUT_SCHEMA.names:
        assert a[name].to_pylist() == b[name].to_pylist(), name
