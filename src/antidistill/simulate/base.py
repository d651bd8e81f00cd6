"""What every population is: it registers accounts, then emits exchanges hour range by range."""

from __future__ import annotations

import numpy as np

from antidistill.simulate.context import Ctx, hourly
from antidistill.simulate.rows import DAY, Rows, empty, sessions


class Population:
    """A group of accounts behaving alike. Subclasses set ``name`` and ``campaign``."""

    name: str = ""
    campaign: str | None = None
    first: int = 0
    n: int = 0

    def build(self, ctx: Ctx) -> None:
        """Register accounts in ``ctx.accounts`` (one contiguous block)."""
        raise NotImplementedError

    def expected(self, ctx: Ctx) -> tuple[float, float]:
        """Expected exchanges as (fixed, proportional to ``ctx.vol``)."""
        raise NotImplementedError

    def emit(self, ctx: Ctx, h0: int, h1: int, rng: np.random.Generator) -> Rows:
        """Exchanges whose sessions start in window hours [h0, h1)."""
        raise NotImplementedError

    @property
    def idx(self) -> np.ndarray:
        return np.arange(self.first, self.first + self.n)


class SessionPopulation(Population):
    """Poisson sessions per account following a timing profile; each session has turns."""

    rate: np.ndarray        # sessions per day
    profile: np.ndarray     # timing profile id per account
    tz: np.ndarray          # utc offset (hours) per account
    turns_p: np.ndarray     # geometric parameter of turns per session
    gap_s: float = 60.0     # mean think time between turns
    max_turns: int = 60
    active_from: np.ndarray | None = None
    active_to: np.ndarray | None = None

    def expected(self, ctx: Ctx) -> tuple[float, float]:
        start = ctx.start_us if self.active_from is None else np.maximum(
            self.active_from, ctx.start_us)
        end = ctx.end_us if self.active_to is None else np.minimum(self.active_to, ctx.end_us)
        days = np.maximum(np.asarray(end - start, dtype=float), 0) / DAY
        mean_turns = np.minimum(1 / self.turns_p, self.max_turns)
        return 0.0, float((self.rate * mean_turns * days).sum())

    def emit(self, ctx: Ctx, h0: int, h1: int, rng: np.random.Generator) -> Rows:
        acct, t0 = hourly(ctx, self.idx, self.rate, self.profile, self.tz, h0, h1, rng,
                          active_from=self.active_from, active_to=self.active_to)
        if acct.size == 0:
            return empty()
        turns = np.minimum(rng.geometric(self.turns_p[acct - self.first]), self.max_turns)
        a, ts, turn, sess = sessions(acct, t0, turns, self.gap_s, rng)
        if self.active_to is not None:  # a banned account's session ends with the ban
            keep = ts < self.active_to[a - self.first]
            a, ts, turn, sess = a[keep], ts[keep], turn[keep], sess[keep]
        return self.content(ctx, a, ts, turn, sess, rng)

    def content(self, ctx: Ctx, acct: np.ndarray, ts: np.ndarray, turn: np.ndarray,
                sess: np.ndarray, rng: np.random.Generator) -> Rows:
        """Fill text, tools, model and usage knobs for each exchange."""
        raise NotImplementedError


def pick_choice(rng: np.random.Generator, n: int, weights: list[float] | tuple[float, ...]
                ) -> np.ndarray:
    """Category per item with the given (unnormalised) weights."""
    w = np.asarray(weights, dtype=float)
    return rng.choice(w.size, n, p=w / w.sum()).astype(np.int8)


def session_pick(rng: np.random.Generator, sess: np.ndarray,
                 weights: list[float] | tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Per row, (category, corpus item) drawn once per session, so that every turn of a
    session keeps one topic and one source item; ``sess`` holds 0-based session ids."""
    nsess = int(sess.max()) + 1 if sess.size else 0
    kind = pick_choice(rng, nsess, weights)[sess]
    item = rng.integers(0, 1 << 30, nsess)[sess]
    return kind, item


def lognormal_mean(rng: np.random.Generator, mean: float, sigma: float, n: int) -> np.ndarray:
    """Lognormal draws with the given mean (heavy-tailed per-account volumes)."""
    return rng.lognormal(np.log(mean) - sigma**2 / 2, sigma, n)


def base_rows(acct: np.ndarray, ts: np.ndarray, turn: np.ndarray) -> Rows:
    """Rows with account, time and conversation length filled."""
    r = empty(acct.size)
    r["acct"] = acct
    r["ts"] = ts
    r["n_messages"] = (1 + 2 * turn).astype(np.int16)
    return r
