"""A harvesting operation whose tactics are drawn at random: training data that teaches the threat.

The four scripted campaigns are four recipes. A scorer trained only on them learns the recipes —
"harvesters send single-turn requests", "harvesters set max_tokens to 16k", "harvesters use young
accounts" — and misses a fifth recipe (see ``benchmarks/generalisation.py``). ``evasion="mix"``
adds this population to a world: several cells of accounts, each drawing its own tactics from
the choices an operator really has:

* what it harvests (math reasoning, code, tool use, a mix) and how it asks (explicit reasoning
  requests, paraphrased ones, plain asks, plain asks with probing follow-ups);
* single- or multi-turn sessions (as deep as an agent loop), a harness's system prompt on every
  request or none, max_tokens and temperature habits, output effort;
* cover traffic (ordinary chat sessions) from none to over half;
* account age, declared type, verification; shared cards, own cards or a reseller; datacenter
  pools, residential proxies, home lines or a reseller's egress; one harness, distinct SDK user
  agents or chat clients; machine-flat, office, consumer or school-hours pacing, in one timezone
  or many; volume; a whole-window lifetime or short rotating accounts; model use from one model
  to an early pivot onto a new release;

while keeping the one thing harvesting cannot drop: each cell covers a dataset of hard prompts
without repeating an item across its accounts. Worlds with this population are for training only;
the report worlds (v1), the partly held-out v2 world and the held-out v3 world
(:mod:`antidistill.simulate.heldout`, written afterwards by another author) never contain it.
"""

from __future__ import annotations

import numpy as np

from antidistill.simulate import network as nw
from antidistill.simulate.accounts import IP_HOME, IP_PER_REQUEST, IP_STICKY_DAY
from antidistill.simulate.base import SessionPopulation, base_rows, lognormal_mean
from antidistill.simulate.context import (
    M_MAIN,
    M_NEW,
    P_CONSUMER,
    P_FLAT,
    P_SCHOOL,
    P_WORK,
    Ctx,
    legit_models,
)
from antidistill.simulate.datasets import DatasetWalk, math_items, math_size
from antidistill.simulate.populations import chat_turns
from antidistill.simulate.rows import (
    AGENT_STEP,
    CODE_EXPLAIN,
    CODING,
    FOLLOWUP,
    HOUR,
    MATH,
    MATH_COT,
    TOOL,
    Rows,
)

#: tasks a cell harvests: session shares of (math, code, tools) per target
_TARGETS = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.4, 0.3, 0.3]])
#: how a cell asks
ASK_COT, ASK_PARAPHRASED, ASK_PLAIN, ASK_PROBE = range(4)
_PROFILES = (P_FLAT, P_WORK, P_CONSUMER, P_SCHOOL)
_TYPES = ("individual", "startup", "edu", "research")
_HARNESS = ("python-httpx/0.27.2", "python-requests/2.32.3", "node-fetch/3.3.2",
            "aiohttp/3.10.10", "python-sdk/1.54.3 CPython/3.12.4")
_RESELLERS = ("apihub", "tokenbridge")
_CELLS = 4


class RandomizedHarvest(SessionPopulation):
    """Cells of harvesting accounts, each with tactics drawn at random (training worlds only)."""

    name = "randomized_harvest"
    campaign = "R-randomized"
    gap_s = 45.0

    def build(self, ctx: Ctx) -> None:
        rng = ctx.rng
        sizes = [ctx.n(float(rng.uniform(15, 100)), minimum=3) for _ in range(_CELLS)]
        self.n = n = sum(sizes)
        self.cell = np.repeat(np.arange(_CELLS), sizes)
        self.target = rng.integers(0, len(_TARGETS), _CELLS)
        self.ask = rng.integers(0, 4, _CELLS)
        self.cover = np.where(rng.random(_CELLS) < 0.4, 0.0, rng.uniform(0.1, 0.6, _CELLS))
        self.effort = rng.uniform(1.0, 1.4, _CELLS).astype(np.float32)
        self.model_mode = rng.integers(0, 3, _CELLS)  # one model, like users, early pivot
        self.pivot_delay = rng.uniform(1, 24, _CELLS) * HOUR
        self.pivot_share = rng.uniform(0.2, 0.7, _CELLS)
        multi = (self.ask == ASK_PROBE) | (rng.random(_CELLS) < 0.4)
        # 1.7 to 12 turns a session on average (log-uniform): an agent loop goes deep
        cells_turns_p = np.where(multi, np.exp(rng.uniform(np.log(0.08), np.log(0.6), _CELLS)),
                                 1.0)
        self.turns_p = cells_turns_p[self.cell]
        code_size = ctx.pool.size("humaneval") + ctx.pool.size("dev_task")
        self.walks = [[DatasetWalk(size, rng) for size in (math_size(ctx), code_size,
                                                     ctx.pool.size("bfcl"))]
                      for _ in range(_CELLS)]
        cols: dict[str, list[object]] = {k: [] for k in (
            "type", "created", "verified", "pathway", "payment", "client", "tz", "ip_mode",
            "ip_base", "ip_k")}
        rate, profile, mt, temp, act_from, act_to = [], [], [], [], [], []
        for c, k in enumerate(sizes):
            self._cell_accounts(ctx, rng, c, k, cols)
            # volume in requests a day, whatever the session depth
            per_day = float(np.exp(rng.uniform(np.log(3), np.log(60))))
            rate.append(lognormal_mean(rng, per_day * cells_turns_p[c], 0.4, k))
            profile.append(np.full(k, _PROFILES[int(rng.integers(0, len(_PROFILES)))]))
            big = rng.random() < 0.5
            mt.append(rng.choice([8192, 16384, 32768] if big else [-1, 1024, 2048, 4096], k))
            temp.append(rng.choice([np.nan, 0.2, 0.7, 1.0], k))
            if rng.random() < 0.35:  # short-lived accounts, rotated through the window
                start = ctx.start_us + (rng.uniform(-1, max(ctx.days - 1.5, 0.5), k)
                                        * (24 * HOUR)).astype(np.int64)
                act_from.append(start)
                act_to.append(start + (rng.uniform(1.5, 4, k) * 24 * HOUR).astype(np.int64))
            else:
                act_from.append(np.full(k, ctx.start_us - 24 * HOUR, np.int64))
                act_to.append(np.full(k, ctx.end_us + 24 * HOUR, np.int64))
        self.active_from = np.concatenate(act_from)
        self.active_to = np.concatenate(act_to)
        created = np.minimum(np.asarray(cols["created"], np.int64), self.active_from)
        self.first = ctx.accounts.add(
            n, population=self.name, campaign=self.campaign, account_type=cols["type"],
            created_at=created, verified=cols["verified"], pathway=cols["pathway"],
            payment=cols["payment"], client=cols["client"], tz=cols["tz"],
            ip_mode=cols["ip_mode"], ip_base=cols["ip_base"], ip_k=cols["ip_k"])[0]
        self.rate = np.concatenate(rate)
        self.profile = np.concatenate(profile)
        self.tz = np.asarray(cols["tz"], np.float64)
        self.mt = np.concatenate(mt).astype(np.int32)
        self.temp = np.concatenate(temp).astype(np.float32)
        # a harness that sends a system prompt with every harvesting request (so no request is
        # a lone user message), drawn last so that the draws above keep their values
        self.system = np.where(rng.random(_CELLS) < 0.5,
                               ctx.pool.base("chat_system")
                               + rng.integers(0, ctx.pool.size("chat_system"), _CELLS), -1)

    def _cell_accounts(self, ctx: Ctx, rng: np.random.Generator, c: int, k: int,
                       cols: dict[str, list[object]]) -> None:
        """One cell's identities: age, type, verification, payment, network, client, timezone."""
        fresh = rng.random() < 0.5
        cols["created"] += ctx.age_us(rng.uniform(2, 45, k) if fresh
                                      else rng.uniform(90, 1500, k)).tolist()
        main_type = _TYPES[int(rng.integers(0, len(_TYPES)))]
        cols["type"] += np.where(rng.random(k) < 0.8, main_type, "individual").tolist()
        cols["verified"] += (rng.random(k) < rng.uniform(0, 0.9)).tolist()
        pay_mode = int(rng.integers(0, 3))  # a few shared cards, own cards, a reseller
        rs = ctx.shared[f"reseller:{_RESELLERS[int(rng.integers(0, 2))]}"]
        via = pay_mode == 2 and rng.random() < 0.8
        n_cards = max(1, k // int(rng.integers(4, 15)))
        cols["payment"] += [rs["payment"] if pay_mode == 2 else
                            (f"R{c}-card{i % n_cards}" if pay_mode == 0 else f"R{c}-own{i}")
                            for i in range(k)]
        region, tz = nw.region_tz(rng, k)
        if rng.random() < 0.5:  # one operator's timezone, or accounts spread like users
            tz = np.full(k, tz[0])
        cols["tz"] += tz.tolist()
        net = 3 if via else int(rng.integers(0, 3))
        if net == 0:  # a datacenter pool, addresses rotated per request
            n_ip = max(8, k // 3)
            base = ctx.net.alloc(nw.DATACENTER, n_ip)
            cols["ip_base"] += (base + rng.integers(0, max(n_ip - 4, 1), k)).tolist()
            cols["ip_k"] += [4] * k
            cols["ip_mode"] += [IP_PER_REQUEST] * k
            cloud = rng.random() < 0.5
            cols["pathway"] += [("cloud:nimbus" if cloud else "direct")] * k
        elif net == 1:  # residential proxies, sticky for a day
            res = [a for r in nw.REGIONS for a in nw.RESIDENTIAL[r] + nw.MOBILE[r]]
            n_ip = max(100, 20 * k)
            cols["ip_base"] += [ctx.net.alloc(res, n_ip, v6_share=0.1)] * k
            cols["ip_k"] += [n_ip] * k
            cols["ip_mode"] += [IP_STICKY_DAY] * k
            cols["pathway"] += ["direct"] * k
        elif net == 2:  # each account on its own home line
            cols["ip_base"] += nw.home_ips(ctx.net, region, np.ones(k, np.int64)).tolist()
            cols["ip_k"] += [1] * k
            cols["ip_mode"] += [IP_HOME] * k
            cols["pathway"] += ["direct"] * k
        else:  # the reseller's egress
            cols["ip_base"] += [rs["ip_base"]] * k
            cols["ip_k"] += [rs["ip_k"]] * k
            cols["ip_mode"] += [IP_PER_REQUEST] * k
            cols["pathway"] += [f"reseller:{rs['payment'].removeprefix('reseller-')}"] * k
        client_mode = int(rng.integers(0, 3))
        if via:
            cols["client"] += [rs["client"]] * k
        elif client_mode == 0:
            cols["client"] += [_HARNESS[int(rng.integers(0, len(_HARNESS)))]] * k
        elif client_mode == 1:
            cols["client"] += nw.distinct_sdk_clients(rng, k)
        else:
            cols["client"] += np.asarray(nw.CHAT_CLIENTS)[
                rng.integers(0, len(nw.CHAT_CLIENTS), k)].tolist()

    def content(self, ctx: Ctx, acct: np.ndarray, ts: np.ndarray, turn: np.ndarray,
                sess: np.ndarray, rng: np.random.Generator) -> Rows:
        pool, n, loc = ctx.pool, acct.size, acct - self.first
        cell = self.cell[loc]
        r = base_rows(acct, ts, turn)
        nsess = int(sess.max()) + 1 if sess.size else 0
        scell = cell[np.searchsorted(sess, np.arange(nsess))]
        cover_s = rng.random(nsess) < self.cover[scell]
        cum = np.cumsum(_TARGETS[self.target[scell]], axis=1)
        task_s = (rng.random(nsess)[:, None] >= cum).sum(axis=1).clip(0, 2)
        item_s = np.zeros(nsess, np.int64)
        for c in range(_CELLS):  # each cell walks its datasets: no item twice in the cell
            for t in range(3):
                m = (scell == c) & (task_s == t) & ~cover_s
                if m.any():
                    item_s[m] = self.walks[c][t].next(int(m.sum()))
        ms = math_size(ctx)
        q, _ = math_items(ctx, np.minimum(item_s, ms - 1))
        he = pool.size("humaneval")
        code = np.where(item_s < he, pool.at("humaneval", item_s), pool.at("dev_task", item_s - he))
        body_s = np.select([task_s == 0, task_s == 1], [q, code], pool.at("bfcl", item_s))
        task, item, harvest = task_s[sess], item_s[sess], ~cover_s[sess]
        first = turn == 0
        ask = self.ask[cell]
        chat_turns(ctx, r, turn, sess, rng)  # cover sessions keep this ordinary text
        instr = np.select([ask == ASK_COT, ask == ASK_PARAPHRASED],
                          [pool.pick("cot", rng, n), pool.pick("ev1_instruction", rng, n)], 0)
        follow = np.where(task == 2, pool.pick("agent_step", rng, n), pool.pick("followup", rng, n))
        r["p0"] = np.where(harvest & first, instr, 0)
        r["p1"] = np.where(harvest, np.where(first, body_s[sess], follow), r["p1"])
        r["sys"] = np.where(harvest, self.system[cell], -1)
        r["n_messages"] += (r["sys"] >= 0)
        r["n_tools"] = np.where(harvest & (task == 2),
                                pool.tools["bfcl"][item % pool.size("bfcl")], 0)
        asked = (ask == ASK_COT) | (ask == ASK_PARAPHRASED)
        first_kind = np.select([task == 0, task == 1], [np.where(asked, MATH_COT, MATH),
                                                        np.where(asked, CODE_EXPLAIN, CODING)],
                               TOOL)
        later_kind = np.select([task == 2, ask == ASK_PROBE],
                               [AGENT_STEP, np.where(task == 0, MATH_COT, CODE_EXPLAIN)],
                               FOLLOWUP)
        r["kind"] = np.where(harvest, np.where(first, first_kind, later_kind), r["kind"])
        r["is_attack"] = harvest
        r["max_tokens"] = self.mt[loc]
        r["temperature"] = self.temp[loc]
        r["effort"] = np.where(harvest, self.effort[cell], 1.0)
        users = legit_models(ctx, ts, np.zeros(n), np.full(n, 0.5), np.full(n, 48.0), rng)
        ramp = np.clip((ts - ctx.release_us - self.pivot_delay[cell]) / (6 * HOUR), 0, 1)
        pivot = np.where(rng.random(n) < self.pivot_share[cell] * ramp, M_NEW, M_MAIN)
        mode = self.model_mode[cell]
        r["model"] = np.where(~harvest | (mode == 1), users, np.where(mode == 2, pivot, M_MAIN))
        return r
