"""Prompt scaffolds: what stays the same when a harvesting script fills a template.

A hydra cluster sends the same scaffold ("Solve step by step ... put the answer in \\boxed{}")
around varying payloads, from many accounts. Masking the payload-shaped parts (numbers, quoted
strings, code, URLs) and hashing what is left gives a key that a brand-new account of the same
cluster shares with the flagged ones. Payloads that are plain prose are not masked, so the
prefix and suffix of the prompt and the system prompt are hashed as separate features; the index
weighs each by how specific it is to flagged accounts, so generic openings ("can you help me")
never implicate anyone. Deliberately simple and independent of detection's own fingerprints.
"""

from __future__ import annotations

import hashlib
import re

#: (marker that must be present, pattern, mask) applied in order; the marker test skips the
#: regex scan for the common prompt that has no code, URL, maths or quotes
_MASKS: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("`", re.compile(r"```.*?(?:```|$)|`[^`\n]+`", re.S), " <code> "),
    ("http", re.compile(r"\bhttps?://\S+"), " <url> "),
    ("www.", re.compile(r"\bwww\.\S+"), " <url> "),
    ("@", re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b"), " <email> "),
    ("$", re.compile(r"\$\$.*?\$\$|\$[^$\n]{1,500}\$", re.S), " <math> "),
    ('"', re.compile(r"\"[^\"\n]{0,2000}\""), " <str> "),
    ("“", re.compile(r"“[^”\n]{0,2000}”"), " <str> "),
    ("«", re.compile(r"«[^»\n]{0,2000}»"), " <str> "),
    ("'", re.compile(r"(?<!\w)'[^'\n]{1,500}'(?!\w)"), " <str> "),
    ("", re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?%?"), " <num> "),
)
_TOKEN = re.compile(r"<\w+>|\w+")

#: words in a prefix/suffix feature; shorter prompts only get the full-scaffold feature
AFFIX_TOKENS = 6
#: long prompts are read at both ends only (scaffolds live there; keeps the guard under 1 ms)
MAX_CHARS = 2000


def normalise_template(text: str) -> str:
    """The prompt's scaffold: payload-shaped spans (code, URLs, e-mails, maths, quoted strings,
    numbers) masked, case and whitespace folded. Prompts over :data:`MAX_CHARS` are read at
    both ends."""
    if len(text) > MAX_CHARS:
        half = MAX_CHARS // 2
        text = text[:half] + " <cut> " + text[-half:]
    for marker, pattern, mask in _MASKS:
        if marker in text:
            text = pattern.sub(mask, text)
    return " ".join(text.split()).lower()


def template_hash(text: str) -> str:
    """16-hex hash of :func:`normalise_template` (stable across processes and versions)."""
    return _h(normalise_template(text))


def _h(s: str) -> str:
    return hashlib.blake2b(s.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def scaffold_features(prompt: str, system_prompt: str | None = None) -> list[tuple[str, str]]:
    """``(kind, hash)`` features of one request: ``tpl`` (whole scaffold), ``sys`` (system
    prompt scaffold), ``pre``/``suf`` (first/last :data:`AFFIX_TOKENS` tokens of a long prompt).
    """
    norm = normalise_template(prompt)
    out = [("tpl", _h(norm))] if norm else []
    toks = _TOKEN.findall(norm)
    if len(toks) > 2 * AFFIX_TOKENS:
        out.append(("pre", _h(" ".join(toks[:AFFIX_TOKENS]))))
        out.append(("suf", _h(" ".join(toks[-AFFIX_TOKENS:]))))
    if system_prompt and system_prompt.strip():
        out.append(("sys", template_hash(system_prompt)))
    return out
