"""Reasoning protection for degraded accounts: withhold or summarise the model's reasoning.

Reasoning arrives two ways: a separate ``reasoning_content`` (or ``reasoning``) field, and
``<think>...</think>`` spans inside ``content``/``text``. Both are handled for whole responses and
for streamed deltas, where a tag may be split across chunks ("<thi" + "nk>").

"summarize" is extractive on purpose (no second model call in the request path): the opening
sentence of the reasoning, cut to ``summary_chars``, which tells a legitimate user what the model
considered without handing over the trace a student model would train on.
"""

from __future__ import annotations

import re
from typing import Any

OPEN, CLOSE = "<think>", "</think>"
REASONING_FIELDS = ("reasoning_content", "reasoning")
_THINK = re.compile(r"<think>(.*?)(?:</think>|$)", re.S)
_SENT = re.compile(r"(.+?[.!?])(?:\s|$)", re.S)


def summarize(reasoning: str, limit: int = 160) -> str:
    """Short extractive summary: the first sentence, at most ``limit`` characters."""
    text = " ".join(reasoning.split())
    if not text:
        return ""
    m = _SENT.match(text)
    first = m.group(1) if m else text
    if len(first) > limit:
        first = first[: limit - 1].rsplit(" ", 1)[0] + "…"
    return f"[reasoning summarized] {first}"


def protect_text(text: str, mode: str, limit: int = 160) -> str:
    """Strip or summarise ``<think>`` spans of a whole text."""
    if mode == "keep" or OPEN not in text:
        return text
    if mode == "strip":
        return _THINK.sub("", text)
    return _THINK.sub(lambda m: f"{OPEN}{summarize(m.group(1), limit)}{CLOSE}", text)


def protect_message(msg: dict[str, Any], mode: str, limit: int = 160) -> None:
    """Apply reasoning protection to one chat message (or completion choice) in place."""
    if mode == "keep":
        return
    for f in REASONING_FIELDS:
        val = msg.get(f)
        if isinstance(val, str) and val:
            if mode == "strip":
                msg.pop(f)
            else:
                msg[f] = summarize(val, limit)
    for f in ("content", "text"):
        val = msg.get(f)
        if isinstance(val, str):
            msg[f] = protect_text(val, mode, limit)


class ThinkSplitter:
    """Splits streamed text into ordered events across chunk boundaries:
    ``("text", s)``, ``("think", s)`` and ``("close", "")`` when a think span ends."""

    def __init__(self) -> None:
        self.inside = False
        self._pending = ""  # a possible partial tag at the end of the last chunk

    def feed(self, text: str) -> list[tuple[str, str]]:
        text = self._pending + text
        self._pending = ""
        events: list[tuple[str, str]] = []
        while text:
            tag = CLOSE if self.inside else OPEN
            i = text.find(tag)
            if i >= 0:
                if i:
                    events.append(("think" if self.inside else "text", text[:i]))
                if self.inside:
                    events.append(("close", ""))
                text = text[i + len(tag) :]
                self.inside = not self.inside
                continue
            keep = _partial_suffix(text, tag)
            if len(text) > keep:
                events.append(("think" if self.inside else "text", text[: len(text) - keep]))
            self._pending = text[len(text) - keep :]
            break
        return events

    def flush(self) -> list[tuple[str, str]]:
        rest, self._pending = self._pending, ""
        if self.inside:
            self.inside = False
            return [("think", rest), ("close", "")] if rest else [("close", "")]
        return [("text", rest)] if rest else []


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of ``tag``."""
    for n in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:n]):
            return n
    return 0


class StreamReasoning:
    """Per-choice streaming state: what to emit for each delta, and what is left at the end."""

    def __init__(self, mode: str, limit: int = 160):
        self.mode = mode
        self.limit = limit
        self.splitter = ThinkSplitter()
        self._field_buf: list[str] = []  # reasoning_content withheld, for a summary
        self._think_buf: list[str] = []
        self.withheld_chars = 0

    def reasoning_delta(self, text: str) -> str | None:
        """A ``reasoning_content`` delta: None drops it (summary comes at :meth:`end_reasoning`)."""
        if self.mode == "keep":
            return text
        self.withheld_chars += len(text)
        if self.mode == "summarize":
            self._field_buf.append(text)
        return None

    def end_reasoning(self) -> str | None:
        """Called when the first non-reasoning delta arrives: the summary to emit, if any."""
        if self.mode != "summarize" or not self._field_buf:
            return None
        s = summarize("".join(self._field_buf), self.limit)
        self._field_buf.clear()
        return s

    def content_delta(self, text: str) -> str:
        if self.mode == "keep":
            return text
        return self._emit(self.splitter.feed(text))

    def _emit(self, events: list[tuple[str, str]]) -> str:
        out: list[str] = []
        for kind, s in events:
            if kind == "text":
                out.append(s)
            elif kind == "think":
                self.withheld_chars += len(s)
                if self.mode == "summarize":
                    self._think_buf.append(s)
            elif self.mode == "summarize":
                out.append(f"{OPEN}{summarize(''.join(self._think_buf), self.limit)}{CLOSE}")
                self._think_buf.clear()
        return "".join(out)

    def flush(self) -> str:
        if self.mode == "keep":
            return ""
        return self._emit(self.splitter.flush())
