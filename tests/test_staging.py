"""Staging: the threaded request stage gives exactly what one thread gives, in log order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

import antidistill.features.staging as staging
from antidistill.detect import connect
from antidistill.features import requests
from antidistill.fingerprint import HashCache
from antidistill.simulate import simulate_world


def _staged(log: Path, tmp: Path, workers: int) -> pa.Table:
    requests._cache.clear()  # each run pays for its own classification
    con = connect(tmp)
    n = staging.stage(con, [log], workers=workers)
    table = con.sql("SELECT * FROM ex").to_arrow_table()
    con.close()
    assert n == table.num_rows
    return table


def test_threaded_staging_equals_one_thread(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    simulate_world(tmp_path / "w", seed=5, days=1, accounts=120, progress=False)
    log = tmp_path / "w" / "exchanges.parquet"
    monkeypatch.setattr(staging, "CHUNK_ROWS", 700)  # many chunks, several in flight
    one = _staged(log, tmp_path / "a", workers=1)
    two = _staged(log, tmp_path / "b", workers=2)
    assert one.num_rows > 5 * 700
    # the same rows in the same order (inserted in log order whichever thread finished first)
    assert one.equals(two)


def test_cache_put_skips_keys_stored_meanwhile() -> None:
    cache = HashCache(max_entries=100)
    keys = np.array([5, 1, 9], dtype=np.uint64)
    cache.put(keys, np.arange(3, dtype=np.float32)[:, None])
    # another thread computed 9 as well, plus a new key
    cache.put(np.array([9, 7], dtype=np.uint64), np.array([[99.0], [7.0]], dtype=np.float32))
    assert cache.keys.tolist() == [1, 5, 7, 9]
    found, rows = cache.get(np.array([9, 7, 3], dtype=np.uint64))
    assert found.tolist() == [True, True, False]
    assert rows is not None and rows[:, 0].tolist() == [2.0, 7.0]


def test_specificity_grouped_in_sql_equals_per_request(tmp_path: Path) -> None:
    """The same counts as :func:`template_specificity` per request, then each template (of a
    family: its shortest member) scaled by its fixed words."""
    from antidistill.detect import _specificity
    from antidistill.fingerprint import template_specificity
    from antidistill.fingerprint.specificity import information

    simulate_world(tmp_path / "w", seed=6, days=1, accounts=120, progress=False)
    con = connect(tmp_path / "db")
    staging.stage(con, [tmp_path / "w" / "exchanges.parquet"])
    for key, column in (("template_hash", "template_hash"), ("hash(family_id)", "family_id")):
        rows = con.sql(f"SELECT {key} AS k, account_id, template_words FROM ex "
                       f"WHERE {column} IS NOT NULL").to_arrow_table()
        per_request = template_specificity(rows.column("k").combine_chunks(),
                                           rows.column("account_id").combine_chunks())
        words: dict[int, int] = {}
        for k, w in zip(rows.column("k").to_pylist(), rows.column("template_words").to_pylist(),
                        strict=True):
            words[k] = min(words.get(k, w), w)
        grouped = _specificity(con, key, column)
        assert grouped.num_rows > 10
        assert grouped.drop_columns(["specificity"]).equals(
            per_request.drop_columns(["specificity"]))
        scale = information(np.array([words[k] for k in grouped["template_hash"].to_pylist()]))
        assert np.allclose(grouped["specificity"].to_numpy(),
                           per_request["specificity"].to_numpy() * scale)
        assert (scale < 1).any() and (scale == 1).any()
    con.close()
