"""The vendored datasets campaigns harvest, and how a campaign walks one.

Harvesting needs many distinct hard prompts. The scripted campaigns and the randomised training
cells take them from vendored datasets, walked here without repeats (the held-out v3 campaign
generates its tasks instead, see :mod:`antidistill.simulate.heldout`).
"""

from __future__ import annotations

import numpy as np

from antidistill.simulate.context import Ctx


class DatasetWalk:
    """A campaign's pass over a dataset: consecutive items of a fixed permutation, no repeats
    until the whole set is covered."""

    def __init__(self, size: int, rng: np.random.Generator) -> None:
        self.perm = rng.permutation(size)
        self.pos = 0

    def next(self, n: int) -> np.ndarray:
        out = self.perm[(self.pos + np.arange(n)) % self.perm.size]
        self.pos += n
        return out


def math_items(ctx: Ctx, local: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(question, worked solution) global indices for positions in gsm8k + MATH."""
    pool = ctx.pool
    g = pool.size("gsm8k")
    is_g = local < g
    q = np.where(is_g, pool.at("gsm8k", local), pool.at("math", local - g))
    a = np.where(is_g, pool.at("gsm8k_answer", local), pool.at("math_solution", local - g))
    return q, a


def math_size(ctx: Ctx) -> int:
    """Items in gsm8k + MATH, the positions :func:`math_items` accepts."""
    return ctx.pool.size("gsm8k") + ctx.pool.size("math")
