"""Small local models for tests, benchmarks and the CLI's default tokenizer (no downloads).

A byte-level BPE tokenizer is trained on the vendored corpora on first use and cached (in
``$ANTIDISTILL_CACHE`` or ``~/.cache/antidistill``); tiny GPT-2 models are trained on corpus text
or on a teacher's outputs. In production, detect with the *serving model's* tokenizer instead:
the green lists are defined over its token ids. Needs the ``watermark`` extra.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import Progress
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from antidistill import corpora

EOS = "<|endoftext|>"


def cache_dir() -> Path:
    """Where trained tokenizers are cached."""
    root = os.environ.get("ANTIDISTILL_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "antidistill"


def corpus_texts(names: Iterable[str] | None = None) -> list[str]:
    """Prompt texts of the vendored corpora (all of them by default), in a fixed order."""
    return [p.text for name in (names or corpora.FILES) for p in corpora.load(name)]


def train_tokenizer(texts: Sequence[str], vocab_size: int = 4096,
                    out_dir: Path | None = None) -> PreTrainedTokenizerFast:
    """Train a GPT-2-style byte-level BPE tokenizer on ``texts`` (saved to ``out_dir``)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=EOS)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        fast.save_pretrained(str(out_dir))
    return fast


def load_tokenizer(path: Path) -> PreTrainedTokenizerFast:
    """A tokenizer saved with ``save_pretrained`` (e.g. the serving model's)."""
    from antidistill.errors import InputError

    if not (path / "tokenizer.json").exists():
        raise InputError("no tokenizer.json in this directory", where=str(path))
    return PreTrainedTokenizerFast.from_pretrained(str(path))


def corpus_tokenizer(vocab_size: int = 4096, root: Path | None = None) -> PreTrainedTokenizerFast:
    """The corpora-trained tokenizer, trained on first use and cached by content."""
    texts = corpus_texts()
    digest = hashlib.sha256("\x1e".join(texts).encode()).hexdigest()[:12]
    path = (root or cache_dir()) / f"tokenizer-bpe{vocab_size}-{digest}"
    if (path / "tokenizer.json").exists():
        return load_tokenizer(path)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tok = train_tokenizer(texts, vocab_size, tmp)
    try:
        tmp.replace(path)  # atomic publish; a concurrent trainer may have won the race
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
    return tok


def tiny_gpt2(vocab_size: int, *, n_positions: int = 128, n_embd: int = 64, n_layer: int = 2,
              n_head: int = 2, seed: int = 0) -> GPT2LMHeadModel:
    """A randomly initialised GPT-2 small enough to train on a CPU in seconds.

    Input and output embeddings are untied so that next-token (bigram) statistics, where a
    ``context_width=1`` watermark lives, are learnt within a few hundred steps.
    """
    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=vocab_size, n_positions=n_positions, n_embd=n_embd,
                     n_layer=n_layer, n_head=n_head, bos_token_id=0, eos_token_id=0,
                     tie_word_embeddings=False)
    return GPT2LMHeadModel(cfg).eval()


def _blocks(sequences: Sequence[Sequence[int]], length: int, eos: int) -> torch.Tensor:
    stream = [t for seq in sequences for t in (*seq, eos)]
    n = len(stream) // length
    if n == 0:
        raise ValueError(f"need at least {length} tokens of training text, got {len(stream)}")
    return torch.tensor(stream[: n * length], dtype=torch.long).view(n, length)


def train_lm(model: GPT2LMHeadModel, sequences: Sequence[Sequence[int]], *, steps: int = 200,
             batch_size: int = 16, seq_len: int = 64, lr: float = 3e-3, eos: int = 0,
             seed: int = 0, progress: bool = False) -> list[float]:
    """Train ``model`` on packed ``sequences`` (next-token loss); returns the loss per step."""
    blocks = _blocks(sequences, seq_len, eos)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.train()
    losses: list[float] = []
    with Progress(transient=True, disable=not progress) as bar:
        task = bar.add_task("training", total=steps)
        for _ in range(steps):
            idx = torch.randint(0, blocks.shape[0], (batch_size,), generator=gen)
            batch = blocks[idx]
            loss = model(input_ids=batch, labels=batch).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            bar.advance(task)
    model.eval()
    return losses


@torch.no_grad()
def sample(model: GPT2LMHeadModel, prompts: Sequence[Sequence[int]], max_new_tokens: int, *,
           processor: Any = None, seed: int = 0, batch_size: int = 64,
           temperature: float = 1.0) -> list[list[int]]:
    """Ancestral sampling from the full distribution, ``processor`` applied to the logits the
    way ``transformers`` applies a ``LogitsProcessor``. Prompts of one batch share a length."""
    gen = torch.Generator().manual_seed(seed)
    outs: list[list[int]] = [[] for _ in prompts]
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        by_len: dict[int, list[int]] = {}
        for i in chunk:
            by_len.setdefault(len(prompts[i]), []).append(i)
        for rows in by_len.values():
            ids = torch.tensor([list(prompts[i]) for i in rows], dtype=torch.long)
            if ids.shape[1] + max_new_tokens > model.config.n_positions:
                raise ValueError("prompt + max_new_tokens exceeds the model's n_positions")
            out = model(input_ids=ids, use_cache=True)
            for step in range(max_new_tokens):
                if step:
                    out = model(input_ids=ids[:, -1:], past_key_values=out.past_key_values,
                                use_cache=True)
                logits = out.logits[:, -1, :].float()
                if processor is not None:
                    logits = processor(ids, logits)
                probs = torch.softmax(logits / temperature, dim=-1)
                nxt = torch.multinomial(probs, 1, generator=gen)
                ids = torch.cat([ids, nxt], dim=1)
            for r, i in enumerate(rows):
                outs[i] = ids[r, len(prompts[i]):].tolist()
    return outs


@torch.no_grad()
def perplexity(model: GPT2LMHeadModel, prompts: Sequence[Sequence[int]],
               continuations: Sequence[Sequence[int]]) -> float:
    """Perplexity of ``continuations`` given their prompts under ``model`` (a reference model)."""
    nll, count = 0.0, 0
    for p, c in zip(prompts, continuations, strict=True):
        if not c:
            continue
        ids = torch.tensor([list(p) + list(c)], dtype=torch.long)[:, -model.config.n_positions:]
        logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), dim=-1)
        tgt = ids[0, 1:]
        tok_lp = logp.gather(1, tgt[:, None])[:, 0][-len(c):]
        nll -= float(tok_lp.sum())
        count += tok_lp.numel()
    return float(np.exp(nll / max(count, 1)))
