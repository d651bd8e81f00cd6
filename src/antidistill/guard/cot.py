"""Does a prompt ask the model to spell out its reasoning? (CoT elicitation)

Harvesting reasoning traces is the most valuable distillation target, and the request has to ask
for them: "think step by step", "show your work", "explain your reasoning before answering",
"output your full chain of thought", or embed a ``<think>`` scaffold. Ordinary users ask this
too, so the guard uses the *rate* per account over many requests, never one prompt. The scorer
is pluggable (any ``(prompt, system_prompt) -> float in [0, 1]``), e.g. a trained classifier.
"""

from __future__ import annotations

import re
from collections.abc import Callable

CotScorer = Callable[[str, "str | None"], float]

_STRONG = re.compile(
    r"chain[- ]of[- ]thought|<think>|reasoning (?:trace|process|steps)"
    r"|internal (?:reasoning|monologue)"
    r"|(?:show|reveal|output|print|include|write out|give) (?:me )?(?:all |your |the )?"
    r"(?:full |entire |complete |detailed )?"
    r"(?:reasoning|thinking|thought process|thoughts|derivation|scratch ?pad)"
    r"|before (?:giving|answering|you answer)[^.]{0,40}(?:reason|think|explain)",
    re.I,
)
_WEAK = re.compile(
    r"step[- ]by[- ]step|show (?:your|all|the) (?:work|steps)"
    r"|explain (?:your|each|every) (?:step|reasoning)"
    r"|think (?:carefully|it through|through|hard)|let'?s think|work it out|justify (?:your|each)",
    re.I,
)

_STRONG_GATE = ("chain", "<think>", "reason", "internal", "think", "thought", "deriv", "scratch")
_WEAK_GATE = ("step", "show", "explain", "think", "work it", "justify")


def cot_elicitation(prompt: str, system_prompt: str | None = None) -> float:
    """1.0 for an explicit request for the reasoning itself, 0.5 for "step by step"-style asks."""
    text = prompt if not system_prompt else f"{system_prompt}\n{prompt}"
    if len(text) > 2000:  # the ask sits at either end of a long prompt
        text = text[:1000] + "\n" + text[-1000:]
    low = text.lower()  # cheap substring gates before the regexes (hot path)
    if any(w in low for w in _STRONG_GATE) and _STRONG.search(text):
        return 1.0
    if any(w in low for w in _WEAK_GATE) and _WEAK.search(text):
        return 0.5
    return 0.0
