"""Canaries: keyed per-account choices between equivalent phrasings, to trace leaked text.

Where the output says "do not" or "don't", "for example" or "for instance", "toward" or
"towards", the choice carries no meaning. For a degraded account each such site is set by a bit
of ``HMAC(key, group | previous words)``, with the key from
``derive_key(secret, account, purpose="canary")``. Leaked text is traced by recomputing the bits
for each candidate account: the right account matches every site, any other matches about half
(a binomial test gives the p-value). The context is the three preceding words with every variant
folded to its canonical form, so marking a site never changes the context of the next one and
edits elsewhere in the text do not disturb a site.

Trade-off (see docs/enforcement.md): the marks are ordinary ASCII words, so they survive
copy/paste, Unicode/whitespace normalisation and re-encoding, and are invisible to a reader. They
are removed by paraphrasing or by deliberately canonicalising these phrasings (an attacker who
knows the groups can do so), and short texts carry too few sites for proof; the statistical
watermark (``antidistill.watermark``) covers the latter. Code spans are never touched.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass

from antidistill.keys import derive_key

#: interchangeable phrasings; index 0 is canonical. All groups have two members (p = 1/2).
GROUPS: tuple[tuple[str, str], ...] = (
    ("do not", "don't"),
    ("does not", "doesn't"),
    ("did not", "didn't"),
    ("is not", "isn't"),
    ("are not", "aren't"),
    ("was not", "wasn't"),
    ("were not", "weren't"),
    ("cannot", "can't"),
    ("will not", "won't"),
    ("would not", "wouldn't"),
    ("should not", "shouldn't"),
    ("could not", "couldn't"),
    ("has not", "hasn't"),
    ("have not", "haven't"),
    ("for example", "for instance"),
    ("toward", "towards"),
    ("afterward", "afterwards"),
    ("therefore", "thus"),
)
_LOOKUP = {v: (g, i) for g, pair in enumerate(GROUPS) for i, v in enumerate(pair)}
_SITE = re.compile(
    r"(?<![\w'’])("
    + "|".join(sorted((re.escape(v) for v in _LOOKUP), key=len, reverse=True))
    + r")(?![\w'’])",
    re.I,
)
_CODE = re.compile(r"```.*?(?:```|$)|`[^`\n]*`", re.S)
_WORD = re.compile(r"[a-z0-9]+")
CONTEXT_WORDS = 3


@dataclass(frozen=True)
class Site:
    start: int
    end: int
    group: int
    variant: int
    context: str


def sites(text: str) -> list[Site]:
    """Every markable site outside code spans, with its canonical context."""
    code = [(m.start(), m.end()) for m in _CODE.finditer(text)]
    out: list[Site] = []
    words: list[str] = []
    pos = 0
    ci = 0
    for m in _SITE.finditer(text):
        while ci < len(code) and code[ci][1] <= m.start():
            ci += 1
        if ci < len(code) and code[ci][0] <= m.start() < code[ci][1]:
            continue
        words.extend(_WORD.findall(text[pos : m.start()].lower()))
        g, v = _LOOKUP[m.group(1).lower().replace("’", "'")]
        out.append(Site(m.start(), m.end(), g, v, " ".join(words[-CONTEXT_WORDS:])))
        words.extend(_WORD.findall(GROUPS[g][0]))
        pos = m.end()
    return out


def _bit(key: bytes, site: Site) -> int:
    return hmac.new(key, f"{site.group}|{site.context}".encode(), hashlib.sha256).digest()[0] & 1


def _cased(src: str, repl: str) -> str:
    if src.isupper() and len(src) > 1:
        return repl.upper()
    if src[:1].isupper():
        return repl[:1].upper() + repl[1:]
    return repl


def apply_canary(text: str, key: bytes) -> tuple[str, int]:
    """Mark ``text`` with ``key``; returns the marked text and the number of sites set."""
    found = sites(text)
    if not found:
        return text, 0
    parts: list[str] = []
    pos = 0
    for s in found:
        want = GROUPS[s.group][_bit(key, s)]
        parts.append(text[pos : s.start])
        parts.append(_cased(text[s.start : s.end], want))
        pos = s.end
    parts.append(text[pos:])
    return "".join(parts), len(found)


@dataclass(frozen=True)
class CanaryMatch:
    """How well ``text`` fits one account's canary key."""

    account_id: str
    matches: int
    sites: int
    p_value: float  # chance an unrelated text matches at least this well


def detect_canary(
    text: str, secret: bytes | str, accounts: Iterable[str], *, epochs: Iterable[int] = (0,)
) -> list[CanaryMatch]:
    """Rank candidate accounts by how strongly ``text`` carries their canary (best first).

    Sites with the same group and context carry the same bit, so they count once.
    """
    from scipy.stats import binom

    uniq = {(s.group, s.context): s for s in sites(text)}
    n = len(uniq)
    out: list[CanaryMatch] = []
    for acc in accounts:
        best: CanaryMatch | None = None
        for epoch in epochs:
            key = derive_key(secret, acc, purpose="canary", epoch=epoch)
            k = sum(1 for s in uniq.values() if _bit(key, s) == s.variant)
            p = float(binom.sf(k - 1, n, 0.5)) if n else 1.0
            if best is None or p < best.p_value:
                best = CanaryMatch(acc, k, n, p)
        if best is not None:
            out.append(best)
    return sorted(out, key=lambda m: (m.p_value, -m.matches))


class StreamingCanary:
    """Marks streamed text: holds text back to a sentence end so every site sees its context."""

    def __init__(self, key: bytes, hold_chars: int = 400):
        self.key = key
        self._buf = ""
        self._prefix_words = ""  # canonical tail of what was already emitted (context carry-over)
        self._hold = hold_chars
        self.sites = 0

    def feed(self, text: str) -> str:
        self._buf += text
        cut = max(self._buf.rfind(". "), self._buf.rfind("\n"))
        if cut < 0 and len(self._buf) < self._hold:
            return ""
        if cut < 0:
            cut = self._buf.rfind(" ")
            if cut < 0:
                return ""
        if self._buf.count("```") % 2 == 1:  # never split inside a code fence
            return ""
        out, self._buf = self._buf[: cut + 1], self._buf[cut + 1 :]
        return self._mark(out)

    def flush(self) -> str:
        out, self._buf = self._buf, ""
        return self._mark(out) if out else ""

    def _mark(self, chunk: str) -> str:
        # prepend the previous context so sites near the start get the same context as in the
        # whole text; then cut it off again
        # "_a_b_c_ ": "_" is a word character, so the carried words can never form a site
        lead = f"_{self._prefix_words}_ " if self._prefix_words else ""
        marked, n = apply_canary(lead + chunk, self.key)
        self.sites += n
        canon = _SITE.sub(lambda m: GROUPS[_LOOKUP[m.group(1).lower()][0]][0], lead + chunk)
        self._prefix_words = "_".join(_WORD.findall(canon.lower())[-CONTEXT_WORDS:])
        return marked[len(lead) :]
