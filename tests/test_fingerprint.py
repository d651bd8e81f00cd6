"""Prompt fingerprints: normalisation, scaffold/payload split, hashing, families, specificity."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from datasketch import MinHash

from antidistill import corpora
from antidistill.errors import InputError
from antidistill.fingerprint import (
    TRIVIAL_TEMPLATE_HASH,
    fingerprint,
    mask,
    normalize,
    template_specificity,
)
from antidistill.fingerprint.families import families, minhash_signatures, shingles
from antidistill.fingerprint.hashing import hash_strings
from antidistill.fingerprint.specificity import INFO_WORDS, specificity_table
from antidistill.fingerprint.templates import constant_words

GSM = [p.text for p in corpora.load("gsm8k")[:60]]
MATH = [p.text for p in corpora.load("math")[:40]]

WRAP_A = ("You are solving competition problems. Work through it step by step.\n"
          "Problem {k}: {p}\nWrite the final answer after 'ANSWER:'.")
WRAP_B = "### Task\n{p}\n\n### Instructions\nExplain every step of your reasoning, then answer."


def _wrap(wrapper: str, payloads: list[str]) -> list[str]:
    return [wrapper.replace("{p}", p).replace("{k}", str(17 + 3 * i)) for i, p in
            enumerate(payloads)]


def _fp(prompts: list[str | None], systems: list[str | None] | None = None) -> pa.Table:
    return fingerprint(pa.array(prompts, pa.string()),
                       None if systems is None else pa.array(systems, pa.string()))


def test_hash_is_stable_vectorised_and_null_safe() -> None:
    arr = pa.array(["abc", "", None, "abc", "abd", "é" * 70_000], pa.string())
    h = hash_strings(arr)
    assert h.dtype == np.uint64 and len(h) == 6
    assert h[0] == h[3] and h[1] == h[2] and len({h[0], h[1], h[4], h[5]}) == 4
    # slices, chunking and string width do not change the value
    assert list(hash_strings(arr.slice(3, 2))) == list(h[3:5])
    assert list(hash_strings(pa.chunked_array([arr.slice(0, 2), arr.slice(2)]))) == list(h)
    assert list(hash_strings(arr.cast(pa.large_string()))) == list(h)
    # pinned value: the shipped model's feature indices depend on this function never changing
    assert int(hash_strings(pa.array(["step by step"]))[0]) == 9921627423097125032


def test_normalize_removes_case_space_and_unicode_noise() -> None:
    raw = pa.array(["  Solve   THIS\r\n\r\n\tnow ", "solve this\nnow", "ﬁnd ＸＹ\u200b", None])
    out = normalize(raw).to_pylist()
    assert out[0] == out[1] == "solve this\nnow"
    assert out[2] == "find xy" and out[3] == ""


def test_mask_replaces_variable_slots() -> None:
    text = ('problem 17 of 250: see https://example.com/q?id=9 or mail a.b@c.org, file '
            '/home/bob/proj/main.py, id 3f2a9b1c, say "hello there" then ```x = 1\ny = 2```')
    masked = mask(normalize(pa.array([text]))).to_pylist()[0]
    for raw in ("17", "250", "example.com", "a.b@c.org", "/home/bob", "3f2a9b1c", "hello there",
                "x = 1"):
        assert raw not in masked, raw
    for slot in ("{n}", "{url}", "{email}", "{path}", "{id}", "{str}", "{code}"):
        assert slot in masked, slot


def test_same_scaffold_different_problems_and_numbers_same_template() -> None:
    rows = _wrap(WRAP_A, GSM[:20]) + _wrap(WRAP_B, GSM[20:40]) + MATH[:20]
    t = _fp(rows)
    tpl = np.asarray(t["template_hash"])
    assert len(set(tpl[:20])) == 1 and len(set(tpl[20:40])) == 1
    assert tpl[0] != tpl[20]
    assert tpl[0] != TRIVIAL_TEMPLATE_HASH and tpl[20] != TRIVIAL_TEMPLATE_HASH
    # bare corpus problems carry no scaffold
    assert set(tpl[40:]) == {TRIVIAL_TEMPLATE_HASH}
    # every payload is distinct
    assert len(set(np.asarray(t["content_hash"]))) == 60


def test_same_problem_different_wrapper_same_content() -> None:
    rows = _wrap(WRAP_A, GSM[:20]) + _wrap(WRAP_B, GSM[:20]) + GSM[:20]
    # whitespace/case noise on the bare copies
    rows[40:] = ["  " + r.upper().replace(" ", "   ") + "\n" for r in rows[40:]]
    content = np.asarray(_fp(rows)["content_hash"])
    assert (content[:20] == content[20:40]).all()
    assert (content[:20] == content[40:]).all()
    assert len(set(content[:20])) == 20


def test_system_prompt_is_part_of_the_template() -> None:
    payloads = GSM[:12]
    agent = "You are CodePilot, a coding agent. Today is 2026-11-{d}. Workspace: /home/u{d}/repo"
    systems = [agent.replace("{d}", str(10 + i)) for i in range(6)] + [None] * 6
    t = _fp(payloads, systems)
    tpl = np.asarray(t["template_hash"])
    assert len(set(tpl[:6])) == 1  # dates and paths are slots
    assert set(tpl[6:]) == {TRIVIAL_TEMPLATE_HASH}
    assert tpl[0] != TRIVIAL_TEMPLATE_HASH


def test_lsh_families_join_mutated_wrappers_only() -> None:
    base = ("Please solve the following math problem carefully and explain every step of your "
            "reasoning before you state the final answer clearly at the end.")
    mutants = [base, base.replace("carefully", "thoroughly"),
               base.replace("Please solve", "Solve"), base + " Be precise."]
    other = "Rate the assistant response below on a scale of one to ten for helpfulness."
    rows: list[str | None] = []
    for k, wrapper in enumerate([*mutants, other]):
        rows += [f"{wrapper}\n{p}" for p in GSM[10 * k: 10 * k + 10]]
    t = _fp(rows)
    tpl = np.asarray(t["template_hash"])
    fam = np.asarray(t["family_id"])
    assert len(set(tpl[:40])) == 4  # four exact templates...
    assert len(set(fam[:40])) == 1  # ...one family
    assert fam[40] != fam[0]
    assert len(set(fam[40:])) == 1


def test_minhash_matches_datasketch() -> None:
    texts = pa.array(["solve the problem {x} step by step", "thanks", "{x}"])
    owner, values = shingles(texts)
    sig = minhash_signatures(owner, values, len(texts))
    for k in range(len(texts)):
        ref = MinHash(num_perm=sig.shape[1], seed=1, scheme="affine64", hashfunc=lambda v: v)
        ref.update_batch([int(v) for v in values[owner == k]])
        assert (ref.hashvalues == sig[k]).all()
    fam = families(texts, hash_strings(texts))
    assert fam.dtype == np.int64 and len(set(fam)) == 3


def test_specificity_orders_templates_by_how_many_accounts_share_them() -> None:
    rng = np.random.default_rng(0)
    tpl, acc = [], []
    for t, n_acc in ((1, 3), (2, 30), (3, 300), (4, 3000), (TRIVIAL_TEMPLATE_HASH, 5)):
        for a in range(n_acc):
            tpl += [t] * 2
            acc += [f"t{t}-a{a}" if t != 4 else f"a{a}"] * 2
    # the 3000-account template is shared by (almost) everyone else too
    order = rng.permutation(len(tpl))
    out = template_specificity(pa.array(np.array(tpl, dtype=np.uint64)[order]),
                               pa.array(np.array(acc)[order]))
    spec = dict(zip(out["template_hash"].to_pylist(), out["specificity"].to_pylist(), strict=True))
    n_req = dict(zip(out["template_hash"].to_pylist(), out["n_requests"].to_pylist(), strict=True))
    assert spec[1] > spec[2] > spec[3] > spec[4] >= 0.0
    assert spec[1] > 0.9 and spec[2] > 0.8 and spec[4] < 0.01
    assert spec[TRIVIAL_TEMPLATE_HASH] == 0.0
    assert n_req[2] == 60
    assert all(0.0 <= s <= 1.0 for s in spec.values())


def test_specificity_share_floor_in_small_logs() -> None:
    # 40 accounts: a template used by 30 of them is generic here, one used by 4 is not
    tpl = [7] * 30 + [8] * 4 + [9] * 6
    acc = [f"a{i}" for i in range(30)] + [f"b{i}" for i in range(4)] + [f"c{i}" for i in range(6)]
    out = template_specificity(pa.array(tpl, pa.uint64()), pa.array(acc))
    spec = dict(zip(out["template_hash"].to_pylist(), out["specificity"].to_pylist(), strict=True))
    assert spec[7] == 0.0 and spec[8] > 0.75 and spec[9] < spec[8]


def test_constant_words_count_fixed_text_only() -> None:
    texts = ["{x}", "{x} let's think step by step.", "solve {n} + {n}: {x}",
             "{x} {str} {code} {url} {email} {id} {path}", "请一步一步思考 {x}", None]
    got = constant_words(pa.array(texts, pa.large_string())).tolist()
    # slots are not words; a single letter is not a word; each CJK character counts
    assert got == [0, 5, 1, 0, 8, 0]
    assert constant_words(pa.array([], pa.large_string())).size == 0


def test_fingerprint_counts_the_template_and_system_words() -> None:
    rows = _wrap(WRAP_B, GSM[:12]) + [p + " Let's think step by step." for p in GSM[12:24]]
    t = _fp(rows, ["You are a careful tutor."] * 6 + [None] * 18)
    words = np.asarray(t["template_words"])
    assert t.schema.field("template_words").type == pa.int32()
    assert words[6] == 10  # "### Task ... Explain every step of your reasoning, then answer."
    assert words[0] == words[6] + 4  # plus the system prompt's four words
    assert (words[12:] == 5).all()  # "let", "think", "step", "by", "step": "s" is no word


def test_specificity_scales_short_generic_templates_down() -> None:
    """A template two accounts share says little when its fixed text is a phrase anybody
    types; a dozen words or more keep the full count-based specificity."""
    out = specificity_table(pa.array([1, 2, 3, 4], pa.uint64()), np.array([2, 2, 2, 2]),
                            np.array([50, 50, 50, 50]), 1000,
                            words=np.array([4.0, INFO_WORDS, 40.0, np.nan]))
    spec = dict(zip(out["template_hash"].to_pylist(), out["specificity"].to_pylist(), strict=True))
    full = spec[3]
    assert full > 0.99 and spec[2] == full and spec[4] == full  # unknown words: not scaled
    assert spec[1] == pytest.approx(full * 4 / INFO_WORDS) and spec[1] < 0.5


def test_specificity_validates_lengths_and_handles_empty() -> None:
    with pytest.raises(InputError):
        template_specificity(pa.array([1], pa.uint64()), pa.array(["a", "b"]))
    empty = template_specificity(pa.array([], pa.uint64()), pa.array([], pa.string()))
    assert empty.num_rows == 0 and empty.schema.names == [
        "template_hash", "n_accounts", "n_requests", "specificity"]


def test_fingerprint_is_row_aligned_and_robust() -> None:
    huge = "x " * 400_000 + "the end"
    rows: list[str | None] = [None, "", "   ", "多语言提示：请逐步解释。", "🙂" * 50, huge,
                              "thanks", "Thanks!", "THANKS"]
    t = _fp(rows, [None, "", None, "系统", None, None, None, None, None])
    assert t.num_rows == len(rows)
    assert t.schema.field("template_hash").type == pa.uint64()
    assert t.schema.field("content_hash").type == pa.uint64()
    assert t.schema.field("family_id").type == pa.int64()
    assert t.schema.field("template_words").type == pa.int32()
    assert all(col.null_count == 0 for col in t.columns)
    c = np.asarray(t["content_hash"])
    assert c[0] == c[1] == c[2]
    assert c[6] == c[7] == c[8]
    assert _fp([]).num_rows == 0
    with pytest.raises(InputError):
        fingerprint(pa.array(["a"]), pa.array(["a", "b"]))


def test_signature_of_a_union_is_the_minimum_of_signatures() -> None:
    # scaffold signatures are combined per segment and with the system prompt's this way
    from antidistill.fingerprint.families import signatures

    parts = pa.array(["solve the problem below carefully", "show every step", "{x}"])
    sig, has = signatures(parts)
    _owner, values = shingles(parts)
    union = minhash_signatures(np.zeros(len(values), dtype=np.int64), values, 1)
    assert has.all() and (sig.min(axis=0) == union[0]).all()


def test_encode_unique_is_chunk_invariant_and_merges_normalised_duplicates() -> None:
    from antidistill.fingerprint import encode_unique

    arr = pa.array(["Hello  World", "hello world", None, "", "other", "Hello World"], pa.string())
    whole = encode_unique(arr)
    chunked = encode_unique(pa.chunked_array([arr.slice(0, 2), arr.slice(2, 3), arr.slice(5)]))
    assert whole.texts.to_pylist() == chunked.texts.to_pylist()
    assert list(whole.index) == list(chunked.index)
    idx = whole.index
    assert idx[0] == idx[1] == idx[5] and idx[2] == idx[3] and len(set(idx)) == 3
