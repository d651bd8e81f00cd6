"""Countermeasures in isolation: reasoning protection across chunk splits, canaries, keys file."""

from __future__ import annotations

from pathlib import Path

import pytest

from antidistill.errors import ConfigError
from antidistill.gateway.canary import StreamingCanary, apply_canary, detect_canary, sites
from antidistill.gateway.keys_file import KeysFile
from antidistill.gateway.reasoning import StreamReasoning, protect_message, protect_text
from antidistill.keys import derive_key

TEXT = (
    "Hi <think>First I weigh the options. Then more.</think>The answer is 42. "
    "<think>again</think>Done<think>unterminated"
)
PROSE = (
    "You do not need a lock here. For example, the queue is not shared. It does not matter "
    "toward the end, therefore we cannot fail. Code: `do not touch`. We will not retry and "
    "you should not either. I have not seen it. They were not there. It is not known and it "
    "was not done. Afterward we did not look back, and it could not have been otherwise."
)


@pytest.mark.parametrize("step", [1, 2, 3, 5, 8, 1000])
@pytest.mark.parametrize("mode", ["strip", "summarize"])
def test_streamed_think_spans_match_whole_text(step: int, mode: str) -> None:
    s = StreamReasoning(mode)
    out = "".join(s.content_delta(TEXT[i : i + step]) for i in range(0, len(TEXT), step))
    out += s.flush()
    assert out == protect_text(TEXT, mode)
    assert "weigh the options. Then" not in out and "Done" in out


def test_reasoning_fields_and_keep_mode() -> None:
    msg = {"content": TEXT, "reasoning_content": "Long chain. Of thought."}
    protect_message(msg, "strip")
    assert "reasoning_content" not in msg and "<think>" not in msg["content"]
    msg = {"content": TEXT, "reasoning": "Long chain. Of thought."}
    protect_message(msg, "summarize", 40)
    assert msg["reasoning"] == "[reasoning summarized] Long chain."
    keep = {"content": TEXT, "reasoning_content": "x"}
    protect_message(keep, "keep")
    assert keep == {"content": TEXT, "reasoning_content": "x"}
    s = StreamReasoning("summarize")
    assert s.reasoning_delta("Plan the proof. ") is None and s.reasoning_delta("Then x.") is None
    assert s.end_reasoning() == "[reasoning summarized] Plan the proof."


def test_canary_traces_the_right_account_and_spares_code() -> None:
    accounts = [f"acct{i}" for i in range(50)]
    key = derive_key("secret", "acct7", purpose="canary")
    marked, n = apply_canary(PROSE, key)
    assert n >= 12 and "`do not touch`" in marked
    ranked = detect_canary(marked, "secret", accounts)
    assert ranked[0].account_id == "acct7" and ranked[0].matches == ranked[0].sites
    assert ranked[0].p_value < 1e-3 < ranked[1].p_value
    # survives copy/paste-style whitespace and case changes
    pasted = " ".join(marked.split()).replace("You ", "you ")
    assert detect_canary(pasted, "secret", accounts)[0].account_id == "acct7"
    # unmarked text implicates nobody
    assert detect_canary(PROSE, "secret", accounts)[0].p_value > 1e-3
    assert len(sites("no markable phrasing here")) == 0


@pytest.mark.parametrize("step", [1, 4, 13, 64])
def test_streaming_canary_equals_whole_text(step: int) -> None:
    key = derive_key("secret", "acct3", purpose="canary")
    c = StreamingCanary(key)
    out = "".join(c.feed(PROSE[i : i + step]) for i in range(0, len(PROSE), step)) + c.flush()
    assert out == apply_canary(PROSE, key)[0]


def test_keys_file_errors_name_line_and_field(tmp_path: Path) -> None:
    p = tmp_path / "keys.yaml"
    p.write_text(
        "accounts:\n  a1: {account_type: edu}\n  a2: {account_type: pirate}\n"
        "keys:\n  sk-1: a1\n  sk-2: a2\n"
    )
    with pytest.raises(ConfigError, match=r"keys.yaml:3: field 'account_type': unknown account"):
        KeysFile.load(p)
    p.write_text(
        "accounts:\n  a1: {account_type: edu, verification: strong}\n"
        "keys:\n  sk-1: a1\n  'sha256:"
        + __import__("hashlib").sha256(b"sk-2").hexdigest()
        + "': a1\n"
    )
    kf = KeysFile.load(p)
    assert kf.resolve("sk-1").verification == "strong"  # type: ignore[union-attr]
    assert kf.resolve("sk-2").account_id == "a1"  # type: ignore[union-attr]
    assert kf.resolve("sk-3") is None and kf.resolve(None) is None
