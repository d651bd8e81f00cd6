"""Hand-written legitimate look-alikes, added to a world: which of them does detection flag?

    python benchmarks/bench_lookalikes.py --world DIR [--world DIR ...] [--model FILE]

The simulator's ordinary users are one author's idea of ordinary use; a scorer can learn that
idea's quirks (every simulated user mixes two or three models, no simulated campaign has an
org). This benchmark writes, apart from the simulator (texts from the vendored corpora), 27
accounts that a real provider has and that look like harvesting at first sight:

- ``cot_habit`` (5): individuals who end every question with a step-by-step phrase ("Let's
  think step by step.", "Show your work.", ...), ~12 questions a day, one model;
- ``cot_power`` (4): the same habit at ~30 a day, two of them on two models;
- ``judge_lab`` (3): research labs running MT-bench-style LLM-as-judge grading once (960 judge
  prompts at ~2/s: rubric grading, single-turn, temperature 0), plus a little daily chat;
- ``qa_grader`` (2): enterprises scoring support replies with a rubric of their own, 900 a
  day around the clock, one system prompt;
- ``support_bot`` (2): enterprise chatbots, 1,500 end-user questions a day;
- ``sdk_dev`` (4): developers scripting code reviews/tests of HumanEval-style functions through
  the SDK, ~40 a workday, one model;
- ``shared_key`` (2): a company key used by staff in three timezones (around the clock), some
  asking for step-by-step math;
- ``teacher_rubric`` (3): teachers grading essays with their own rubric, ~20 a school evening;
- ``rewrite_habit`` (2): writers who ask for every message to be rephrased politely (~15 a day).

Each variant runs detection on the world's log plus the look-alikes: ``plain`` (no reasoning
tokens) and ``reasoning`` (every look-alike exchange has reasoning tokens, as on a reasoning
model, where the share of them is no longer a harvesting cue). Per group: accounts flagged,
highest risk, and how many pairs of the group's (unrelated) accounts share a cluster; for the
world: recall and FPR, to show the look-alikes cost the campaigns nothing. Results go to
``benchmarks/results/lookalikes.json``.
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from antidistill import corpora
from quality_common import model_digest, parser, previous_results, write_results

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "lookalikes.json"

JUDGE = ("[Instruction]\nPlease act as an impartial judge and evaluate the quality of the "
         "response provided by an AI assistant to the user question displayed below. Your "
         "evaluation should consider factors such as the helpfulness, relevance, accuracy, "
         "depth, creativity, and level of detail of the response. Begin your evaluation by "
         "providing a short explanation. Be as objective as possible. After providing your "
         "explanation, you must rate the response on a scale of 1 to 10 by strictly following "
         "this format: \"[[rating]]\", for example: \"Rating: [[5]]\".\n\n[Question]\n{q}\n\n"
         "[The Start of Assistant's Answer]\n{a}\n[The End of Assistant's Answer]")
QA = (("Score the support agent's reply below from 1 to 5 on each of: accuracy, empathy, "
       "policy compliance. Explain each score in one sentence, then return JSON "
       "{{\"accuracy\": n, \"empathy\": n, \"policy\": n}}.\n\nCustomer message:\n{q}\n\n"
       "Agent reply:\n{a}"),
      ("Ticket review. Customer wrote:\n\"\"\"{q}\"\"\"\nOur agent answered:\n\"\"\"{a}\"\"\"\n"
       "Grade the answer: PASS or FAIL for tone, correctness and escalation, with one line of "
       "justification each."))
BOTS = ("You are Max, the friendly assistant of ShopRight. Answer briefly and politely.",
        "You are the virtual agent of Northwind Telecom. Help with plans, bills and outages; "
        "hand over to a human for cancellations.")
HABITS = ("{q}\n\nThink step by step.", "{q} Let's think step by step.",
          "{q}\nPlease explain your reasoning.", "{q}\n\nShow your work.")
RUBRIC = ("Grade this essay with the rubric: thesis (0-4), evidence (0-4), organisation (0-4), "
          "mechanics (0-4). Give each score with one sentence of feedback, then the total.\n\n"
          "Essay:\n{e}",
          "Mark this student answer out of 10 against my marking scheme (accuracy, clarity, use of "
          "examples) and suggest one improvement:\n{e}")
REWRITE = ("Rewrite this so it sounds more professional and polite:\n{t}",
           "Please rephrase my message in neutral, respectful English: {t}")
CODE_ASKS = ("Review this function and point out bugs:\n\n{q}", "Write unit tests for:\n{q}",
             "Explain what this code does:\n{q}")


class Lookalikes:
    """Rows of the look-alike accounts over ``days`` days from ``t0`` (schema v1 dicts)."""

    def __init__(self, t0: datetime, days: int, seed: int, reasoning: bool):
        self.t0, self.days, self.reasoning = t0, days, reasoning
        self.rng = np.random.default_rng(seed)
        self.rows: list[dict[str, Any]] = []
        self.groups: dict[str, str] = {}
        self.mt = [(p.text, *p.turns) for p in corpora.load("mt_bench")]
        self.arena = [p.text for p in corpora.load("arena_hard")]
        self.gsm = [p.text for p in corpora.load("gsm8k")]
        self.he = [p.text for p in corpora.load("humaneval")]
        self.asks = [p.text for p in corpora.load("hh_harmless")]  # each chat's first ask
        self.hh = [r["chosen"] for r in corpora.records("hh_harmless")]

    def human(self, i: int) -> str:
        return self.asks[i % len(self.asks)]

    def answer(self, i: int) -> str:
        return self.hh[i % len(self.hh)].split("\n\nAssistant: ")[1].split("\n\nHuman:")[0]

    def created(self, acct: str) -> datetime:
        """An account's own creation instant, 60-900 days back (fixed per account)."""
        h = int(hashlib.sha256(acct.encode()).hexdigest()[:8], 16)
        return self.t0 - timedelta(days=60 + h % 840, seconds=h % 86400)

    def pick(self, items: Sequence[Any]) -> Any:
        return items[int(self.rng.integers(0, len(items)))]

    def add(self, group: str, acct: str, ts: datetime, prompt: str, **kw: Any) -> None:
        self.groups[acct] = group
        out = int(self.rng.integers(80, 900))
        row = {"request_id": "req_look_" + hashlib.sha256(
                   f"{acct}|{len(self.rows)}".encode()).hexdigest()[:16],
               "ts": ts, "account_id": acct, "org_id": None, "account_type": "individual",
               "account_created_at": self.created(acct), "verified": True,
               "pathway": "direct", "payment_fp": "pm_" + hashlib.sha256(
                   acct.encode()).hexdigest()[:16], "ip": None, "asn": None,
               "client_fp": "python-sdk/1.40.0", "model": "atlas-3", "system_prompt": None,
               "prompt": prompt, "n_messages": 1, "n_tools": 0, "has_image": False,
               "input_tokens": len(prompt) // 4, "output_tokens": out, "reasoning_tokens": 0,
               "max_tokens": None, "temperature": None, "status": "ok", **kw}
        if self.reasoning:
            row["reasoning_tokens"] = int(row["output_tokens"] * self.rng.uniform(0.2, 0.7))
        self.rows.append(row)

    def hours(self, day: int, n: int, tz: float = 0.0, h0: float = 9, h1: float = 18,
              ) -> list[datetime]:
        return sorted(self.t0 + timedelta(days=day, hours=float(h) - tz)
                      for h in self.rng.uniform(h0, h1, n))

    def uniform(self, n: int) -> list[datetime]:
        return sorted(self.t0 + timedelta(seconds=float(s))
                      for s in self.rng.uniform(0, self.days * 86400, n))

    def build(self) -> None:
        for build in (self.cot_habit, self.cot_power, self.judge_lab, self.qa_grader,
                      self.support_bot, self.sdk_dev, self.shared_key, self.teacher_rubric,
                      self.rewrite_habit):
            build()

    def cot_habit(self) -> None:
        for k in range(5):
            acct, style = f"acct_look_habit{k}", HABITS[k % len(HABITS)]
            for d in range(self.days):
                for t in self.hours(d, int(self.rng.poisson(12)), h0=8, h1=23):
                    u = self.rng.random()
                    q = (self.pick(self.arena) if u < 0.5 else
                         self.pick(self.gsm) if u < 0.8 else
                         self.human(int(self.rng.integers(0, 2000))))
                    self.add("cot_habit", acct, t, style.format(q=q), ip=f"73.{40 + k}.12.7",
                             asn=7922, client_fp="chat-web", verified=False)

    def cot_power(self) -> None:
        for k in range(4):
            acct, style = f"acct_look_power{k}", HABITS[(k + 1) % len(HABITS)]
            for d in range(self.days):
                for t in self.hours(d, int(self.rng.poisson(30)), h0=7, h1=24):
                    q = (self.pick(self.arena) if self.rng.random() < 0.6
                         else self.pick(self.gsm))
                    model = "atlas-3" if k < 2 or self.rng.random() < 0.7 else "atlas-3-mini"
                    self.add("cot_power", acct, t, style.format(q=q), model=model,
                             ip=f"24.{60 + k}.3.{int(self.rng.integers(1, 3))}", asn=7018,
                             client_fp="chat-web")

    def judge_lab(self) -> None:
        for k in range(3):
            acct = f"acct_look_judge{k}"
            start = self.t0 + timedelta(days=float(self.rng.uniform(0.5, self.days - 1)))
            gaps = np.cumsum(self.rng.exponential(0.5, 960))
            for i, g in enumerate(gaps):
                q = self.mt[i % len(self.mt)][(i // len(self.mt)) % 2]
                self.add("judge_lab", acct, start + timedelta(seconds=float(g)),
                         JUDGE.format(q=q, a=self.answer(7 * i + k)), org_id=f"org_lab{k}",
                         account_type="research", temperature=0.0, max_tokens=2048,
                         ip=f"128.32.{k}.{int(self.rng.integers(2, 4))}", asn=25,
                         client_fp="python-requests/2.31")
            for d in range(self.days):
                for t in self.hours(d, int(self.rng.poisson(4))):
                    self.add("judge_lab", acct, t, self.pick(self.arena),
                             org_id=f"org_lab{k}", account_type="research",
                             ip=f"128.32.{k}.9", asn=25, client_fp="chat-web")

    def qa_grader(self) -> None:
        for k in range(2):
            for t in self.uniform(self.days * 900):
                j = int(self.rng.integers(0, len(self.hh)))
                self.add("qa_grader", f"acct_look_qa{k}", t,
                         QA[k].format(q=self.human(j), a=self.answer(j)), org_id=f"org_qa{k}",
                         account_type="enterprise", n_messages=2, temperature=0.0,
                         system_prompt="You are a quality reviewer for a customer support team.",
                         max_tokens=512, ip=f"52.10.{k}.{int(self.rng.integers(1, 5))}",
                         asn=16509, client_fp="openai-python/1.40.0")

    def support_bot(self) -> None:
        for k in range(2):
            for t in self.uniform(self.days * 1500):
                self.add("support_bot", f"acct_look_bot{k}", t,
                         self.human(int(self.rng.integers(0, len(self.hh)))),
                         org_id=f"org_bot{k}", account_type="enterprise",
                         system_prompt=BOTS[k],
                         n_messages=int(self.rng.integers(2, 9)), temperature=0.3,
                         max_tokens=400, ip=f"34.120.{k}.{int(self.rng.integers(1, 9))}",
                         asn=396982, client_fp="node-sdk/4.72.0")

    def sdk_dev(self) -> None:
        for k in range(4):
            for d in range(self.days):
                if (self.t0 + timedelta(days=d)).weekday() >= 5:
                    continue
                for t in self.hours(d, int(self.rng.poisson(40)), tz=-5 if k % 2 else 1):
                    ask = self.pick(CODE_ASKS).format(q=self.pick(self.he))
                    self.add("sdk_dev", f"acct_look_dev{k}", t, ask, org_id=f"org_dev{k}",
                             account_type="startup", max_tokens=4096, temperature=0.2,
                             ip=f"98.{k}.77.{int(self.rng.integers(1, 4))}", asn=7922,
                             client_fp="openai-python/1.51.0")

    def shared_key(self) -> None:
        for k in range(2):
            for d in range(self.days):
                for tz in (-8.0, 1.0, 8.0):
                    for t in self.hours(d, int(self.rng.poisson(25)), tz=tz):
                        u = self.rng.random()
                        q = (self.pick(self.arena) if u < 0.5 else
                             self.human(int(self.rng.integers(0, 2000))) if u < 0.8 else
                             self.pick(self.gsm) + " Explain step by step.")
                        self.add("shared_key", f"acct_look_shared{k}", t, q,
                                 org_id=f"org_shared{k}", account_type="team",
                                 ip=f"{60 + int(tz)}.1.{k}.9", asn=3356,
                                 client_fp="node-sdk/4.72.0")

    def teacher_rubric(self) -> None:
        for k in range(3):
            acct = f"acct_look_teacher{k}"
            for d in range(self.days):
                if (self.t0 + timedelta(days=d)).weekday() >= 5:
                    continue
                for t in self.hours(d, int(self.rng.poisson(20)), tz=float(k - 1), h0=15, h1=22):
                    essay = self.answer(int(self.rng.integers(0, len(self.hh))))
                    self.add("teacher_rubric", acct, t, RUBRIC[k % len(RUBRIC)].format(e=essay),
                             account_type="edu", ip=f"81.{20 + k}.4.2", asn=3320,
                             client_fp="chat-web")

    def rewrite_habit(self) -> None:
        for k in range(2):
            acct = f"acct_look_rewrite{k}"
            for d in range(self.days):
                for t in self.hours(d, int(self.rng.poisson(15)), tz=5.5, h0=9, h1=21):
                    text = self.human(int(self.rng.integers(0, len(self.hh))))
                    self.add("rewrite_habit", acct, t, REWRITE[k].format(t=text),
                             ip=f"49.{36 + k}.8.1", asn=55836, client_fp="chat-web")


def lookalike_log(world_log: Path, out: Path, *, seed: int, reasoning: bool) -> dict[str, str]:
    """Write the look-alikes over the world's days to ``out``; return account -> group."""
    from antidistill.schema import EXCHANGE_SCHEMA

    span = pc.min_max(pq.read_table(world_log, columns=["ts"]).column("ts")).as_py()
    first, last = span["min"], span["max"]
    t0 = datetime(first.year, first.month, first.day, tzinfo=UTC)
    days = max(1, (last - t0).days)
    look = Lookalikes(t0, days, seed, reasoning)
    look.build()
    end = t0 + timedelta(days=days)
    rows = [r for r in look.rows if r["ts"] < end]
    pq.write_table(pa.Table.from_pylist(rows, schema=EXCHANGE_SCHEMA), out)
    return look.groups


def measure(world: Path, model: Path | None, work: Path, *, seed: int,
            reasoning: bool) -> dict[str, Any]:
    from antidistill.detect import detect
    from antidistill.evaluate import evaluate_dir

    log = work / "lookalikes.parquet"
    groups = lookalike_log(world / "exchanges.parquet", log, seed=seed, reasoning=reasoning)
    out = work / "out"
    models = world / "models.csv"
    detect([world / "exchanges.parquet", log], out, model_path=model, progress=False,
           report=False, models=models if models.is_file() else None)
    acc = pq.read_table(out / "accounts.parquet",
                        columns=["account_id", "risk", "flagged", "cluster_id"]).to_pylist()
    by_id = {r["account_id"]: r for r in acc}
    per_group: dict[str, Any] = {}

    def same(pair: tuple[str, str]) -> bool:
        cluster = by_id[pair[0]]["cluster_id"]
        return cluster is not None and cluster == by_id[pair[1]]["cluster_id"]

    for group in dict.fromkeys(groups.values()):
        ids = sorted(a for a, g in groups.items() if g == group)
        rows = [by_id[a] for a in ids]
        per_group[group] = {
            "accounts": len(ids), "flagged": sum(bool(r["flagged"]) for r in rows),
            "max_risk": round(max(float(r["risk"]) for r in rows), 3),
            "pairs_clustered": sum(1 for p in combinations(ids, 2) if same(p))}
    ev = evaluate_dir(out, world / "labels.parquet")
    return {"groups": per_group,
            "flagged": sum(g["flagged"] for g in per_group.values()),
            "accounts": len(groups),
            "world": {"recall": ev["recall"], "fpr": ev["fpr"],
                      "ari_campaign": ev["ari_campaign"]}}


def main(argv: list[str] | None = None) -> int:
    ap = parser(__doc__, RESULTS)
    ap.add_argument("--seed", type=int, default=5, help="seed of the look-alikes' randomness")
    args = ap.parse_args(argv)
    digest = model_digest(args.model)
    previous = previous_results(args.out)
    for world in args.world:
        runs: dict[str, Any] = {}
        for name, reasoning in (("plain", False), ("reasoning", True)):
            with tempfile.TemporaryDirectory(prefix="antidistill-look-") as tmp:
                runs[name] = r = measure(world, args.model, Path(tmp), seed=args.seed,
                                         reasoning=reasoning)
            worst = ", ".join(f"{g} {v['flagged']}/{v['accounts']} (max {v['max_risk']})"
                              for g, v in r["groups"].items())
            print(f"{world.name} {name}: {r['flagged']}/{r['accounts']} look-alikes flagged "
                  f"[{worst}]; world recall {r['world']['recall']:.4f} FPR "
                  f"{r['world']['fpr']:.5f} ARI {r['world']['ari_campaign']:.3f}", flush=True)
        previous[f"{world.resolve()}|model:{digest}|seed:{args.seed}"] = {
            "world": str(world), "model_sha256_12": digest, "seed": args.seed,
            "when": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "runs": runs}
    write_results(args.out, previous)
    return 0


if __name__ == "__main__":
    sys.exit(main())
