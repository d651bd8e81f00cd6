"""Legitimate populations: ordinary users and the hard negatives that look like harvesting.

Each is internally consistent in volume, timing (own timezone, weekly shape), content, tokens,
network, client, account age/type/verification and pathway. The hard negatives are built to
share a trait with a campaign: evaluation runners and students ask CoT-style math, agent
developers use tools and share one system prompt, enterprise batch jobs are huge and templated,
teams and reseller customers share payment instruments and IPs.
"""

from __future__ import annotations

import numpy as np

from antidistill.simulate import network as nw
from antidistill.simulate.accounts import IP_HOME, IP_OFFICE, IP_PER_REQUEST
from antidistill.simulate.base import (
    Population,
    SessionPopulation,
    base_rows,
    lognormal_mean,
    session_pick,
)
from antidistill.simulate.context import (
    M_MAIN,
    M_MINI,
    M_NEW,
    M_PINNED,
    P_CONSUMER,
    P_FLAT,
    P_SCHOOL,
    P_WORK,
    Ctx,
    hourly,
    legit_models,
)
from antidistill.simulate.prompts import n_coding_agents
from antidistill.simulate.rows import AGENT_STEP as R_AGENT_STEP
from antidistill.simulate.rows import (
    CHAT,
    CODING,
    EVAL_CODE,
    EVAL_MATH,
    FOLLOWUP,
    HOUR,
    MATH,
    MATH_COT,
    SAFETY,
    TEMPLATE,
    TOOL,
    US,
    Rows,
    concat,
    take,
)


def _ages(ctx: Ctx, median_days: float, sigma: float, n: int, lo: float = 1,
          hi: float = 2500) -> np.ndarray:
    return ctx.age_us(np.clip(ctx.rng.lognormal(np.log(median_days), sigma, n), lo, hi))


def _per_account(rng: np.random.Generator, options: tuple[float, ...] | tuple[str, ...],
                 n: int) -> np.ndarray:
    return np.asarray(options)[rng.integers(0, len(options), n)]


class _Knobs:
    """Per-account request habits: max_tokens, temperature, system prompt, model adoption."""

    def __init__(self, ctx: Ctx, n: int, *,
                 max_tokens: tuple[float, ...] = (-1, 1024, 2048, 4096),
                 temps: tuple[float, ...] = (np.nan, 0.7, 1.0, 0.5, 0.6, 0.2, 0.0),
                 mini: float = 0.3, cap: float = 0.6, tau_h: float = 48.0) -> None:
        rng = ctx.rng
        self.max_tokens = _per_account(rng, max_tokens, n).astype(np.int32)
        self.temperature = _per_account(rng, temps, n).astype(np.float32)
        self.mini = np.clip(rng.beta(2, 2, n) * 2 * mini, 0, 1)
        self.cap = np.clip(rng.beta(3, 2, n) * cap / 0.6, 0, 1)
        self.tau_h = tau_h * rng.lognormal(0, 0.5, n)

    def apply(self, ctx: Ctx, r: Rows, loc: np.ndarray, rng: np.random.Generator) -> None:
        r["max_tokens"] = self.max_tokens[loc]
        r["temperature"] = self.temperature[loc]
        r["model"] = legit_models(ctx, r["ts"], self.mini[loc], self.cap[loc], self.tau_h[loc],
                                  rng)


def chat_turns(ctx: Ctx, r: Rows, turn: np.ndarray, sess: np.ndarray,
               rng: np.random.Generator, *, followups: str = "followup") -> None:
    """Casual conversation text: a real first turn, then real or typical follow-ups."""
    pool = ctx.pool
    src, item = session_pick(rng, sess, (0.45, 0.15, 0.40))  # arena, mt_bench, hh
    first = turn == 0
    p1 = np.where(src == 0, pool.at("arena", item),
                  np.where(src == 1, pool.at("mt_bench", item), pool.at("hh", item)))
    fu = pool.pick(followups, rng, r["ts"].size)
    mt2 = pool.at("mt_bench_turn2", item)
    r["p1"] = np.where(first, p1, np.where((src == 1) & (turn == 1), mt2, fu))
    r["kind"] = np.where(first, np.where(src == 2, SAFETY, CHAT), FOLLOWUP).astype(np.int8)
    r["hist"] = (turn * rng.lognormal(np.log(350), 0.6, turn.size)).astype(np.int32)


class CasualChat(SessionPopulation):
    """Chat users: diurnal in their own timezone, short sessions with follow-ups."""

    name = "casual_chat"
    gap_s = 90.0

    def build(self, ctx: Ctx) -> None:
        rng, n = ctx.rng, ctx.n(1300)
        region, self.tz = nw.region_tz(rng, n)
        k = rng.integers(1, 4, n)
        ip_base = nw.home_ips(ctx.net, region, k)
        mobile = rng.random(n) < 0.25
        for r in range(3):
            sel = mobile & (region == r)
            ip_base[sel] = nw.cgnat_pool(ctx.net, ctx.shared, r) + rng.integers(0, 48, sel.sum())
        k[mobile] = 1
        self.first = ctx.accounts.add(
            n, population=self.name, account_type=np.where(rng.random(n) < 0.95, "individual",
                                                           "startup"),
            created_at=_ages(ctx, 250, 1.0, n), verified=rng.random(n) < 0.2, pathway="direct",
            payment=[f"cc{i}" for i in range(n)],
            client=np.where(rng.random(n) < 0.5, _per_account(rng, nw.CHAT_CLIENTS, n),
                            nw.sdk_clients(rng, n)),
            tz=self.tz, ip_mode=IP_HOME, ip_base=ip_base, ip_k=k)[0]
        self.n = n
        self.rate = lognormal_mean(rng, 4.0, 0.9, n)
        self.profile = np.full(n, P_CONSUMER)
        self.turns_p = rng.uniform(0.35, 0.6, n)
        self.sys = np.where(rng.random(n) < 0.4,
                            ctx.pool.pick("chat_system", rng, n), -1).astype(np.int32)
        self.knobs = _Knobs(ctx, n)

    def content(self, ctx: Ctx, acct: np.ndarray, ts: np.ndarray, turn: np.ndarray,
                sess: np.ndarray, rng: np.random.Generator) -> Rows:
        loc = acct - self.first
        r = base_rows(acct, ts, turn)
        chat_turns(ctx, r, turn, sess, rng)
        r["sys"] = self.sys[loc]
        r["n_messages"] += (r["sys"] >= 0)
        self.knobs.apply(ctx, r, loc, rng)
        return r


class AgentDevelopers(SessionPopulation):
    """Developers driving popular coding agents: unrelated accounts, one agent's exact prompt."""

    name = "agent_developers"
    gap_s = 25.0
    max_turns = 80

    def build(self, ctx: Ctx) -> None:
        rng, n = ctx.rng, ctx.n(450)
        region, self.tz = nw.region_tz(rng, n)
        k = rng.integers(1, 3, n)
        self.agent = rng.choice(n_coding_agents(), n, p=nw.AGENT_SHARE)
        client = nw.agent_clients(self.agent, rng.integers(0, len(nw.AGENT_VERSIONS), n))
        self.first = ctx.accounts.add(
            n, population=self.name,
            account_type=np.where(rng.random(n) < 0.7, "individual", "startup"),
            created_at=_ages(ctx, 300, 0.9, n), verified=rng.random(n) < 0.3,
            pathway=np.where(rng.random(n) < 0.85, "direct", "cloud:nimbus"),
            payment=[f"dev{i}" for i in range(n)], client=client, tz=self.tz, ip_mode=IP_HOME,
            ip_base=nw.home_ips(ctx.net, region, k), ip_k=k)[0]
        self.n = n
        self.rate = lognormal_mean(rng, 2.5, 0.8, n)
        self.profile = np.full(n, P_WORK)
        self.turns_p = rng.uniform(0.08, 0.2, n)
        self.knobs = _Knobs(ctx, n, mini=0.1, cap=0.85, tau_h=20.0)
        self.knobs.max_tokens = np.asarray(nw.AGENT_MAX_TOKENS)[self.agent].astype(np.int32)
        self.knobs.temperature = np.asarray(nw.AGENT_TEMPERATURE)[self.agent].astype(np.float32)

    def content(self, ctx: Ctx, acct: np.ndarray, ts: np.ndarray, turn: np.ndarray,
                sess: np.ndarray, rng: np.random.Generator) -> Rows:
        pool, loc = ctx.pool, acct - self.first
        r = base_rows(acct, ts, turn)
        kind, item = session_pick(rng, sess, (0.6, 0.15, 0.15, 0.1))  # task, code, bfcl, chat
        first = turn == 0
        agent = self.agent[loc]
        r["p0"] = np.where(first & (kind == 1), pool.pick("dev_code_pre", rng, acct.size), 0)
        r["p1"] = np.select(
            [~first & (kind == 3), ~first, kind == 0, kind == 1, kind == 2],
            [pool.pick("followup", rng, acct.size), pool.pick("tool_result", rng, acct.size),
             pool.at("dev_task", item),
             pool.at("humaneval", item), pool.at("bfcl", item)],
            pool.at("arena", item))
        bfcl_tools = pool.tools["bfcl"][item % pool.size("bfcl")]
        r["n_tools"] = np.where(kind == 2, bfcl_tools, pool.tools["agent"][agent])
        r["n_tools"][kind == 3] = 0
        r["sys"] = np.where(kind < 2, pool.base("agent_system") + agent, -1)
        r["kind"] = np.select([~first & (kind == 3), ~first, kind == 2, kind == 3],
                              [FOLLOWUP, R_AGENT_STEP, TOOL, CHAT], CODING).astype(np.int8)
        r["n_messages"] = (2 + 2 * turn).astype(np.int16)
        r["hist"] = (turn * rng.lognormal(np.log(1500), 0.5, turn.size)).astype(np.int32)
        self.knobs.apply(ctx, r, loc, rng)
        return r


class TeamOrgs(SessionPopulation):
    """Team organisations: members share org id, payment instrument and the office NAT IP."""

    name = "team_orgs"
    gap_s = 120.0

    def build(self, ctx: Ctx) -> None:
        rng = ctx.rng
        n_org = ctx.n(35)
        size = np.clip(np.round(rng.lognormal(np.log(8), 0.7, n_org)), 3, 60).astype(int)
        org_region, org_tz = nw.region_tz(rng, n_org)
        office = np.array([ctx.net.alloc(nw.BUSINESS, 2, block=True) for _ in range(n_org)])
        org_client = _per_account(rng, nw.SDK_CLIENTS, n_org)
        org_verified = rng.random(n_org) < 0.6
        org_of = np.repeat(np.arange(n_org), size)
        n = int(size.sum())
        k = rng.integers(1, 3, n)
        self.tz = org_tz[org_of]
        client = np.where(rng.random(n) < 0.8, org_client[org_of],
                          _per_account(rng, nw.CHAT_CLIENTS, n))
        self.first = ctx.accounts.add(
            n, population=self.name, org=[f"team{o}" for o in org_of],
            account_type="team", created_at=_ages(ctx, 200, 0.8, n),
            verified=org_verified[org_of], pathway="direct",
            payment=[f"team{o}" for o in org_of], client=client, tz=self.tz,
            ip_mode=IP_OFFICE, ip_base=nw.home_ips(ctx.net, org_region[org_of], k), ip_k=k,
            office_ip=office[org_of] + rng.integers(0, 2, n))[0]
        self.n = n
        self.rate = lognormal_mean(rng, 5.0, 0.7, n)
        self.profile = np.full(n, P_WORK)
        self.turns_p = rng.uniform(0.4, 0.6, n)
        self.knobs = _Knobs(ctx, n, cap=0.7, tau_h=36.0)

    def content(self, ctx: Ctx, acct: np.ndarray, ts: np.ndarray, turn: np.ndarray,
                sess: np.ndarray, rng: np.random.Generator) -> Rows:
        pool, loc = ctx.pool, acct - self.first
        r = base_rows(acct, ts, turn)
        chat_turns(ctx, r, turn, sess, rng)
        kind, item = session_pick(rng, sess, (0.5, 0.25, 0.12, 0.13))  # chat, code, math, tools
        first = turn == 0
        r["p0"] = np.where(first & (kind == 1), pool.pick("dev_code_pre", rng, acct.size), 0)
        r["p1"] = np.select(
            [~first | (kind == 0), kind == 1, kind == 2],
            [r["p1"], np.where(item % 2 == 0, pool.at("dev_task", item),
                               pool.at("humaneval", item)),
             np.where(item % 3 == 0, pool.at("math", item), pool.at("gsm8k", item))],
            pool.at("bfcl", item))
        r["kind"] = np.select([~first | (kind == 0), kind == 1, kind == 2],
                              [r["kind"], CODING, MATH], TOOL).astype(np.int8)
        r["n_tools"] = np.where(first & (kind == 3), pool.tools["bfcl"][item % pool.size("bfcl")],
                                0)
        self.knobs.apply(ctx, r, loc, rng)
        return r


class EnterpriseBatch(Population):
    """Verified enterprise batch jobs: one template with slots, pinned model, steady 24/7."""

    name = "enterprise_batch"

    def build(self, ctx: Ctx) -> None:
        rng, n = ctx.rng, ctx.n(5)
        self.template = np.arange(n) % ctx.pool.size("enterprise_head")
        ip = np.array([ctx.net.alloc(nw.DATACENTER, 4, block=True) for _ in range(n)])
        self.first = ctx.accounts.add(
            n, population=self.name, org=[f"ent{i}" for i in range(n)],
            account_type="enterprise", created_at=_ages(ctx, 600, 0.5, n), verified=True,
            pathway=np.where(np.arange(n) % 3 == 2, "cloud:stratus", "direct"),
            payment=[f"ent{i}" for i in range(n)], client=_per_account(rng, nw.SDK_CLIENTS, n),
            tz=0.0, ip_mode=IP_PER_REQUEST, ip_base=ip, ip_k=4)[0]
        self.n = n
        self.rate = np.clip(lognormal_mean(rng, 1600.0, 0.4, n), 800.0, 3000.0)
        self.max_tokens = _per_account(rng, (256, 512), n).astype(np.int32)

    def expected(self, ctx: Ctx) -> tuple[float, float]:
        return 0.0, float(self.rate.sum() * ctx.days)

    def emit(self, ctx: Ctx, h0: int, h1: int, rng: np.random.Generator) -> Rows:
        acct, ts = hourly(ctx, self.idx, self.rate, np.full(self.n, P_FLAT),
                          np.zeros(self.n), h0, h1, rng)
        pool, loc = ctx.pool, acct - self.first
        t = self.template[loc]
        r = base_rows(acct, ts, np.zeros(acct.size, np.int32))
        r["p0"] = pool.base("enterprise_head") + t
        r["p1"] = pool.pick("ticket_no", rng, acct.size)
        r["p2"] = pool.pick("ticket", rng, acct.size)
        r["p3"] = pool.base("enterprise_tail") + t
        r["sys"] = pool.base("enterprise_system") + t
        r["n_messages"] = 2
        r["kind"] = TEMPLATE
        r["model"] = M_PINNED
        r["max_tokens"] = self.max_tokens[loc]
        r["temperature"] = 0.0
        return r


#: benchmark -> (segment, size of the set a harness runs)
_BENCHMARKS = (("gsm8k", 1319), ("math", 500), ("humaneval", 164), ("bfcl", 400),
               ("mt_bench", 80))


class EvalRunners(SessionPopulation):
    """Researchers running a benchmark set once, in a burst; some on the new model's launch day.

    Harness prompts are CoT-style ("Let's think step by step"), at temperature 0 — exactly the
    surface a naive reasoning-harvest detector keys on.
    """

    name = "eval_runners"
    gap_s = 120.0

    def build(self, ctx: Ctx) -> None:
        rng, n = ctx.rng, ctx.n(30)
        lab = np.sort(rng.integers(0, max(1, n * 2 // 3), n))
        cloud = rng.random(n) < 0.25
        ip = np.array([ctx.net.alloc(nw.DATACENTER if c else nw.UNIVERSITY, 2, block=True)
                       for c in cloud])
        self.first = ctx.accounts.add(
            n, population=self.name, org=[f"lab{x}" for x in lab], account_type="research",
            created_at=_ages(ctx, 400, 0.8, n), verified=rng.random(n) < 0.6,
            pathway=np.where(cloud, "cloud:nimbus", "direct"),
            payment=[f"lab{x}" for x in lab], client=_per_account(rng, nw.EVAL_CLIENTS, n),
            tz=0.0, ip_mode=IP_PER_REQUEST, ip_base=ip, ip_k=2)[0]
        self.n = n
        _, self.tz = nw.region_tz(rng, n)
        self.rate = lognormal_mean(rng, 1.5, 0.6, n)  # their ordinary daytime use
        self.profile = np.full(n, P_WORK)
        self.turns_p = np.full(n, 0.5)
        # everyday use through a chat client, not the harness (which pins temperature 0)
        self.knobs = _Knobs(ctx, n, cap=0.8, tau_h=12.0, temps=(np.nan, 0.7, 1.0))
        self.burst = self._bursts(ctx, rng)

    def _bursts(self, ctx: Ctx, rng: np.random.Generator) -> Rows:
        pool, parts = ctx.pool, []
        for i in range(self.n):
            bench, size = _BENCHMARKS[int(rng.integers(0, len(_BENCHMARKS)))]
            size = min(size, pool.size(bench))
            on_release = ctx.release_us < ctx.end_us and i % 3 == 0  # launch-day evals
            rate = rng.uniform(2, 12)  # requests per second (harness concurrency)
            length = int(size / rate * 1.2 * US) + HOUR
            if on_release:
                start = ctx.release_us + int(rng.uniform(0.5, 8) * HOUR)
            else:
                start = ctx.start_us + int(rng.integers(0, max(1, ctx.end_us - ctx.start_us
                                                               - length)))
            ts = start + np.cumsum(rng.exponential(1 / rate, size) * US).astype(np.int64)
            offset = int(rng.integers(0, pool.size(bench)))
            items = pool.at(bench, offset + np.arange(size))  # each item exactly once
            r = base_rows(np.full(size, self.first + i, np.int32), ts, np.zeros(size, np.int32))
            v = int(rng.integers(0, 3))
            if bench in ("gsm8k", "math"):
                r["p0"] = pool.base("eval_math_pre") + v
                r["p2"] = pool.base("eval_math_post") + v
                r["kind"] = EVAL_MATH
            elif bench == "humaneval":
                r["p0"] = pool.base("eval_code_pre") + v % 2
                r["p2"] = pool.base("eval_code_post") + v % 2
                r["kind"] = EVAL_CODE
            elif bench == "bfcl":
                r["n_tools"] = pool.tools["bfcl"][items - pool.base("bfcl")]
                r["kind"] = TOOL
            else:
                r["kind"] = CHAT
            r["p1"] = items
            if v > 0:
                r["sys"] = pool.base("eval_system") + v - 1
                r["n_messages"] = 2
            r["model"] = M_NEW if on_release else (M_MAIN if rng.random() < 0.7 else M_MINI)
            r["temperature"] = 0.0
            r["max_tokens"] = int(rng.choice([1024, 2048, 4096]))
            parts.append(r)
        out = concat(parts)
        keep = out["ts"] < ctx.end_us
        return take(out, keep)

    def expected(self, ctx: Ctx) -> tuple[float, float]:
        fixed, scaled = super().expected(ctx)
        return fixed + float(self.burst["ts"].size), scaled

    def emit(self, ctx: Ctx, h0: int, h1: int, rng: np.random.Generator) -> Rows:
        lo, hi = ctx.start_us + h0 * HOUR, ctx.start_us + h1 * HOUR
        sel = (self.burst["ts"] >= lo) & (self.burst["ts"] < hi)
        burst = take(self.burst, sel)
        return concat([burst, super().emit(ctx, h0, h1, rng)])

    def content(self, ctx: Ctx, acct: np.ndarray, ts: np.ndarray, turn: np.ndarray,
                sess: np.ndarray, rng: np.random.Generator) -> Rows:
        r = base_rows(acct, ts, turn)
        chat_turns(ctx, r, turn, sess, rng)
        self.knobs.apply(ctx, r, acct - self.first, rng)
        return r


class Students(SessionPopulation):
    """Students on edu accounts: math and coding homework, school-hours rhythm, campus NAT."""

    name = "students"
    gap_s = 150.0

    def build(self, ctx: Ctx) -> None:
        rng, n = ctx.rng, ctx.n(350)
        n_campus = ctx.n(8)
        c_region, c_tz = nw.region_tz(rng, n_campus)
        c_ip = np.array([ctx.net.alloc(nw.UNIVERSITY, 4, block=True) for _ in range(n_campus)])
        campus = rng.integers(0, n_campus, n)
        self.tz = c_tz[campus]
        k = rng.integers(1, 3, n)
        free = rng.random(n) < 0.4  # free edu credits: no payment instrument
        ages = np.where(rng.random(n) < 0.8, rng.uniform(60, 100, n), rng.uniform(380, 480, n))
        self.first = ctx.accounts.add(
            n, population=self.name, account_type="edu", created_at=ctx.age_us(ages),
            verified=rng.random(n) < 0.85, pathway="direct",
            payment=[None if f else f"stu{i}" for i, f in enumerate(free.tolist())],
            client=_per_account(rng, nw.CHAT_CLIENTS, n), tz=self.tz, ip_mode=IP_OFFICE,
            ip_base=nw.home_ips(ctx.net, c_region[campus], k), ip_k=k,
            office_ip=c_ip[campus] + rng.integers(0, 4, n))[0]
        self.n = n
        self.rate = lognormal_mean(rng, 2.5, 0.7, n)
        self.profile = np.full(n, P_SCHOOL)
        self.turns_p = rng.uniform(0.3, 0.5, n)
        self.knobs = _Knobs(ctx, n, mini=0.5, cap=0.4, tau_h=72.0)

    def content(self, ctx: Ctx, acct: np.ndarray, ts: np.ndarray, turn: np.ndarray,
                sess: np.ndarray, rng: np.random.Generator) -> Rows:
        pool, loc = ctx.pool, acct - self.first
        r = base_rows(acct, ts, turn)
        chat_turns(ctx, r, turn, sess, rng, followups="student_followup")
        kind, item = session_pick(rng, sess, (0.3, 0.45, 0.25))  # chat, math, code
        first = turn == 0
        math_item = np.where(item % 3 == 0, pool.at("math", item), pool.at("gsm8k", item))
        r["p0"] = np.select([first & (kind == 1), first & (kind == 2)],
                            [pool.pick("student_math", rng, acct.size),
                             pool.pick("student_code", rng, acct.size)], 0)
        r["p1"] = np.select([first & (kind == 1), first & (kind == 2)],
                            [math_item, pool.at("humaneval", item)], r["p1"])
        r["kind"] = np.select([first & (kind == 1), first & (kind == 2), ~first & (kind > 0)],
                              [MATH_COT, CODING, MATH], r["kind"]).astype(np.int8)
        self.knobs.apply(ctx, r, loc, rng)
        return r


class ResellerCustomers(SessionPopulation):
    """End customers of API resellers: reseller's egress IPs, payment and gateway client."""

    name = "reseller_customers"
    gap_s = 80.0
    RESELLERS = ("apihub", "tokenbridge")

    def build(self, ctx: Ctx) -> None:
        rng, n = ctx.rng, ctx.n(300)
        for name in self.RESELLERS:
            ctx.shared[f"reseller:{name}"] = {
                "payment": f"reseller-{name}", "ip_base": ctx.net.alloc(nw.DATACENTER, 6,
                                                                        block=True),
                "ip_k": 6, "client": f"{name}-gateway/2.{int(rng.integers(0, 9))}.1"}
        which = rng.integers(0, len(self.RESELLERS), n)
        sh = [ctx.shared[f"reseller:{self.RESELLERS[w]}"] for w in which.tolist()]
        _, self.tz = nw.region_tz(rng, n)
        self.first = ctx.accounts.add(
            n, population=self.name,
            account_type=np.where(rng.random(n) < 0.8, "individual", "startup"),
            created_at=_ages(ctx, 120, 1.0, n), verified=False,
            pathway=[f"reseller:{self.RESELLERS[w]}" for w in which.tolist()],
            payment=[s["payment"] for s in sh], client=[s["client"] for s in sh], tz=self.tz,
            ip_mode=IP_PER_REQUEST, ip_base=[s["ip_base"] for s in sh], ip_k=6)[0]
        self.n = n
        self.rate = lognormal_mean(rng, 3.0, 0.9, n)
        self.profile = np.where(rng.random(n) < 0.7, P_CONSUMER, P_WORK)
        self.turns_p = rng.uniform(0.4, 0.6, n)
        self.knobs = _Knobs(ctx, n, cap=0.5)

    def content(self, ctx: Ctx, acct: np.ndarray, ts: np.ndarray, turn: np.ndarray,
                sess: np.ndarray, rng: np.random.Generator) -> Rows:
        pool, loc = ctx.pool, acct - self.first
        r = base_rows(acct, ts, turn)
        chat_turns(ctx, r, turn, sess, rng)
        kind, item = session_pick(rng, sess, (0.6, 0.25, 0.15))  # chat, code, math
        first = turn == 0
        r["p1"] = np.select([first & (kind == 1), first & (kind == 2)],
                            [pool.at("dev_task", item), pool.at("gsm8k", item)], r["p1"])
        r["kind"] = np.select([first & (kind == 1), first & (kind == 2)], [CODING, MATH],
                              r["kind"]).astype(np.int8)
        self.knobs.apply(ctx, r, loc, rng)
        return r


LEGIT: tuple[type[Population], ...] = (
    CasualChat, AgentDevelopers, TeamOrgs, EnterpriseBatch, EvalRunners, Students,
    ResellerCustomers,
)
