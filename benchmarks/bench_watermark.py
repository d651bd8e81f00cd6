"""Watermark benchmark: evidence needed, attribution among 25,000 accounts, false attribution on
real corpus text, quality impact, detector throughput, radioactivity power vs data share.

Run by hand (CPU only, no downloads, a few minutes):

    .venv/bin/python benchmarks/bench_watermark.py [--quick] [--out PATH]

Writes ``benchmarks/results/watermark.json``. Timings are compared against baselines measured in
the same run (a per-key Python loop and un-chunked numpy hashing), never against fixed numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import binom

from antidistill.watermark import tinymodels as tm
from antidistill.watermark.attribute import attribute_tokens
from antidistill.watermark.detect import score_tokens
from antidistill.watermark.greenlist import WatermarkConfig, is_green, splitmix64, unique_pairs
from antidistill.watermark.keys import KeyRing, watermark_key
from antidistill.watermark.processors import WatermarkLogitsProcessor
from antidistill.watermark.radioactivity import blackbox_test, open_weights_test

OUT = Path(__file__).parent / "results" / "watermark.json"
SECRET = "bench-master-secret"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def tokens_to_significance(seqs: list[list[int]], key: Any, cfg: WatermarkConfig,
                           level: float = 1e-6, step: int = 5) -> list[int | None]:
    """Smallest prefix length (in tokens) at which the exact p-value drops below ``level``."""
    out: list[int | None] = []
    for s in seqs:
        hit = None
        for n in range(step, len(s) + 1, step):
            if score_tokens(s[:n], key, cfg).p_value < level:
                hit = n
                break
        out.append(hit)
    return out


def summary(xs: list[float]) -> dict[str, float]:
    arr = np.asarray(xs, dtype=float)
    return {"median": float(np.median(arr)), "p90": float(np.percentile(arr, 90)),
            "min": float(arr.min()), "max": float(arr.max())}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller sizes (smoke run)")
    ap.add_argument("--clean", type=int, default=0,
                    help="unwatermarked corpus texts for the false-attribution rate "
                    "(default 300 with --quick, else 2000)")
    ap.add_argument("--out", type=Path, default=OUT, help="where to write the JSON results")
    args = ap.parse_args()
    q = args.quick
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    res: dict[str, Any] = {"env": {"python": platform.python_version(), "cpus": os.cpu_count(),
                                   "loadavg_start": os.getloadavg()[0], "quick": q}}
    t_all = time.perf_counter()

    # --- local models: tokenizer + teacher + independent reference model, trained on corpora
    texts = tm.corpus_texts()
    tok = tm.train_tokenizer(texts[::4], vocab_size=1024)
    vocab = len(tok)
    enc = tok(texts, add_special_tokens=False)["input_ids"]
    train_a, train_b, held = enc[0::3], enc[1::3], enc[2::3]
    steps = 100 if q else 400
    teacher = tm.tiny_gpt2(vocab, n_positions=320, n_embd=64, n_layer=2, seed=0)
    loss_t = tm.train_lm(teacher, train_a, steps=steps, batch_size=16, seq_len=64, lr=3e-3)
    reference = tm.tiny_gpt2(vocab, n_positions=320, n_embd=64, n_layer=2, seed=1)
    loss_r = tm.train_lm(reference, train_b, steps=steps, batch_size=16, seq_len=64, lr=3e-3,
                         seed=1)
    res["models"] = {"vocab": vocab, "steps": steps, "teacher_final_loss": loss_t[-1],
                     "reference_final_loss": loss_r[-1], "n_embd": 64, "n_layer": 2}
    log(f"models trained (teacher loss {loss_t[-1]:.2f}, reference {loss_r[-1]:.2f})")

    prompts = [s[:8] for s in held if len(s) >= 8]
    key = watermark_key(SECRET, "acct-000001", 0)

    # --- evidence needed + quality impact
    n_gen, gen_len = (16, 200) if q else (40, 300)  # gen_len + 8 <= n_positions
    plain = tm.sample(teacher, prompts[:n_gen], gen_len, seed=11)
    ppl_plain = tm.perplexity(reference, prompts[:n_gen], plain)
    res["evidence_and_quality"] = {"reference_ppl_unwatermarked": ppl_plain, "by_delta": {}}
    for delta in (1.0, 2.0, 4.0):
        cfg = WatermarkConfig(gamma=0.25, delta=delta)
        marked = tm.sample(teacher, prompts[:n_gen], gen_len,
                           processor=WatermarkLogitsProcessor(key, cfg), seed=11)
        need = tokens_to_significance(marked, key, cfg)
        reached = [n for n in need if n is not None]
        ppl = tm.perplexity(reference, prompts[:n_gen], marked)
        res["evidence_and_quality"]["by_delta"][str(delta)] = {
            "gamma": 0.25, "texts": n_gen, "max_tokens": gen_len,
            "share_reaching_p<1e-6": len(reached) / len(need),
            "tokens_to_p<1e-6": summary([float(n) for n in reached]) if reached else None,
            "green_fraction": float(np.mean([score_tokens(m, key, cfg).green_fraction
                                             for m in marked])),
            "reference_ppl": ppl, "ppl_change_pct": 100 * (ppl / ppl_plain - 1)}
        row = res["evidence_and_quality"]["by_delta"][str(delta)]
        log(f"delta={delta}: tokens to p<1e-6 {row['tokens_to_p<1e-6']}, "
            f"ppl {ppl_plain:.1f}->{ppl:.1f}")

    # --- attribution among 25,000 accounts (current + previous epoch)
    cfg = WatermarkConfig(gamma=0.25, delta=2.0)
    n_accounts = 25_000
    accounts = [f"acct-{i:06d}" for i in range(n_accounts)]
    t = time.perf_counter()
    ring2 = KeyRing.build(SECRET, accounts, epochs=(7, 6))
    ring1 = KeyRing.build(SECRET, accounts, epochs=(7,))
    keyring_s = time.perf_counter() - t
    rng = np.random.default_rng(5)
    n_leaks = 30 if q else 60
    who = rng.choice(n_accounts, n_leaks, replace=False)
    eps = rng.choice([7, 6], n_leaks)
    keys = [watermark_key(SECRET, accounts[i], int(e)) for i, e in zip(who, eps, strict=True)]
    leak_prompts = [prompts[200 + i] for i in range(n_leaks)]
    leaks = tm.sample(teacher, leak_prompts, 200, processor=WatermarkLogitsProcessor(keys, cfg),
                      seed=13)
    correct, adj_ps, lat1, lat2 = 0, [], [], []
    for k, toks in zip(keys, leaks, strict=True):
        t = time.perf_counter()
        attribute_tokens(toks, ring1, cfg, alpha=1e-6)
        lat1.append(time.perf_counter() - t)
        t = time.perf_counter()
        a = attribute_tokens(toks, ring2, cfg, alpha=1e-6)
        lat2.append(time.perf_counter() - t)
        best = a.candidates[0]
        adj_ps.append(best.p_adjusted)
        ok = (best.account_id, best.epoch) == (k.account_id, k.epoch) and best.significant
        correct += ok and len(a.attributed) == 1
    # in-run baselines for 200 tokens x 25,000 keys
    toks = leaks[0]
    pairs = unique_pairs(toks, 1)
    sub = 500
    t = time.perf_counter()
    for s in ring1.seeds[:sub]:
        g = int(is_green(int(s), pairs, cfg).sum())
        binom.sf(g - 1, pairs.size, cfg.gamma)
    loop_s = (time.perf_counter() - t) * n_accounts / sub
    naive = []
    for _ in range(5):
        t = time.perf_counter()
        z = splitmix64(ring1.seeds[:, None] ^ pairs[None, :])  # un-chunked, allocating
        counts = (z < cfg.threshold).sum(axis=1)
        binom.sf(counts - 1, pairs.size, cfg.gamma)
        naive.append(time.perf_counter() - t)
    res["attribution"] = {
        "accounts": n_accounts, "leaked_texts": n_leaks, "tokens_per_text": 200,
        "delta": 2.0, "gamma": 0.25, "method": "holm", "alpha": 1e-6,
        "accuracy_top1_significant_unique": correct / n_leaks,
        "best_adjusted_p": summary([float(p) for p in adj_ps]),
        "latency_ms_25k_keys_one_epoch": summary([1e3 * x for x in lat1]),
        "latency_ms_50k_keys_two_epochs": summary([1e3 * x for x in lat2]),
        "baseline_python_loop_ms_25k_keys": 1e3 * loop_s,
        "baseline_unchunked_numpy_ms_25k_keys": 1e3 * statistics.median(naive),
        "speedup_vs_python_loop": loop_s / statistics.median(lat1),
        "speedup_vs_unchunked_numpy": statistics.median(naive) / statistics.median(lat1),
        "keyring_build_s_75k_keys": keyring_s,
    }
    log(f"attribution: {res['attribution']['accuracy_top1_significant_unique']:.2%} correct, "
        f"{1e3 * statistics.median(lat1):.1f} ms (25k keys), "
        f"{1e3 * statistics.median(lat2):.1f} ms (50k keys); python loop {1e3 * loop_s:.0f} ms")

    # --- false attribution on real (unwatermarked) corpus text
    n_clean = args.clean or (300 if q else 2000)
    clean = [s[:200] for s in held if len(s) >= 50]
    idx = np.random.default_rng(7).choice(len(clean), min(n_clean, len(clean)), replace=False)
    fa3 = fa6 = 0
    lens = []
    for i in idx:
        a = attribute_tokens(clean[i], ring2, cfg, alpha=1e-3, top=1)
        fa3 += a.candidates[0].p_adjusted <= 1e-3
        fa6 += a.candidates[0].p_adjusted <= 1e-6
        lens.append(len(clean[i]))
    res["false_attribution"] = {
        "texts": len(idx), "tokens_per_text": summary([float(x) for x in lens]),
        "keys": len(ring2), "rate_at_alpha_1e-3": fa3 / len(idx),
        "rate_at_alpha_1e-6": fa6 / len(idx), "source": "held-out vendored corpus prompts"}
    log(f"false attribution: {fa3}/{len(idx)} at 1e-3, {fa6}/{len(idx)} at 1e-6")

    # --- detector throughput (real corpus tokens)
    stream = np.concatenate([np.asarray(s, dtype=np.int64) for s in held])[:1_000_000]
    t = time.perf_counter()
    score_tokens(stream, key, cfg)
    det_s = time.perf_counter() - t
    text = "\n".join(texts[2::3][:3000])
    t = time.perf_counter()
    n_tok = len(tok.encode(text, add_special_tokens=False))
    tok_s = time.perf_counter() - t
    res["throughput"] = {"tokens": int(stream.size), "detect_tokens_per_s": stream.size / det_s,
                         "tokenize_tokens_per_s": n_tok / tok_s}
    log(f"throughput: {stream.size / det_s:,.0f} tokens/s scoring")

    # --- radioactivity power vs share of watermarked fine-tuning data
    res["radioactivity"] = radioactivity(texts, q)
    res["env"]["loadavg_end"] = os.getloadavg()[0]
    res["env"]["total_s"] = time.perf_counter() - t_all
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2, default=float))
    log(f"wrote {args.out}")


def radioactivity(texts: list[str], quick: bool) -> dict[str, Any]:
    """Students fine-tuned on a mix: share ``s`` of the examples watermarked, the rest not."""
    cfg = WatermarkConfig(gamma=0.25, delta=4.0)
    tok = tm.train_tokenizer(texts[::4], vocab_size=300)
    vocab = len(tok)
    enc = tok(texts[1::4], add_special_tokens=False)["input_ids"]
    n = 300 if quick else 600
    prompts = [s[:6] for s in enc if len(s) >= 6][:n]
    contexts = [s[:64] for s in enc[-600:] if len(s) >= 16][:150]
    teacher = tm.tiny_gpt2(vocab, n_embd=32, n_layer=1, seed=0)
    key = watermark_key(SECRET, "acct-000002", 0)
    marked = tm.sample(teacher, prompts, 56, processor=WatermarkLogitsProcessor(key, cfg), seed=1)
    plain = tm.sample(teacher, prompts, 56, seed=1)
    out: dict[str, Any] = {"teacher": "random-init tiny GPT-2", "vocab": vocab,
                           "examples": n, "tokens_per_example": 56, "delta": 4.0,
                           "gamma": 0.25, "student_steps": 200, "by_share": {}}
    rng = np.random.default_rng(3)
    for share in (0.0, 0.05, 0.25, 1.0):
        use = rng.random(n) < share
        data = [p + (m if u else c) for p, m, c, u in zip(prompts, marked, plain, use,
                                                          strict=True)]
        student = tm.tiny_gpt2(vocab, n_embd=64, n_layer=1, seed=2)
        tm.train_lm(student, data, steps=200, batch_size=32, seq_len=64, lr=1e-2, seed=3)
        ow = open_weights_test(student, contexts, key, cfg, top_k=1)
        bb = blackbox_test(tm.sample(student, prompts[:150], 40, seed=5), key, cfg)
        out["by_share"][str(share)] = {
            "watermarked_examples": int(use.sum()),
            "open_weights": {"p_value": ow.p_value, "distinct_pairs": ow.n_scored,
                             "green_fraction": ow.green_fraction},
            "black_box": {"p_value": bb.p_value, "distinct_pairs": bb.n_scored,
                          "green_fraction": bb.green_fraction}}
        log(f"radioactivity share={share}: open-weights p={ow.p_value:.2e}, "
            f"black-box p={bb.p_value:.2e}")
    return out


if __name__ == "__main__":
    main()
