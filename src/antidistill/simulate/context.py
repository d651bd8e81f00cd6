"""Shared state of one simulated world: clock, models, pools, accounts, and timing helpers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from antidistill.simulate.accounts import Accounts
from antidistill.simulate.network import Net
from antidistill.simulate.prompts import TextPool
from antidistill.simulate.rows import DAY, HOUR, US

#: the window starts on a Monday so weekly shapes line up with weekdays.
START = datetime(2026, 11, 9, tzinfo=UTC)

#: models: (name, reasoning-capable, released in-window)
MODELS: tuple[tuple[str, bool, bool], ...] = (
    ("atlas-3", True, False),
    ("atlas-3-mini", False, False),
    ("atlas-3-2026-06-01", True, False),  # dated snapshot that enterprise jobs pin
    ("atlas-4", True, True),              # released mid-window
)
M_MAIN, M_MINI, M_PINNED, M_NEW = range(4)
REASONING = np.array([r for _, r, _ in MODELS])

# local-hour activity profiles (24 weights, normalised to a daily sum of 1)
_PROFILES = np.array([
    # consumer: evenings and lunch, quiet at night
    [.6, .35, .2, .12, .1, .12, .25, .5, .8, 1, 1.1, 1.2, 1.25, 1.2, 1.1, 1.1, 1.15, 1.2, 1.3,
     1.45, 1.55, 1.5, 1.25, .9],
    # work: office hours with a lunch dip
    [.05, .03, .02, .02, .03, .08, .2, .5, 1.2, 1.8, 2, 1.9, 1.2, 1.6, 1.9, 1.9, 1.7, 1.2, .6,
     .4, .35, .3, .2, .1],
    # school: classes, then homework in the evening
    [.2, .08, .03, .02, .02, .03, .1, .5, 1, 1.2, 1.2, 1.1, .9, 1.1, 1.2, 1.1, .9, .8, 1, 1.5,
     1.8, 1.7, 1.2, .6],
    # flat: machines, 24/7
    [1.0] * 24,
])
PROFILES = _PROFILES / _PROFILES.sum(axis=1, keepdims=True)
P_CONSUMER, P_WORK, P_SCHOOL, P_FLAT = range(4)
_WEEK = np.array([
    [1, 1, 1, 1, .95, 1.02, 1.08],
    [1.25, 1.3, 1.3, 1.25, 1.1, .4, .4],
    [1.1, 1.15, 1.15, 1.1, .8, .6, 1.1],
    [1] * 7,
], dtype=float)
WEEK = _WEEK / _WEEK.mean(axis=1, keepdims=True)


@dataclass
class Ctx:
    """Everything a population needs to register accounts and emit exchanges."""

    seed: int
    days: int
    scale: float
    vol: float
    evasion: str
    pool: TextPool
    accounts: Accounts
    net: Net
    rng: np.random.Generator
    #: infrastructure several populations share (a reseller's egress, CGNAT pools)
    shared: dict[str, Any] = field(default_factory=dict)
    start_us: int = field(init=False)
    end_us: int = field(init=False)
    release_us: int = field(init=False)

    def __post_init__(self) -> None:
        self.start_us = int(START.timestamp()) * US
        self.end_us = self.start_us + self.days * DAY
        # mid-window, late afternoon UTC (a US-morning launch)
        rel_day = max(1, self.days // 2) if self.days >= 2 else 0
        self.release_us = self.start_us + rel_day * DAY + (17 if self.days >= 2 else 10) * HOUR

    def n(self, base: float, minimum: int = 1) -> int:
        """Scaled count of accounts (or orgs) for a population of default size ``base``."""
        return max(minimum, round(base * self.scale))

    def age_us(self, days: np.ndarray) -> np.ndarray:
        """Creation instants ``days`` before the window start (with a random time of day)."""
        return (self.start_us - (np.asarray(days) * DAY).astype(np.int64)
                - self.rng.integers(0, DAY, np.size(days)))


def hourly(ctx: Ctx, acct: np.ndarray, rate: np.ndarray, profile: np.ndarray, tz: np.ndarray,
           h0: int, h1: int, rng: np.random.Generator, *, active_from: np.ndarray | None = None,
           active_to: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Poisson events for accounts over UTC hours [h0, h1) of the window.

    ``rate`` is events per day; the account's local-hour profile and weekday shape distribute
    it. Returns (account index, ts in us) per event, unsorted.
    """
    if acct.size == 0 or h1 <= h0:
        return np.empty(0, np.int32), np.empty(0, np.int64)
    hours = np.arange(h0, h1)
    local = hours[None, :] + tz[:, None]
    lh = np.floor(local).astype(np.int64)
    mean = (rate[:, None] * ctx.vol * PROFILES[profile[:, None], lh % 24]
            * WEEK[profile[:, None], (lh // 24) % 7])
    hour_us = ctx.start_us + hours * HOUR
    if active_from is not None:
        mean = mean * (hour_us[None, :] >= active_from[:, None])
    if active_to is not None:
        mean = mean * (hour_us[None, :] < active_to[:, None])
    counts = rng.poisson(mean).ravel()
    cell = np.repeat(np.arange(counts.size), counts)
    a = acct[cell // hours.size].astype(np.int32)
    ts = hour_us[cell % hours.size] + rng.integers(0, HOUR, cell.size)
    return a, ts


def legit_models(ctx: Ctx, ts: np.ndarray, mini: np.ndarray, cap: np.ndarray, tau_h: np.ndarray,
                 rng: np.random.Generator) -> np.ndarray:
    """Model per exchange for ordinary users: smooth, gradual adoption of the new model.

    ``mini``: the user's share of the small model; ``cap``: how much of their traffic moves to
    the new model eventually; ``tau_h``: their adoption time constant in hours.
    """
    dt_h = np.maximum(ts - ctx.release_us, 0) / HOUR
    p_new = cap * (1 - np.exp(-dt_h / tau_h))
    u = rng.random(ts.size)
    out = np.where(rng.random(ts.size) < mini, M_MINI, M_MAIN).astype(np.int8)
    out[u < p_new] = M_NEW
    return out
