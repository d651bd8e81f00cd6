"""The README's main job, run the way users run it: the console script on embedded defaults."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

from antidistill.contracts import read_accounts


def test_run_simulates_detects_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "antidistill", "run", "--out", str(out), "--days", "2"],
        capture_output=True, text=True, check=False, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    world, det = out / "world", out / "detect"
    for name in ("exchanges.parquet", "labels.parquet", "exchange_labels.parquet", "models.csv"):
        assert (world / name).is_file(), name
    accounts = read_accounts(det / "accounts.parquet")
    labels = pq.read_table(world / "labels.parquet")
    assert accounts.num_rows == labels.num_rows
    campaigns = json.loads((det / "campaigns.json").read_text())
    assert campaigns["campaigns"], "a simulated week with campaigns must yield campaigns"
    # every campaign is made of flagged accounts whose traffic is (partly) harvesting
    assert all(c["mean_harvest_share"] > 0 for c in campaigns["campaigns"])
    html = (det / "report.html").read_text()
    assert "<svg" in html and "http://" not in html.replace("http://www.w3.org", "")
    # the evaluation against the simulator's labels is printed
    assert "recall" in proc.stdout and "Legitimate populations" in proc.stdout
