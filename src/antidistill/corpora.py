"""The vendored real prompt corpora (see ``data/corpora/SOURCES.md`` for licences and attribution).

Each corpus is read into plain :class:`Prompt` records with a capability tag. The simulator draws
traffic from them and the request classifiers are trained on them, so both see real text.
"""

from __future__ import annotations

import ast
import gzip
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

#: corpus name -> file in data/corpora
FILES: dict[str, str] = {
    "arena_hard": "arena_hard_v01.jsonl.gz",
    "mt_bench": "mt_bench.jsonl.gz",
    "hh_harmless": "hh_harmless_test.jsonl.gz",
    "gsm8k": "gsm8k_train.jsonl.gz",
    "math": "math_test.jsonl.gz",
    "humaneval": "humaneval.jsonl.gz",
    "bfcl_simple": "bfcl_simple_python.jsonl.gz",
    "bfcl_multiple": "bfcl_multiple.jsonl.gz",
    "bfcl_parallel": "bfcl_parallel.jsonl.gz",
    "bfcl_multi_turn": "bfcl_multi_turn_base.jsonl.gz",
}


@dataclass(frozen=True)
class Prompt:
    """One real prompt: its text, the corpus it came from, and a coarse capability."""

    text: str
    corpus: str
    capability: str  # chat | math | coding | tool_use | safety
    tools: tuple[str, ...] = ()  # JSON tool definitions, for tool-use prompts
    turns: tuple[str, ...] = ()  # follow-up user turns, where the corpus has them


def records(name: str) -> list[dict[str, Any]]:
    """The raw JSON records of one corpus, in file order (fields as the source publishes them,
    e.g. whole ``chosen`` transcripts of ``hh_harmless``; :func:`load` keeps only prompts)."""
    ref = resources.files("antidistill") / "data" / "corpora" / FILES[name]
    with ref.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _literal(value: Any) -> Any:
    """Some corpora store nested lists as Python-literal strings."""
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return json.loads(value)
    return value


def _first_human(transcript: str) -> str:
    body = transcript.split("Human:", 1)[-1]
    return body.split("\n\nAssistant:", 1)[0].strip()


def _user_turns(question: Any) -> list[str]:
    turns = []
    for turn in _literal(question):
        for msg in turn:
            if isinstance(msg, dict) and msg.get("role") == "user":
                turns.append(str(msg.get("content", "")))
    return turns


@cache
def load(name: str) -> tuple[Prompt, ...]:
    """All prompts of one corpus, in file order."""
    if name not in FILES:
        raise KeyError(f"unknown corpus {name!r}; known: {', '.join(FILES)}")
    out: list[Prompt] = []
    for row in records(name):
        if name == "arena_hard":
            out.append(Prompt(row["prompt"], name, "chat"))
        elif name == "mt_bench":
            turns = [str(t) for t in _literal(row["turns"])]
            cap = "math" if row.get("category") == "math" else (
                "coding" if row.get("category") == "coding" else "chat")
            out.append(Prompt(turns[0], name, cap, turns=tuple(turns[1:])))
        elif name == "hh_harmless":
            out.append(Prompt(_first_human(row["chosen"]), name, "safety"))
        elif name == "gsm8k":
            out.append(Prompt(row["question"], name, "math"))
        elif name == "math":
            out.append(Prompt(row["problem"], name, "math"))
        elif name == "humaneval":
            out.append(Prompt(row["prompt"], name, "coding"))
        else:  # bfcl_*
            turns = _user_turns(row["question"])
            functions = _literal(row.get("function") or [])
            tools = tuple(json.dumps(f, sort_keys=True) for f in functions)
            out.append(Prompt(turns[0] if turns else "", name, "tool_use", tools=tools,
                              turns=tuple(turns[1:])))
    return tuple(p for p in out if p.text)


def load_all() -> dict[str, tuple[Prompt, ...]]:
    """Every corpus, by name."""
    return {name: load(name) for name in FILES}
