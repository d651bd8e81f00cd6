"""``antidistill trace`` and ``antidistill watermark detect`` end to end on a local tokenizer."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("transformers")

from antidistill.cli import app
from antidistill.watermark import tinymodels
from antidistill.watermark.greenlist import WatermarkConfig, vocab_green_mask
from antidistill.watermark.keys import watermark_key


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tok")
    tinymodels.train_tokenizer(tinymodels.corpus_texts(["mt_bench", "humaneval"]), 600, out)
    return out


def _watermarked_text(tok_dir: Path, account: str, epoch: int, n: int = 220) -> str:
    """Text whose token ids were chosen with the account's green lists (a strong watermark)."""
    tok = tinymodels.load_tokenizer(tok_dir)
    cfg = WatermarkConfig()
    key = watermark_key("top-secret", account, epoch)
    rng = np.random.default_rng(0)
    base = tok.encode(tinymodels.corpus_texts(["mt_bench"])[3], add_special_tokens=False)[:1]
    ids = list(base)
    vocab = len(tok)
    for _ in range(n):
        green = vocab_green_mask(key.seed, ids[-1:], vocab, cfg)
        green[tok.eos_token_id] = False
        ids.append(int(rng.choice(np.flatnonzero(green))))
    text = tok.decode(ids)
    return str(text)


def test_trace_names_the_account(tokenizer_dir: Path, tmp_path: Path) -> None:
    accounts = tmp_path / "accounts.txt"
    accounts.write_text("# hydra suspects\n" + "\n".join(f"acct-{i}" for i in range(500)) + "\n")
    leaked = tmp_path / "leak.txt"
    leaked.write_text(_watermarked_text(tokenizer_dir, "acct-77", 4), encoding="utf-8")
    res = CliRunner().invoke(app, ["trace", str(leaked), "--accounts", str(accounts),
                                   "--tokenizer", str(tokenizer_dir), "--epoch", "5"],
                             env={"ANTIDISTILL_WM_SECRET": "top-secret", "COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    first = next(line for line in res.output.splitlines() if "acct-" in line)
    cells = [c.strip() for c in first.split("│")[1:-1]]
    assert cells[0] == "acct-77" and cells[1] == "4" and cells[-1] == "yes"
    assert float(cells[-2]) < 1e-6  # adjusted over 1000 keys (500 accounts x 2 epochs)

    det = CliRunner().invoke(app, ["watermark", "detect", str(leaked), "--account", "acct-77",
                                   "--epoch", "4", "--secret", "top-secret",
                                   "--tokenizer", str(tokenizer_dir)])
    assert det.exit_code == 0 and "p=" in det.output
    p = float(det.output.split("p=")[1].split()[0])
    assert p < 1e-20


def test_trace_clean_text_attributes_nobody(tokenizer_dir: Path, tmp_path: Path) -> None:
    accounts = tmp_path / "accounts.txt"
    accounts.write_text("\n".join(f"acct-{i}" for i in range(200)))
    clean = tmp_path / "clean.txt"
    clean.write_text("\n\n".join(tinymodels.corpus_texts(["gsm8k"])[:5]), encoding="utf-8")
    res = CliRunner().invoke(app, ["trace", str(clean), "--accounts", str(accounts),
                                   "--tokenizer", str(tokenizer_dir), "--secret", "k"])
    assert res.exit_code == 0, res.output
    assert "No account's key explains this text" in res.output


def test_trace_bad_inputs_are_one_line_errors(tokenizer_dir: Path, tmp_path: Path) -> None:
    accounts = tmp_path / "accounts.txt"
    accounts.write_text("a\nb\na\n")
    text = tmp_path / "t.txt"
    text.write_text("hello world")
    env = {"ANTIDISTILL_WM_SECRET": "k", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-m", "antidistill", "trace", str(text),
                           "--accounts", str(accounts), "--tokenizer", str(tokenizer_dir)],
                          capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 2
    assert f"{accounts}:3: field 'account_id': duplicate account id 'a'" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "antidistill", "trace", str(text),
                           "--accounts", str(accounts)], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin"}, check=False)
    assert proc.returncode == 2 and "ANTIDISTILL_WM_SECRET" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_radioactivity_blackbox_cli(tokenizer_dir: Path, tmp_path: Path) -> None:
    import json

    gens = tmp_path / "suspect.jsonl"
    gens.write_text("\n".join(json.dumps(_watermarked_text(tokenizer_dir, "acct-3", 0, n=60))
                              for _ in range(3)), encoding="utf-8")
    args = ["watermark", "radioactivity", "--generations", str(gens), "--secret", "top-secret",
            "--tokenizer", str(tokenizer_dir), "--account"]
    hit = CliRunner().invoke(app, [*args, "acct-3"])
    miss = CliRunner().invoke(app, [*args, "acct-4"])
    assert hit.exit_code == 0 and miss.exit_code == 0, hit.output + miss.output
    assert "black-box: texts=3" in hit.output
    assert float(hit.output.split("p=")[1].split()[0]) < 1e-6
    assert float(miss.output.split("p=")[1].split()[0]) > 1e-3
