"""Distillation campaigns, modelled on the public reports of industrial-scale harvesting.

(a) ``A-reasoning``: tens of accounts, shared payment instruments, one job queue load-balanced
    round-robin across accounts (synchronised activity), harvesting chain-of-thought on math,
    rubric grading (the model as a reward model) and censorship-safe rewrites.
(b) ``B-agentic``: hundreds of accounts over several pathways (direct, cloud, a reseller)
    harvesting agentic reasoning, tool use, coding and computer use; in the second half of the
    window it switches part of its effort to reconstructing reasoning traces.
(c) ``C-hydra``: a proxy network reselling access; every account mixes harvesting with its paying
    customers' ordinary traffic, banned accounts are replaced by fresh ones mid-window, and about
    half of the harvesting moves to the new model within 24 h of its release.
(d) ``D-evasive``: an adversary who has read the published defenses (see :class:`Evasive`; with
    ``--evasion v3`` the held-out operation of :mod:`antidistill.simulate.heldout` instead).
"""

from __future__ import annotations

import numpy as np

from antidistill.simulate import network as nw
from antidistill.simulate.accounts import IP_HOME, IP_PER_REQUEST, IP_STICKY_DAY
from antidistill.simulate.base import (
    Population,
    SessionPopulation,
    base_rows,
    lognormal_mean,
    pick_choice,
)
from antidistill.simulate.context import (
    M_MAIN,
    M_NEW,
    P_CONSUMER,
    P_FLAT,
    P_SCHOOL,
    Ctx,
    hourly,
    legit_models,
)
from antidistill.simulate.datasets import DatasetWalk, math_items, math_size
from antidistill.simulate.populations import chat_turns
from antidistill.simulate.rows import (
    AGENT_STEP,
    CODE_EXPLAIN,
    COMPUTER,
    DAY,
    FOLLOWUP,
    HOUR,
    MATH,
    MATH_COT,
    RECONSTRUCT,
    REWRITE,
    RUBRIC,
    STATUS_BLOCKED,
    TOOL,
    TOOL_PLAN,
    US,
    Rows,
    concat,
    empty,
    sessions,
    take,
)


def _rubric(ctx: Ctx, r: Rows, sel: np.ndarray, q: np.ndarray, a: np.ndarray,
            rng: np.random.Generator) -> None:
    pool, k = ctx.pool, int(sel.sum())
    r["p0"][sel] = pool.pick("rubric", rng, k)
    r["p1"][sel] = pool.pick("rubric_q", rng, k)
    r["p2"][sel] = q[sel]
    r["p3"][sel] = pool.pick("rubric_r", rng, k)
    r["p4"][sel] = a[sel]
    r["kind"][sel] = RUBRIC


class ReasoningHarvest(Population):
    """(a) Synchronised reasoning/rubric/rewrite harvesting over tens of accounts."""

    name = "reasoning_harvest"
    campaign = "A-reasoning"
    PER_ACCOUNT_DAY = 80.0

    def build(self, ctx: Ctx) -> None:
        rng, n = ctx.rng, ctx.n(40, minimum=4)
        n_pay = max(2, n // 10)
        n_ip = min(250, max(8, n // 5))  # one rented /24 at most
        ip = ctx.net.alloc(nw.DATACENTER[:2], n_ip, block=True)
        self.first = ctx.accounts.add(
            n, population=self.name, campaign=self.campaign, account_type="individual",
            created_at=ctx.age_us(rng.uniform(8, 40, n)), verified=False, pathway="direct",
            payment=[f"A-pay{i % n_pay}" for i in range(n)], client="python-requests/2.32.3",
            tz=8.0, ip_mode=IP_PER_REQUEST, ip_base=ip, ip_k=n_ip)[0]
        self.n = n
        # the job scheduler's work blocks: 2-3 per day, 3-7 h each, at any hour
        blocks = []
        for d in range(ctx.days):
            for _ in range(int(rng.integers(2, 4))):
                s = ctx.start_us + d * DAY + int(rng.integers(0, DAY))
                blocks.append((s, s + int(rng.uniform(3, 7) * HOUR)))
        self.blocks = np.array(sorted(blocks), dtype=np.int64).reshape(-1, 2)
        self.blocks = np.clip(self.blocks, ctx.start_us, ctx.end_us)
        busy = float((self.blocks[:, 1] - self.blocks[:, 0]).sum()) / HOUR
        self.per_hour = n * self.PER_ACCOUNT_DAY * ctx.days / max(busy, 1.0)
        self.walk = DatasetWalk(math_size(ctx), rng)
        self.counter = 0

    def expected(self, ctx: Ctx) -> tuple[float, float]:
        busy = float((self.blocks[:, 1] - self.blocks[:, 0]).sum()) / HOUR
        return 0.0, self.per_hour * busy

    def emit(self, ctx: Ctx, h0: int, h1: int, rng: np.random.Generator) -> Rows:
        lo, hi = ctx.start_us + h0 * HOUR, ctx.start_us + h1 * HOUR
        a = np.clip(self.blocks[:, 0], lo, hi)
        b = np.clip(self.blocks[:, 1], lo, hi)
        span = b - a
        counts = rng.poisson(self.per_hour * ctx.vol * span / HOUR)
        ts = np.sort(np.repeat(a, counts) + (rng.random(int(counts.sum()))
                                            * np.repeat(span, counts)).astype(np.int64))
        n = ts.size
        if n == 0:
            return empty()
        # one queue, load-balanced round-robin over the accounts (a few retries elsewhere)
        slot = (self.counter + np.arange(n)) % self.n
        jitter = rng.random(n) < 0.05
        slot[jitter] = rng.integers(0, self.n, int(jitter.sum()))
        self.counter += n
        r = base_rows((self.first + slot).astype(np.int32), ts, np.zeros(n, np.int32))
        pool = ctx.pool
        task = pick_choice(rng, n, (0.5, 0.25, 0.25))  # cot, rubric, rewrite
        q, ans = math_items(ctx, self.walk.next(n))
        cot = task == 0
        r["p0"] = np.where(cot, pool.pick("cot", rng, n), 0)
        r["p1"] = np.where(cot, q, 0)
        r["kind"] = np.where(cot, MATH_COT, REWRITE).astype(np.int8)
        _rubric(ctx, r, task == 1, q, ans, rng)
        rw = task == 2
        r["p0"][rw] = pool.pick("rewrite", rng, int(rw.sum()))
        r["p1"][rw] = np.where(rng.random(int(rw.sum())) < 0.6, pool.pick("hh", rng, int(
            rw.sum())), pool.pick("arena", rng, int(rw.sum())))
        r["sys"] = np.where(rng.random(n) < 0.5, pool.pick("campaign_a_system", rng, n), -1)
        r["n_messages"] += (r["sys"] >= 0)
        r["max_tokens"] = np.where(rng.random(n) < 0.7, 16384, 32768)
        r["temperature"] = np.array([0.6, 1.0, 0.7])[slot % 3]
        r["effort"] = 1.5
        late = ts > ctx.release_us + 36 * HOUR
        r["model"] = np.where(late & (rng.random(n) < 0.25), M_NEW, M_MAIN)
        r["is_attack"] = True
        return r


class AgenticHarvest(SessionPopulation):
    """(b) Hundreds of accounts, several pathways, agentic/tool/coding/computer-use harvesting."""

    name = "agentic_harvest"
    campaign = "B-agentic"
    gap_s = 6.0
    max_turns = 16
    #: share of second-half sessions that reconstruct reasoning traces (single-shot)
    RECON_SHARE = 0.35

    def build(self, ctx: Ctx) -> None:
        rng, n = ctx.rng, ctx.n(300, minimum=6)
        path = pick_choice(rng, n, (0.55, 0.2, 0.1, 0.15))
        n_ip = max(80, n // 4)
        pool_ip = ctx.net.alloc(nw.DATACENTER[3:7], n_ip)
        shared_pay = rng.random(n) < 0.2
        harness = ("python-httpx/0.27.2", "node-fetch/3.3.2", "aiohttp/3.10.10")
        rs = ctx.shared["reseller:tokenbridge"]
        via = path == 3
        self.first = ctx.accounts.add(
            n, population=self.name, campaign=self.campaign,
            account_type=np.where(rng.random(n) < 0.6, "individual", "startup"),
            created_at=ctx.age_us(rng.uniform(3, 60, n)), verified=rng.random(n) < 0.05,
            pathway=np.array(["direct", "cloud:nimbus", "cloud:stratus",
                              "reseller:tokenbridge"])[path],
            payment=[rs["payment"] if v else (f"B-pay{i % 10}" if s else f"B-own{i}")
                     for i, (v, s) in enumerate(zip(via.tolist(), shared_pay.tolist(),
                                                    strict=True))],
            client=np.where(via, rs["client"], np.array(harness)[rng.integers(0, 3, n)]),
            tz=0.0, ip_mode=IP_PER_REQUEST,
            ip_base=np.where(via, rs["ip_base"], pool_ip + rng.integers(0, n_ip - 8, n)),
            ip_k=np.where(via, rs["ip_k"], 8))[0]
        self.n = n
        self.tz = np.zeros(n)
        self.rate = lognormal_mean(rng, 6.0, 0.5, n)
        self.profile = np.full(n, P_FLAT)
        self.turns_p = np.full(n, 0.2)
        self.walk = DatasetWalk(math_size(ctx), rng)
        self.half = ctx.start_us + ctx.days * DAY // 2

    def expected(self, ctx: Ctx) -> tuple[float, float]:
        fixed, scaled = super().expected(ctx)
        # in the second half, reconstruction sessions are single-shot
        mean_turns = float(np.mean(1 / self.turns_p))
        return fixed, scaled * (1 - 0.5 * self.RECON_SHARE * (1 - 1 / mean_turns))

    def content(self, ctx: Ctx, acct: np.ndarray, ts: np.ndarray, turn: np.ndarray,
                sess: np.ndarray, rng: np.random.Generator) -> Rows:
        pool, n = ctx.pool, acct.size
        r = base_rows(acct, ts, turn)
        nsess = int(sess.max()) + 1 if sess.size else 0
        early = pick_choice(rng, nsess, (0.3, 0.25, 0.2, 0.25, 0.0))
        k = 1 - self.RECON_SHARE
        late = pick_choice(rng, nsess, (0.3 * k, 0.25 * k, 0.2 * k, 0.25 * k, self.RECON_SHARE))
        # the session's first turn decides which half of the window it belongs to
        task = np.where(ts[np.searchsorted(sess, np.arange(nsess))] >= self.half, late,
                        early)[sess] if nsess else np.zeros(0, np.int8)
        item = rng.integers(0, 1 << 30, nsess)[sess]
        first = turn == 0
        tool, code, cu, plan, recon = (task == k for k in range(5))
        r["p0"] = np.select([first & code, first & plan, first & recon],
                            [pool.at("code_explain", item), pool.at("agent_plan", item),
                             pool.at("reconstruct", item)], 0)
        q, ans = math_items(ctx, self.walk.next(n))
        r["p1"] = np.select(
            [~first, tool, code, cu, plan],
            [pool.pick("agent_step", rng, n), pool.at("bfcl", item), pool.at("humaneval", item),
             pool.at("computer_use", item), pool.at("dev_task", item)], q)
        r["p2"] = np.select([first & cu, first & recon],
                            [pool.at("computer_use_tail", item), pool.at("reconstruct_mid",
                                                                          item)], 0)
        r["p3"] = np.where(first & recon, ans, 0)
        r["n_tools"] = np.select([tool, cu, plan],
                                 [pool.tools["bfcl"][item % pool.size("bfcl")], 1, 6], 0)
        r["has_image"] = cu
        r["kind"] = np.select([first & tool, first & code, cu, first & plan, recon, ~first],
                              [TOOL, CODE_EXPLAIN, COMPUTER, TOOL_PLAN, RECONSTRUCT,
                               AGENT_STEP], TOOL).astype(np.int8)
        r["sys"] = np.where(recon, -1, pool.at("campaign_b_system", acct))
        r["n_messages"] = (1 + 2 * turn + (r["sys"] >= 0)).astype(np.int16)
        r["hist"] = (turn * rng.lognormal(np.log(1200), 0.4, n)).astype(np.int32)
        r["max_tokens"] = np.where(acct % 2 == 0, 8192, 16384)
        r["temperature"] = np.where(acct % 3 == 0, 0.2, 0.7)
        r["effort"] = 1.3
        r["model"] = np.where((ts > ctx.release_us + 48 * HOUR) & (rng.random(n) < 0.2), M_NEW,
                              M_MAIN)
        r["is_attack"] = True
        # reconstruction is single-shot: drop its later turns
        keep = ~(recon & ~first)
        return take(r, keep)


class HydraProxy(Population):
    """(c) A proxy reseller's hydra: customers' traffic + harvesting; bans, replacements, pivot."""

    name = "hydra_proxy"
    campaign = "C-hydra"

    def build(self, ctx: Ctx) -> None:
        rng = ctx.rng
        slots = ctx.n(100, minimum=4)
        created, act_from, act_to = [], [], []
        for _ in range(slots):
            t_from = ctx.start_us
            created.append(int(ctx.age_us(np.array([rng.uniform(5, 90)]))[0]))
            for gen in range(3):
                ban = rng.random() < (0.45 if gen == 0 else 0.2)
                t_to = int(t_from + rng.uniform(0.15, 0.9) * (ctx.end_us - t_from)) if ban \
                    else ctx.end_us + DAY
                act_from.append(t_from)
                act_to.append(t_to)
                if not ban or gen == 2 or t_to >= ctx.end_us:
                    break
                t_from = t_to + int(rng.uniform(0.5, 6) * HOUR)  # a fresh account takes over
                created.append(t_from - int(rng.uniform(0.05, 1.0) * HOUR))
        n = len(created)
        n_pay = max(3, slots // 8)
        fresh = np.array(act_from) > ctx.start_us
        n_ip = max(24, slots // 4)
        egress = ctx.net.alloc((45102, 132203, 24940, 16276), n_ip)
        self.first = ctx.accounts.add(
            n, population=self.name, campaign=self.campaign, account_type="individual",
            created_at=np.array(created, np.int64), verified=False, pathway="direct",
            payment=[f"C-new{i}" if f and rng.random() < 0.5 else f"C-pay{i % n_pay}"
                     for i, f in enumerate(fresh.tolist())],
            client=np.where(rng.random(n) < 0.7, "node-sdk/4.67.3 node/18.19.0",
                            "python-sdk/1.51.0 CPython/3.11.9"),
            tz=8.0, ip_mode=IP_PER_REQUEST, ip_base=egress, ip_k=n_ip)[0]
        self.n = n
        self.active_from = np.array(act_from, np.int64)
        self.active_to = np.array(act_to, np.int64)
        self.cust_rate = lognormal_mean(rng, 12.0, 0.5, n)
        self.harv_rate = lognormal_mean(rng, 45.0, 0.4, n)
        self.walk = DatasetWalk(math_size(ctx), rng)
        self.delay_us = int(rng.uniform(1, 4) * HOUR)
        self.ramp_us = int(rng.uniform(6, 12) * HOUR)

    def expected(self, ctx: Ctx) -> tuple[float, float]:
        days = (np.minimum(self.active_to, ctx.end_us) - self.active_from) / DAY
        return 0.0, float(((self.cust_rate / 0.45 + self.harv_rate) * days).sum())

    def emit(self, ctx: Ctx, h0: int, h1: int, rng: np.random.Generator) -> Rows:
        idx, tz = self.idx, np.full(self.n, 8.0)
        # ordinary customers in UTC+8: chat sessions with follow-ups, not attacks
        acct, t0 = hourly(ctx, idx, self.cust_rate, np.full(self.n, P_CONSUMER), tz, h0, h1,
                          rng, active_from=self.active_from, active_to=self.active_to)
        a, ts, turn, sess = sessions(acct, t0, rng.geometric(0.45, acct.size), 60.0, rng)
        cust = base_rows(a, ts, turn)
        if a.size:
            chat_turns(ctx, cust, turn, sess, rng)
            loc = a - self.first
            cust["model"] = legit_models(ctx, ts, np.full(a.size, 0.2), np.full(a.size, 0.8),
                                         np.full(a.size, 12.0), rng)
            cust["max_tokens"] = np.where(loc % 2 == 0, 4096, -1)
        # harvesting: flat 24/7, single-shot
        ha, hts = hourly(ctx, idx, self.harv_rate, np.full(self.n, P_FLAT), tz, h0, h1, rng,
                         active_from=self.active_from, active_to=self.active_to)
        n, pool = ha.size, ctx.pool
        h = base_rows(ha, hts, np.zeros(n, np.int32))
        task = pick_choice(rng, n, (0.4, 0.25, 0.2, 0.15))  # cot, code, tools, rubric
        q, ans = math_items(ctx, self.walk.next(n))
        item = rng.integers(0, 1 << 30, n)
        h["p0"] = np.select([task == 0, task == 1], [pool.pick("cot", rng, n),
                                                     pool.at("code_explain", item)], 0)
        h["p1"] = np.select([task == 0, task == 1, task == 2],
                            [q, pool.at("humaneval", item), pool.at("bfcl", item)], 0)
        h["n_tools"] = np.where(task == 2, pool.tools["bfcl"][item % pool.size("bfcl")], 0)
        h["kind"] = np.select([task == 0, task == 1], [MATH_COT, CODE_EXPLAIN], TOOL
                              ).astype(np.int8)
        _rubric(ctx, h, task == 3, q, ans, rng)
        h["max_tokens"] = 16384
        h["temperature"] = 0.7
        h["effort"] = 1.4
        ramp = np.clip((hts - ctx.release_us - self.delay_us) / self.ramp_us, 0, 1)
        h["model"] = np.where(rng.random(n) < 0.5 * ramp, M_NEW, M_MAIN)
        h["is_attack"] = True
        out = concat([cust, h])
        keep = out["ts"] < self.active_to[out["acct"] - self.first]
        return concat([take(out, keep), self._blocked(ctx, h0, h1, rng)])

    def _blocked(self, ctx: Ctx, h0: int, h1: int, rng: np.random.Generator) -> Rows:
        """After a ban the proxy keeps retrying the dead account for a few minutes."""
        lo, hi = ctx.start_us + h0 * HOUR, ctx.start_us + h1 * HOUR
        banned = np.flatnonzero((self.active_to >= lo) & (self.active_to < hi)
                                & (self.active_to < ctx.end_us))
        if banned.size == 0:
            return empty()
        k = rng.poisson(6, banned.size) + 1
        acct = np.repeat(self.first + banned, k).astype(np.int32)
        ts = np.repeat(self.active_to[banned], k) + rng.integers(0, 900 * US, int(k.sum()))
        r = base_rows(acct, ts, np.zeros(acct.size, np.int32))
        q, _ = math_items(ctx, self.walk.next(acct.size))
        r["p0"] = ctx.pool.pick("cot", rng, acct.size)
        r["p1"] = q
        r["kind"] = MATH_COT
        r["max_tokens"] = 16384
        r["temperature"] = 0.7
        r["model"] = M_MAIN
        r["status"] = STATUS_BLOCKED
        r["is_attack"] = True
        return r


class Evasive(SessionPopulation):
    """(d) An adversary that has read the published defenses.

    ``v1``: aged/bought accounts, rotating residential proxies (sticky per day), a distinct
    client per account, heavily paraphrased instructions, human diurnal pacing in each account's
    own timezone, low per-account volume, 30 % cover traffic, and the dataset split into
    disjoint shards so no two accounts (and no account twice) send the same problem.

    ``v2`` (held out): accounts posing as students/researchers, entering through a reseller and a
    cloud marketplace and behind mobile CGNAT; no CoT wording at all — the problem is asked
    plainly and the reasoning is pulled out by multi-turn follow-ups; school-hours pacing; each
    account lives only 2-3 days (staggered rotation); model use mirrors ordinary users.
    """

    name = "evasive"
    campaign = "D-evasive"

    def build(self, ctx: Ctx) -> None:
        rng = ctx.rng
        self.v2 = ctx.evasion == "v2"
        n = ctx.n(220 if self.v2 else 150, minimum=4)
        region, self.tz = nw.region_tz(rng, n)
        if self.v2:
            self._build_v2(ctx, rng, n, region)
        else:
            self._build_v1(ctx, rng, n)
        self.n = n
        self.profile = np.full(n, P_SCHOOL if self.v2 else P_CONSUMER)
        # split the target set into disjoint shards, one per account
        size = math_size(ctx) + ctx.pool.size("humaneval")
        perm = rng.permutation(size)
        shards = np.array_split(perm, n)
        self.flat = perm
        self.lens = np.array([s.size for s in shards], np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.lens)[:-1]]).astype(np.int64)
        self.cursor = np.zeros(n, np.int64)
        self.mt = np.asarray(rng.choice([-1, 2048, 4096, 8192], n), np.int32)
        self.temp = np.asarray(rng.choice([np.nan, 0.7, 1.0, 0.8], n), np.float32)
        self.cap = rng.beta(3, 2, n) * 0.8
        self.tau = 40 * rng.lognormal(0, 0.5, n)

    def _build_v1(self, ctx: Ctx, rng: np.random.Generator, n: int) -> None:
        res = [a for r in nw.REGIONS for a in nw.RESIDENTIAL[r] + nw.MOBILE[r]]
        proxies = ctx.net.alloc(res, max(400, 30 * n), v6_share=0.1)
        clients = nw.distinct_sdk_clients(rng, n)
        self.first = ctx.accounts.add(
            n, population=self.name, campaign=self.campaign,
            account_type=np.where(rng.random(n) < 0.85, "individual", "startup"),
            created_at=ctx.age_us(rng.uniform(200, 1500, n)), verified=rng.random(n) < 0.35,
            pathway="direct", payment=[f"D-{i}" for i in range(n)], client=clients,
            tz=self.tz, ip_mode=IP_STICKY_DAY, ip_base=proxies, ip_k=max(400, 30 * n))[0]
        self.rate = lognormal_mean(rng, 8.0, 0.3, n)
        self.turns_p = np.full(n, 0.6)
        self.gap_s = 100.0

    def _build_v2(self, ctx: Ctx, rng: np.random.Generator, n: int, region: np.ndarray) -> None:
        path = pick_choice(rng, n, (0.4, 0.25, 0.35))  # direct (CGNAT), cloud, reseller
        rs = ctx.shared["reseller:apihub"]
        n_ip = max(40, n // 4)
        cloud_ip = ctx.net.alloc(nw.DATACENTER, n_ip)
        ip_base = np.array([nw.cgnat_pool(ctx.net, ctx.shared, int(r)) for r in region])
        ip_base = np.where(path == 1, cloud_ip + rng.integers(0, n_ip - 4, n), ip_base)
        ip_base = np.where(path == 2, rs["ip_base"], ip_base)
        days = ctx.days
        life = rng.uniform(2, 3, n) * DAY
        start = ctx.start_us + (rng.uniform(-1, max(days - 2, 0.5), n) * DAY).astype(np.int64)
        self.active_from = start
        self.active_to = start + life.astype(np.int64)
        types = np.array(["edu", "research", "individual"])[pick_choice(rng, n, (0.5, 0.2, 0.3))]
        self.first = ctx.accounts.add(
            n, population=self.name, campaign=self.campaign, account_type=types,
            created_at=np.minimum(ctx.age_us(rng.uniform(60, 110, n)), start),
            verified=rng.random(n) < 0.6,
            pathway=np.array(["direct", "cloud:stratus", "reseller:apihub"])[path],
            payment=[rs["payment"] if p == 2 else f"D2-{i}" for i, p in enumerate(path.tolist())],
            client=np.where(path == 2, rs["client"],
                            np.array(nw.CHAT_CLIENTS)[rng.integers(0, len(nw.CHAT_CLIENTS), n)]),
            tz=self.tz, ip_mode=np.where(path == 0, IP_HOME, IP_PER_REQUEST), ip_base=ip_base,
            ip_k=np.select([path == 0, path == 1], [1, 4], rs["ip_k"]))[0]
        self.rate = lognormal_mean(rng, 5.0, 0.3, n)
        self.turns_p = np.full(n, 0.3)
        self.gap_s = 140.0

    def _next_items(self, loc: np.ndarray) -> np.ndarray:
        """Each account's next unused items from its own shard (vectorised over sessions)."""
        order = np.argsort(loc, kind="stable")
        sl = loc[order]
        rank = np.arange(sl.size) - np.searchsorted(sl, sl)
        out = np.empty(loc.size, np.int64)
        pos = self.cursor[sl] + rank
        out[order] = self.flat[self.starts[sl] + pos % np.maximum(self.lens[sl], 1)]
        np.add.at(self.cursor, loc, 1)
        return out

    def content(self, ctx: Ctx, acct: np.ndarray, ts: np.ndarray, turn: np.ndarray,
                sess: np.ndarray, rng: np.random.Generator) -> Rows:
        pool, n, loc = ctx.pool, acct.size, acct - self.first
        r = base_rows(acct, ts, turn)
        nsess = int(sess.max()) + 1 if sess.size else 0
        first_of = np.searchsorted(sess, np.arange(nsess))
        sloc = loc[first_of]
        cover = (rng.random(nsess) < (0.0 if self.v2 else 0.3))
        items = np.zeros(nsess, np.int64)
        if (~cover).any():
            items[~cover] = self._next_items(sloc[~cover])
        ms = math_size(ctx)
        is_code = items >= ms
        q, _ = math_items(ctx, np.minimum(items, ms - 1))
        body = np.where(is_code, pool.at("humaneval", items - ms), q)[sess]
        first = turn == 0
        chat_turns(ctx, r, turn, sess, rng)  # cover sessions keep this ordinary text
        harvest = ~cover[sess]
        if self.v2:
            r["p0"] = np.where(harvest & first, pool.pick("ev2_plain", rng, n), 0)
            r["p1"] = np.where(harvest, np.where(first, body, pool.pick("ev2_follow", rng, n)),
                               r["p1"])
            r["kind"] = np.where(harvest, np.where(first, MATH, MATH_COT), r["kind"])
        else:
            # instruction before or after the problem, joined in varied ways
            prefix = rng.random(nsess)[sess] < 0.5
            instr = pool.pick("ev1_instruction", rng, n)
            hf = harvest & first
            r["p0"] = np.where(hf, np.where(prefix, instr, body), 0)
            r["p1"] = np.where(hf, pool.pick("ev1_join", rng, n),
                               np.where(harvest, pool.pick("followup", rng, n), r["p1"]))
            r["p2"] = np.where(hf, np.where(prefix, body, instr), 0)
            r["kind"] = np.where(harvest, np.where(first, MATH_COT, FOLLOWUP), r["kind"])
        r["kind"] = r["kind"].astype(np.int8)
        r["is_attack"] = harvest
        r["max_tokens"] = self.mt[loc]
        r["temperature"] = self.temp[loc]
        r["model"] = legit_models(ctx, ts, np.zeros(n), self.cap[loc], self.tau[loc], rng)
        r["effort"] = np.where(harvest, 1.3, 1.0)
        return r


CAMPAIGNS: tuple[type[Population], ...] = (ReasoningHarvest, AgenticHarvest, HydraProxy,
                                           Evasive)
