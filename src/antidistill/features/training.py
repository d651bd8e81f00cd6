"""Train the request classifiers from the vendored corpora and the phrase banks, deterministically.

``python -m antidistill.features.training`` rebuilds ``data/models/request_clf.npz`` and prints the
held-out report. Examples are real corpus payloads (split 80/20 by a hash of the text) wrapped in
instruction phrasings from :mod:`antidistill.features.phrases` (split 3/4 train, 1/4 held out) with
a frame (also split). The held-out set combines *unseen phrasings, unseen frames and unseen
payloads*, so its scores measure robustness to paraphrase rather than memorisation.

Heads: three binary logistic regressions (``cot``, ``rubric``, ``rewrite``) and one multinomial
logistic regression over :data:`CAPABILITIES`, all on the features of
:mod:`antidistill.features.textvec`. The shipped file stores float16 weights (< 2 MB) and a
fingerprint of the training examples so a test can tell when banks changed without a retrain.
"""

from __future__ import annotations

import hashlib
import re
import sys
import zlib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import pyarrow as pa

from antidistill import corpora
from antidistill.features import phrases as P

CAPABILITIES: tuple[str, ...] = ("reasoning", "coding", "tool_use", "computer_use", "grading",
                                 "rewrite", "chat", "safety", "other")
HEADS: tuple[str, ...] = ("cot", "rubric", "rewrite")
SEED = 20261122
N_TRAIN = 36000
N_HELD_OUT = 8000
DROPOUT = 0.3  # share of training asks that lose a word or two
C_BINARY = 4.0
C_CAPABILITY = 4.0
MODEL_FILE = "request_clf.npz"
N_FEATURES = 1 << 16  # 13 heads x 65,536 float16 weights: about 1 MB compressed

_CORPUS_CAPABILITY = {"math": "reasoning", "coding": "coding", "tool_use": "tool_use",
                      "chat": "chat", "safety": "safety"}
# arena_hard is tagged "chat" by the loader but about half of it is programming questions
_CODE_CUES = re.compile(
    r"```|\bdef |\bfunction\b|\bpython\b|\bjavascript\b|\btypescript\b|\bsql\b|\bc\+\+|\brust\b|"
    r"\bjava\b|\bcode\b|\bscript\b|\bbash\b|\bregex\b|\bapi\b|\bclass\b|\bcompile|\bdebug",
    re.IGNORECASE)


@dataclass(frozen=True)
class Example:
    """One training text and its labels; ``capability`` None = not used for that head."""

    text: str
    cot: int
    rubric: int
    rewrite: int
    capability: str | None


def _held(text: str) -> bool:
    return zlib.crc32(text.encode("utf-8")) % 5 == 0


def payload_pools(*, held_out: bool) -> dict[str, list[str]]:
    """Corpus payloads by capability, restricted to the train or the held-out split."""
    pools: dict[str, list[str]] = {c: [] for c in ("reasoning", "coding", "tool_use", "chat",
                                                    "safety")}
    for prompts in corpora.load_all().values():
        for p in prompts:
            if _held(p.text) != held_out:
                continue
            cap = _CORPUS_CAPABILITY[p.capability]
            if cap == "chat" and _CODE_CUES.search(p.text):
                cap = "coding"
            pools[cap].append(p.text)
    return pools


def _vary(rng: np.random.Generator, phrase: str) -> str:
    """Surface noise a real client adds: case, trailing punctuation."""
    u = rng.random()
    if u < 0.1:
        phrase = phrase.lower()
    elif u < 0.25:
        phrase = phrase.rstrip(".!")
    return phrase


def _dropout(rng: np.random.Generator, phrase: str) -> str:
    """Training-only augmentation: drop a word or two so no single n-gram carries the label."""
    words = phrase.split()
    if len(words) < 5 or rng.random() >= DROPOUT:
        return phrase
    for _ in range(int(rng.integers(1, 3))):
        del words[int(rng.integers(len(words)))]
    return " ".join(words)


def _frame(rng: np.random.Generator, frames: tuple[str, ...], instruction: str,
           payload: str) -> str:
    frame = frames[int(rng.integers(len(frames)))]
    return frame.replace("{i}", instruction).replace("{p}", payload)


def _pick(rng: np.random.Generator, items: list[str] | tuple[str, ...]) -> str:
    return items[int(rng.integers(len(items)))]


def make_examples(*, held_out: bool, n: int, seed: int = SEED) -> list[Example]:
    """Deterministic labelled examples from one split of phrasings, frames and payloads."""
    rng = np.random.default_rng(seed + (1 if held_out else 0))
    pools = payload_pools(held_out=held_out)
    bank = {name: P.split(b, held_out=held_out) for name, b in P.BANKS.items()}
    caps = list(pools)
    cap_weights = np.array([0.45, 0.15, 0.1, 0.2, 0.1])
    kinds = ("plain", "cot", "rubric", "rewrite_safe", "rewrite_benign", "neutral", "procedural",
             "computer_use", "follow_up", "system")
    kind_p = np.array([0.22, 0.22, 0.13, 0.1, 0.06, 0.1, 0.04, 0.04, 0.03, 0.06])
    all_text = [t for pool in pools.values() for t in pool]
    out: list[Example] = []

    def ask(kind: str) -> str:
        phrase = _vary(rng, _pick(rng, bank[kind]))
        return phrase if held_out else _dropout(rng, phrase)

    def payload(cap: str | None = None) -> tuple[str, str]:
        c = cap or caps[int(rng.choice(len(caps), p=cap_weights))]
        return _pick(rng, pools[c]), c

    for _ in range(n):
        kind = kinds[int(rng.choice(len(kinds), p=kind_p))]
        if kind == "plain":
            text, cap = payload(caps[int(rng.integers(len(caps)))])
            out.append(Example(text, 0, 0, 0, cap))
        elif kind in ("cot", "neutral"):
            text, cap = payload()
            instr = ask(kind)
            if rng.random() < 0.3:  # asks are often stacked with a neutral one
                instr = f"{instr} {_vary(rng, _pick(rng, bank['neutral']))}"
            out.append(Example(_frame(rng, bank["frames"], instr, text), int(kind == "cot"),
                               0, 0, cap))
        elif kind == "rubric":
            q, _ = payload()
            a = _pick(rng, all_text)[:600]
            b = _pick(rng, all_text)[:600]
            instr = ask("rubric")
            cot = 0
            if rng.random() < 0.35:
                instr = f"{instr} {ask('cot')}"
                cot = 1
            frame = _pick(rng, bank["rubric_frames"])
            text = (frame.replace("{i}", instr).replace("{q}", q).replace("{r}", a)
                    .replace("{a}", a).replace("{b}", b))
            out.append(Example(text, cot, 1, 0, "grading"))
        elif kind in ("rewrite_safe", "rewrite_benign"):
            text = _pick(rng, pools["safety"] + pools["chat"]) if rng.random() < 0.8 else \
                _pick(rng, all_text)
            instr = ask(kind)
            out.append(Example(_frame(rng, bank["frames"], instr, text), 0, 0,
                               int(kind == "rewrite_safe"), "rewrite"))
        elif kind == "procedural":
            topic, _ = payload("chat")
            topic = topic[:1].lower() + topic[1:]
            out.append(Example(_pick(rng, bank["procedural"]).replace("{p}", topic), 0, 0, 0,
                               "chat"))
        elif kind == "computer_use":
            text = _pick(rng, bank["computer_use"]).replace("{app}", _pick(rng, P.APPS))
            out.append(Example(_vary(rng, text), 0, 0, 0, "computer_use"))
        elif kind == "follow_up":
            out.append(Example(_vary(rng, _pick(rng, P.FOLLOW_UPS)), 0, 0, 0, "other"))
        else:  # a system prompt: a role and maybe one ask, no payload
            which = _pick(rng, ("cot", "rubric", "rewrite_safe", "neutral", "rewrite_benign"))
            text = f"{_pick(rng, P.ROLES)} {_vary(rng, _pick(rng, bank[which]))}".strip()
            out.append(Example(text, int(which == "cot"), int(which == "rubric"),
                               int(which == "rewrite_safe"), None))
    return out


def examples_fingerprint(examples: list[Example]) -> str:
    """sha256 over texts and labels: identifies the exact training set a model came from."""
    h = hashlib.sha256()
    for e in examples:
        h.update(f"{e.text}\x00{e.cot}{e.rubric}{e.rewrite}{e.capability}\x01".encode())
    return h.hexdigest()


@dataclass(frozen=True)
class Model:
    """Weights of every head: ``weights`` is (3 + len(classes), n_features)."""

    weights: np.ndarray
    bias: np.ndarray
    classes: tuple[str, ...]
    n_features: int
    fingerprint: str
    _weights_t: np.ndarray | None = field(default=None, repr=False, compare=False)

    def scores(self, features: object) -> tuple[np.ndarray, np.ndarray]:
        """(binary probabilities (n, 3), capability probabilities (n, n_classes)) of a matrix."""
        logits = np.asarray(features @ self.weights.T, dtype=np.float32)
        return self._probabilities(logits)

    def score_texts(self, texts: pa.Array, *, normalized: bool = False) -> tuple[np.ndarray,
                                                                                 np.ndarray]:
        """Like :meth:`scores` on ``featurize(texts)``, without the sparse matrix (faster)."""
        from antidistill.features.textvec import linear_scores

        if self._weights_t is None:
            object.__setattr__(self, "_weights_t", np.ascontiguousarray(self.weights.T))
        assert self._weights_t is not None
        return self._probabilities(linear_scores(texts, self._weights_t, normalized=normalized))

    def _probabilities(self, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        logits = logits + self.bias
        binary = 1.0 / (1.0 + np.exp(-logits[:, : len(HEADS)]))
        cap = logits[:, len(HEADS):]
        cap = np.exp(cap - cap.max(axis=1, keepdims=True))
        cap /= cap.sum(axis=1, keepdims=True)
        return binary.astype(np.float32), cap.astype(np.float32)


def train(examples: list[Example], *, n_features: int = N_FEATURES) -> Model:
    """Fit every head on ``examples`` (deterministic: fixed data order, lbfgs)."""
    from sklearn.linear_model import LogisticRegression

    from antidistill.features.textvec import featurize

    X = featurize(pa.array([e.text for e in examples]), n_features=n_features)
    rows_w: list[np.ndarray] = []
    rows_b: list[float] = []
    for head in HEADS:
        y = np.array([getattr(e, head) for e in examples])
        clf = LogisticRegression(C=C_BINARY, max_iter=2000, solver="lbfgs",
                                 class_weight="balanced")
        clf.fit(X, y)
        rows_w.append(clf.coef_[0])
        rows_b.append(float(clf.intercept_[0]))
    sel = np.array([e.capability is not None for e in examples])
    y_cap = np.array([CAPABILITIES.index(e.capability) for e in examples
                      if e.capability is not None])
    clf = LogisticRegression(C=C_CAPABILITY, max_iter=3000, solver="lbfgs")
    clf.fit(X[sel], y_cap)
    coef = np.zeros((len(CAPABILITIES), X.shape[1]))
    bias = np.full(len(CAPABILITIES), -30.0)  # a class absent from training is never predicted
    coef[clf.classes_] = clf.coef_
    bias[clf.classes_] = clf.intercept_
    weights = np.vstack([np.vstack(rows_w), coef]).astype(np.float16).astype(np.float32)
    return Model(weights, np.concatenate([rows_b, bias]).astype(np.float32), CAPABILITIES,
                 n_features, examples_fingerprint(examples))


def save(model: Model, path: Path) -> None:
    """Write float16 weights with their metadata (compressed npz)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, weights=model.weights.astype(np.float16), bias=model.bias,
                        classes=np.array(model.classes), n_features=np.int64(model.n_features),
                        fingerprint=np.array(model.fingerprint))


def load(path: Path | None = None) -> Model:
    """The shipped model (or one at ``path``)."""
    if path is None:
        ref = resources.files("antidistill") / "data" / "models" / MODEL_FILE
        with resources.as_file(ref) as p:
            return load(Path(p))
    with np.load(path, allow_pickle=False) as z:
        return Model(z["weights"].astype(np.float32), z["bias"].astype(np.float32),
                     tuple(str(c) for c in z["classes"]), int(z["n_features"]),
                     str(z["fingerprint"]))


def evaluate(model: Model, examples: list[Example]) -> dict[str, float]:
    """AUC per binary head, accuracy at 0.5, capability accuracy (held-out report)."""
    from sklearn.metrics import roc_auc_score

    from antidistill.features.textvec import featurize

    binary, cap = model.scores(featurize(pa.array([e.text for e in examples]),
                                         n_features=model.n_features))
    report: dict[str, float] = {}
    for k, head in enumerate(HEADS):
        y = np.array([getattr(e, head) for e in examples])
        report[f"{head}_auc"] = float(roc_auc_score(y, binary[:, k]))
        report[f"{head}_accuracy"] = float(((binary[:, k] >= 0.5) == (y == 1)).mean())
        report[f"{head}_recall"] = float((binary[y == 1, k] >= 0.5).mean())
        report[f"{head}_fpr"] = float((binary[y == 0, k] >= 0.5).mean())
    sel = np.array([e.capability is not None for e in examples])
    truth = np.array([model.classes.index(e.capability) for e in examples
                      if e.capability is not None])
    report["capability_accuracy"] = float((cap[sel].argmax(axis=1) == truth).mean())
    return report


def default_path() -> Path:
    """Where the shipped model lives in a source checkout."""
    return Path(__file__).resolve().parent.parent / "data" / "models" / MODEL_FILE


def main(argv: list[str] | None = None) -> int:
    """Retrain, save and print the held-out report."""
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0]) if args else default_path()
    model = train(make_examples(held_out=False, n=N_TRAIN))
    save(model, out)
    report = evaluate(model, make_examples(held_out=True, n=N_HELD_OUT))
    size = out.stat().st_size
    print(f"wrote {out} ({size / 1e6:.2f} MB)")
    for key, value in report.items():
        print(f"{key:>22}: {value:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
