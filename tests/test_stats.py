"""``print_stats`` on a world directory, on a bare Parquet file, and on bad paths."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from antidistill.errors import InputError
from antidistill.simulate import simulate_world
from antidistill.stats import print_stats


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("stats_world")
    simulate_world(out, seed=2, days=2, accounts=150, progress=False)
    return out


def _render(path: Path) -> str:
    console = Console(record=True, width=200)
    print_stats(path, console=console)
    return console.export_text()


def test_world_directory_shows_counts_days_models_populations(world: Path) -> None:
    import pyarrow.parquet as pq

    text = _render(world)
    n = pq.read_metadata(world / "exchanges.parquet").num_rows
    assert f"{n:,}" in text
    assert "2026-11-09 Mon" in text and "2026-11-10 Tue" in text
    assert "atlas-4" in text and "2026-11-10T" in text  # release from models.csv
    for name in ("casual_chat", "evasive", "A-reasoning", "reseller:"):
        assert name in text


def test_bare_parquet_file_has_no_population_table(world: Path) -> None:
    text = _render(world / "exchanges.parquet")
    assert "Per day" in text and "Populations" not in text


def test_bad_paths_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        print_stats(tmp_path / "missing", console=Console(record=True))
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(InputError, match="expected a world directory"):
        print_stats(tmp_path / "x.txt", console=Console(record=True))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"no exchanges\.parquet"):
        print_stats(tmp_path / "empty", console=Console(record=True))
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(InputError, match="cannot read"):
        print_stats(tmp_path / "bad.parquet", console=Console(record=True))


def test_directory_of_parquet_parts(world: Path, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    table = pq.read_table(world / "exchanges.parquet")
    half = table.num_rows // 2
    (tmp_path / "day=1").mkdir()
    (tmp_path / "day=2").mkdir()
    pq.write_table(table.slice(0, half), tmp_path / "day=1" / "part-0.parquet")
    pq.write_table(table.slice(half), tmp_path / "day=2" / "part-0.parquet")
    text = _render(tmp_path)
    assert f"{table.num_rows:,}" in text and "Populations" not in text


def test_corrupt_labels_in_a_world_is_a_one_line_error(world: Path, tmp_path: Path) -> None:
    import shutil

    broken = tmp_path / "w"
    shutil.copytree(world, broken)
    (broken / "labels.parquet").write_bytes(b"PAR1 broken")
    with pytest.raises(InputError, match="cannot read") as info:
        print_stats(broken, console=Console(record=True))
    assert "\n" not in str(info.value)
