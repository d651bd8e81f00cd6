"""Campaign D, ``--evasion v3``: a held-out harvesting operation ("contractor seats").

Written on 2026-12-01 by a separate author who had not read the detector's code, only its
public description, and who chose tactics outside v1, v2 and the randomised training cells
(:mod:`antidistill.simulate.randomized`).

The operator wants to distil a **coding agent**: multi-step agentic trajectories (tool calls,
tool results, fixes) plus judge labels on them (reward signal). It poses as a dozen small
software consultancies whose developers use a popular open-source coding agent:

* **Team orgs, not loose accounts.** ~14 orgs of 6-30 ``team`` seats (about 200 accounts at
  default scale), each org with its own card (shared by its seats, as real teams do), its own
  office NAT on a business ISP, home lines for off-hours use, one timezone, org-level
  verification. Orgs are 3-30 months old and seats joined one by one since (a few during the
  window): no creation burst, no payment or address shared across orgs.
* **An ordinary agent integration.** Seats run one of the popular coding agents with its exact
  system prompt, tool list, max_tokens and temperature defaults and a normal client version
  spread; only the reasoning effort is set high. No CoT wording anywhere.
* **Fresh tasks, not a dataset.** Each session starts from a task spec produced by the
  operator's own generator (context, change, location, constraint, sign-off; no constant text
  around the slots). A bijection over the generator's space means no task is ever sent twice, and
  there is no benchmark item to split across accounts or to match against a corpus.
* **Long agent loops** (about ten turns) whose user turns are tool output, and in ~40 % of
  sessions a closing **self-review** turn ("would a strict reviewer approve this?") that yields a
  judge verdict on the trajectory: reward-model harvesting without rubric wording.
* **Office rhythm, independent seats.** Each seat has its own Poisson sessions on a working-day
  profile in its org's timezone (quiet weekends), so seats are not synchronised beyond what any
  office is. ~10 % of sessions are ordinary side questions (cover, ``is_attack = false``).
  Model adoption is that of ordinary agent users (gradual, per seat).

Volume: ~200 seats x ~20 exchanges per working day: 2-3 times v2's harvest exchanges.
"""

from __future__ import annotations

from math import gcd

import numpy as np

from antidistill.simulate import network as nw
from antidistill.simulate.accounts import IP_OFFICE
from antidistill.simulate.base import SessionPopulation, base_rows, lognormal_mean
from antidistill.simulate.context import P_WORK, Ctx, legit_models
from antidistill.simulate.populations import chat_turns
from antidistill.simulate.prompts import n_coding_agents
from antidistill.simulate.rows import AGENT_STEP, CODING, DAY, RUBRIC, Rows, take

#: share of sessions that are ordinary side questions, and the turns such a session keeps
COVER_SHARE = 0.1
_COVER_TURNS = 3
#: share of agent sessions that end with a self-review (judge) turn
REVIEW_SHARE = 0.4


class ContractorSeats(SessionPopulation):
    """Campaign D v3: seats of fake consultancies harvesting coding-agent trajectories."""

    name = "evasive"
    campaign = "D-evasive"
    gap_s = 30.0       # tool execution + model latency between agent steps
    max_turns = 40

    def build(self, ctx: Ctx) -> None:
        rng = ctx.rng
        n_org = ctx.n(14, minimum=2)
        size = np.clip(np.round(rng.lognormal(np.log(14), 0.35, n_org)), 6, 30).astype(int)
        org_of = np.repeat(np.arange(n_org), size)
        n = int(size.sum())
        org_region, org_tz = nw.region_tz(rng, n_org)
        office = np.array([ctx.net.alloc(nw.BUSINESS, 2, block=True) for _ in range(n_org)])
        org_agent = rng.choice(n_coding_agents(), n_org, p=nw.AGENT_SHARE)
        org_verified = rng.random(n_org) < 0.6
        org_path = np.where(rng.random(n_org) < 0.8, "direct", "cloud:nimbus")
        # orgs opened 3-30 months ago; seats added one by one since, a few during the window
        org_age = rng.uniform(90, 900, n_org)
        seat_age = org_age[org_of] * rng.uniform(0.0, 1.0, n)
        created = ctx.age_us(seat_age)
        joins = rng.random(n) < 0.06
        window = ctx.end_us - ctx.start_us
        created[joins] = ctx.start_us + (rng.uniform(0.0, 0.8, int(joins.sum()))
                                         * window).astype(np.int64)
        self.active_from = np.where(joins, created, ctx.start_us - DAY).astype(np.int64)
        self.agent = org_agent[org_of]
        client = nw.agent_clients(self.agent, rng.integers(0, len(nw.AGENT_VERSIONS), n))
        k = rng.integers(1, 3, n)
        self.tz = org_tz[org_of]
        self.first = int(ctx.accounts.add(
            n, population=self.name, campaign=self.campaign,
            org=[f"D3-org{o}" for o in org_of.tolist()], account_type="team",
            created_at=created, verified=org_verified[org_of], pathway=org_path[org_of],
            payment=[f"D3-org{o}" for o in org_of.tolist()], client=client, tz=self.tz,
            ip_mode=IP_OFFICE, ip_base=nw.home_ips(ctx.net, org_region[org_of], k), ip_k=k,
            office_ip=office[org_of] + rng.integers(0, 2, n))[0])
        self.n = n
        self.org = org_of
        self.rate = lognormal_mean(rng, 2.0, 0.5, n)  # agent sessions per day
        self.profile = np.full(n, P_WORK)
        self.turns_p = np.full(n, 0.1)
        self.max_tok = np.asarray(nw.AGENT_MAX_TOKENS)[self.agent].astype(np.int32)
        self.temp = np.asarray(nw.AGENT_TEMPERATURE)[self.agent].astype(np.float32)
        self.mini = rng.uniform(0.0, 0.1, n)
        self.cap = np.clip(rng.beta(3, 2, n) * 0.85 / 0.6, 0, 1)
        self.tau = 20.0 * rng.lognormal(0, 0.5, n)
        # the task generator: a bijection over (task, location, constraint), never repeated
        pool = ctx.pool
        self.radix = (pool.size("ev3_task"), pool.size("ev3_where"), pool.size("ev3_constraint"))
        self.space = int(np.prod(self.radix, dtype=np.int64))
        stride = int(rng.integers(self.space // 3, self.space // 2)) | 1
        while gcd(stride, self.space) != 1:
            stride += 2
        self.stride, self.offset = stride, int(rng.integers(0, self.space))
        self.sent = 0

    def expected(self, ctx: Ctx) -> tuple[float, float]:
        fixed, scaled = super().expected(ctx)
        mean_turns = float(np.mean(np.minimum(1 / self.turns_p, self.max_turns)))
        return fixed, scaled * (1 - COVER_SHARE * (1 - _COVER_TURNS / mean_turns))

    def _tasks(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The next ``k`` generated task specs as local (task, location, constraint) indices."""
        c = np.arange(self.sent, self.sent + k, dtype=np.int64) % self.space
        self.sent += k
        # stride, offset < 2**28 and c < 2**28: the products fit in int64
        idx = (c * self.stride + self.offset) % self.space
        a, b, _ = self.radix
        return idx % a, (idx // a) % b, idx // (a * b)

    def content(self, ctx: Ctx, acct: np.ndarray, ts: np.ndarray, turn: np.ndarray,
                sess: np.ndarray, rng: np.random.Generator) -> Rows:
        pool, n, loc = ctx.pool, acct.size, acct - self.first
        r = base_rows(acct, ts, turn)
        nsess = int(sess.max()) + 1 if sess.size else 0
        cover_s = rng.random(nsess) < COVER_SHARE
        review_s = rng.random(nsess) < REVIEW_SHARE
        chat_turns(ctx, r, turn, sess, rng)  # cover sessions keep this ordinary text
        harvest = ~cover_s[sess]
        first = turn == 0
        last = np.r_[sess[1:] != sess[:-1], True] if n else np.zeros(0, bool)
        review = harvest & last & review_s[sess] & (turn >= 2)
        step = harvest & ~first & ~review
        # a fresh generated task for every agent session
        task = np.zeros((3, nsess), np.int64)
        if (~cover_s).any():
            task[:, ~cover_s] = np.stack(self._tasks(int((~cover_s).sum())))
        t, w, c = (x[sess] for x in task)
        hf = harvest & first
        lead = hf & (rng.random(n) < 0.5)
        sign = hf & (rng.random(n) < 0.7)
        r["p0"] = np.where(lead, pool.pick("ev3_lead", rng, n), 0)
        tool_out = np.where(rng.random(n) < 0.5, pool.pick("ev3_tool", rng, n),
                            pool.pick("tool_result", rng, n))
        r["p1"] = np.select([hf, review, step],
                            [pool.at("ev3_task", t), pool.pick("ev3_review", rng, n), tool_out],
                            r["p1"])
        r["p2"] = np.where(hf, pool.at("ev3_where", w), 0)
        r["p3"] = np.where(hf, pool.at("ev3_constraint", c), 0)
        r["p4"] = np.where(sign, pool.pick("ev3_signoff", rng, n), 0)
        agent = self.agent[loc]
        r["sys"] = np.where(harvest, pool.base("agent_system") + agent, -1)
        r["n_tools"] = np.where(harvest, pool.tools["agent"][agent], 0)
        r["kind"] = np.select([hf, review, step], [CODING, RUBRIC, AGENT_STEP], r["kind"])
        r["n_messages"] = np.where(harvest, 2 + 2 * turn, 1 + 2 * turn)
        r["hist"] = np.where(harvest, (turn * rng.lognormal(np.log(1500), 0.5, n)), r["hist"])
        r["max_tokens"] = self.max_tok[loc]
        r["temperature"] = self.temp[loc]
        r["effort"] = np.where(harvest, 1.4, 1.0)  # "reasoning effort: high", nothing else
        r["model"] = legit_models(ctx, ts, self.mini[loc], self.cap[loc], self.tau[loc], rng)
        r["is_attack"] = harvest
        # side questions are short chats, not agent loops
        return take(r, np.flatnonzero(harvest | (turn < _COVER_TURNS)))
