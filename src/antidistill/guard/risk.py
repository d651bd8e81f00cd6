"""The batch risk table (detection's ``accounts.parquet``) as an in-memory lookup."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from antidistill.contracts import read_accounts, read_clusters


@dataclass(frozen=True, slots=True)
class AccountRisk:
    """What the last batch run concluded about one account."""

    risk: float
    flagged: bool
    cluster_id: str | None = None
    campaign_id: str | None = None


class RiskTable:
    """``account_id -> AccountRisk``; unknown accounts (e.g. opened since the batch run) -> None."""

    def __init__(self, rows: dict[str, AccountRisk] | None = None, source: str | None = None):
        self.rows = rows or {}
        self.source = source

    @classmethod
    def load(cls, accounts: str | Path, clusters: str | Path | None = None) -> RiskTable:
        table = read_accounts(accounts)
        campaign_of: dict[str, str] = {}
        if clusters is not None:
            ct = read_clusters(clusters)
            for cid, camp in zip(
                ct.column("cluster_id").to_pylist(),
                ct.column("campaign_id").to_pylist(),
                strict=True,
            ):
                if camp:
                    campaign_of[cid] = camp
        cols = [
            table.column(n).to_pylist()
            for n in ("account_id", "risk", "flagged", "cluster_id", "campaign_id")
        ]
        rows = {
            acc: AccountRisk(
                float(risk), bool(flagged), cl, camp or (campaign_of.get(cl) if cl else None)
            )
            for acc, risk, flagged, cl, camp in zip(*cols, strict=True)
        }
        return cls(rows, str(accounts))

    def get(self, account_id: str) -> AccountRisk | None:
        return self.rows.get(account_id)

    def flagged(self) -> dict[str, AccountRisk]:
        return {a: r for a, r in self.rows.items() if r.flagged}

    def __len__(self) -> int:
        return len(self.rows)
