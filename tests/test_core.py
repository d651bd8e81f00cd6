"""The shared spine: errors, schema helpers used everywhere, contracts, keys, corpora, CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from antidistill import contracts, corpora, keys
from antidistill.errors import AntidistillError, InputError, PolicyError, SchemaError


def test_input_error_names_where_and_field() -> None:
    exc = InputError("not a timestamp", where="logs/a.jsonl:17", field="ts")
    assert str(exc) == "logs/a.jsonl:17: field 'ts': not a timestamp"
    assert isinstance(PolicyError("x"), AntidistillError)
    assert str(InputError("plain")) == "plain"


def test_derive_key_separates_accounts_purposes_and_epochs() -> None:
    a = keys.derive_key("s3cret", "acct-1", purpose="watermark")
    assert len(a) == 32
    assert a == keys.derive_key(b"s3cret", "acct-1", purpose="watermark")
    others = {
        keys.derive_key("s3cret", "acct-2", purpose="watermark"),
        keys.derive_key("s3cret", "acct-1", purpose="canary"),
        keys.derive_key("s3cret", "acct-1", purpose="watermark", epoch=1),
        keys.derive_key("other", "acct-1", purpose="watermark"),
    }
    assert a not in others and len(others) == 4
    assert keys.key_id(a) != keys.key_id(next(iter(others)))
    with pytest.raises(ValueError):
        keys.derive_key("", "acct-1", purpose="canary")


def test_every_vendored_corpus_loads_with_real_text() -> None:
    expected_min = {"arena_hard": 500, "gsm8k": 7000, "math": 4900, "humaneval": 164,
                    "hh_harmless": 2000, "mt_bench": 80, "bfcl_simple": 390}
    all_prompts = corpora.load_all()
    for name, n in expected_min.items():
        assert len(all_prompts[name]) >= n, name
    assert all(p.tools for p in all_prompts["bfcl_simple"])
    assert {p.capability for ps in all_prompts.values() for p in ps} == {
        "chat", "math", "coding", "tool_use", "safety"}
    with pytest.raises(KeyError):
        corpora.load("nope")


def _accounts_table(**overrides: pa.Array) -> pa.Table:
    cols = {
        "account_id": pa.array(["a", "b"]),
        "risk": pa.array([0.9, 0.1]),
        "flagged": pa.array([True, False]),
        "cluster_id": pa.array(["c1", None]),
        "campaign_id": pa.array(["k1", None]),
        "reasons": pa.array([["x"], []], pa.list_(pa.string())),
        "harvest_share": pa.array([0.8, 0.0]),
        "n_exchanges": pa.array([10, 2]),
    }
    cols.update(overrides)
    return pa.table(cols)


def test_read_accounts_checks_contract(tmp_path: Path) -> None:
    good = tmp_path / "accounts.parquet"
    pq.write_table(_accounts_table(), good)
    table = contracts.read_accounts(good)
    assert table.num_rows == 2 and "n_exchanges" in table.column_names

    missing = tmp_path / "missing.parquet"
    pq.write_table(_accounts_table().drop(["risk"]), missing)
    with pytest.raises(SchemaError, match=r"missing\.parquet: field 'risk': required column"):
        contracts.read_accounts(missing)

    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"not parquet")
    with pytest.raises(SchemaError, match=r"garbage\.parquet"):
        contracts.read_accounts(garbage)


def test_cli_help_lists_commands() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "antidistill", "--help"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0 and "run" in proc.stdout
