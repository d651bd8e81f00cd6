"""Radioactivity end to end: a student fine-tuned on watermarked outputs is caught, a control
student fine-tuned on the same teacher's unwatermarked outputs is not.

Teacher: a randomly initialised tiny GPT-2 over a BPE vocabulary trained on the vendored corpora;
students: fresh tiny GPT-2s trained on the teacher's outputs. Open-weights contexts are real
corpus prompts, independent of the key, so H0 is exact for the control.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from antidistill.watermark import tinymodels as tm  # noqa: E402
from antidistill.watermark.greenlist import WatermarkConfig  # noqa: E402
from antidistill.watermark.keys import WatermarkKey, watermark_key  # noqa: E402
from antidistill.watermark.processors import WatermarkLogitsProcessor  # noqa: E402
from antidistill.watermark.radioactivity import blackbox_test, open_weights_test  # noqa: E402

CFG = WatermarkConfig(gamma=0.25, delta=4.0, context_width=1)
N_PROMPTS, NEW_TOKENS, STEPS = 240, 56, 120


@dataclass
class World:
    key: WatermarkKey
    prompts: list[list[int]]
    contexts: list[list[int]]
    marked_student: torch.nn.Module
    control_student: torch.nn.Module


def _student(vocab: int, prompts: list[list[int]], outputs: list[list[int]]) -> torch.nn.Module:
    model = tm.tiny_gpt2(vocab, n_embd=64, n_layer=1, seed=2)
    tm.train_lm(model, [p + o for p, o in zip(prompts, outputs, strict=True)], steps=STEPS,
                batch_size=32, seq_len=64, lr=1e-2, seed=3)
    return model


@pytest.fixture(scope="session")
def world() -> World:
    torch.set_num_threads(1)
    texts = tm.corpus_texts(["arena_hard", "mt_bench", "gsm8k"])
    tok = tm.train_tokenizer(texts[::4], vocab_size=300)
    vocab = len(tok)
    encoded = tok(texts[1::4], add_special_tokens=False)["input_ids"]
    prompts = [ids[:6] for ids in encoded if len(ids) >= 6][:N_PROMPTS]
    contexts = [ids[:64] for ids in encoded[-400:] if len(ids) >= 16][:120]
    teacher = tm.tiny_gpt2(vocab, n_embd=32, n_layer=1, seed=0)
    key = watermark_key("provider-secret", "hydra-account-17", epoch=3)
    marked = tm.sample(teacher, prompts, NEW_TOKENS,
                       processor=WatermarkLogitsProcessor(key, CFG), seed=1)
    plain = tm.sample(teacher, prompts, NEW_TOKENS, seed=1)
    return World(key, prompts, contexts, _student(vocab, prompts, marked),
                 _student(vocab, prompts, plain))


def test_open_weights_test_catches_the_marked_student_only(world: World) -> None:
    marked = open_weights_test(world.marked_student, world.contexts, world.key, CFG, top_k=1)
    control = open_weights_test(world.control_student, world.contexts, world.key, CFG, top_k=1)
    assert marked.method == "open-weights" and marked.n_texts == len(world.contexts)
    assert marked.n_scored > 500 and control.n_scored > 500
    assert marked.p_value < 1e-6 and marked.green_fraction > CFG.gamma + 0.05
    assert control.p_value > 1e-3
    # a different account's key finds nothing in the marked student either
    other = open_weights_test(world.marked_student, world.contexts,
                              watermark_key("provider-secret", "someone-else", 3), CFG)
    assert other.p_value > 1e-3


def test_blackbox_test_catches_the_marked_student_only(world: World) -> None:
    gens = {name: tm.sample(model, world.prompts[:100], 40, seed=5)
            for name, model in (("marked", world.marked_student),
                                ("control", world.control_student))}
    marked = blackbox_test(gens["marked"], world.key, CFG)
    control = blackbox_test(gens["control"], world.key, CFG)
    assert marked.n_texts == 100 and marked.n_tokens == 100 * 39
    assert marked.p_value < 1e-6 and control.p_value > 1e-3


def test_repeated_generations_add_no_evidence(world: World) -> None:
    gens = tm.sample(world.marked_student, world.prompts[:20], 40, seed=6)
    once = blackbox_test(gens, world.key, CFG)
    again = blackbox_test(gens * 5, world.key, CFG)
    assert (again.n_scored, again.n_green, again.p_value) == (once.n_scored, once.n_green,
                                                              once.p_value)
    assert again.n_tokens == 5 * once.n_tokens


def test_open_weights_drops_pairs_copied_from_the_context(world: World) -> None:
    ctx = [list(np.tile(c[:8], 6)) for c in world.contexts[:20]]
    kept = open_weights_test(world.control_student, ctx, world.key, CFG, top_k=3)
    allp = open_weights_test(world.control_student, ctx, world.key, CFG, top_k=3,
                             exclude_context_pairs=False)
    assert kept.n_scored < allp.n_scored
