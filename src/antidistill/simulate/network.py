"""Where traffic comes from: IP addresses with their ASNs, and client fingerprints.

ASNs are real autonomous-system numbers of the kinds of networks named (residential ISPs,
mobile carriers behind CGNAT, cloud/datacenter hosts, business ISPs for office NATs,
universities); the addresses themselves are synthetic. Every address is allocated once into a
flat pool (one Arrow array) and exchanges refer to it by index, so no string is built per row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

REGIONS = ("americas", "europe", "asia")
#: (utc offset hours, weight) per region; fractional offsets exist (India).
TIMEZONES: dict[str, tuple[tuple[float, float], ...]] = {
    "americas": ((-8, 0.3), (-7, 0.1), (-6, 0.2), (-5, 0.3), (-3, 0.1)),
    "europe": ((0, 0.25), (1, 0.5), (2, 0.2), (3, 0.05)),
    "asia": ((5.5, 0.3), (8, 0.35), (9, 0.3), (7, 0.05)),
}
REGION_WEIGHTS = (0.45, 0.3, 0.25)

RESIDENTIAL: dict[str, tuple[int, ...]] = {
    "americas": (7922, 7018, 20115, 701, 28573, 5650),
    "europe": (3320, 3215, 2856, 6830, 12322, 3352),
    "asia": (4713, 9318, 4134, 9498, 2516, 45899),
}
MOBILE: dict[str, tuple[int, ...]] = {
    "americas": (21928, 22394),
    "europe": (3209, 15557),
    "asia": (55836, 17676),
}
DATACENTER = (16509, 15169, 8075, 14061, 24940, 16276, 45102, 132203, 63949)
BUSINESS = (174, 3356, 6461, 1299, 6939)
UNIVERSITY = (3, 32, 25, 786, 4538, 680, 2200)

CHAT_CLIENTS = (
    "python-sdk/1.54.3 CPython/3.12.4", "python-sdk/1.51.0 CPython/3.11.9",
    "node-sdk/4.72.0 node/20.11.1", "node-sdk/4.67.3 node/18.19.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) Chrome/131.0 web-playground",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Firefox/132.0 web-playground",
    "LibreChat/0.7.5", "OpenWebUI/0.4.8", "ChatBox/1.6.2 (Android 14)", "ChatBox/1.6.2 (iOS 18)",
    "TypingMind/2024.11", "curl/8.5.0", "go-sdk/0.9.1 go1.23", "langchain/0.3.7 python-sdk/1.54.3",
    "llamaindex/0.12.1 python-sdk/1.55.0", "raycast/1.86.0", "obsidian-ai/2.1.0",
    "python-requests/2.32.3", "python-httpx/0.27.2",
)
SDK_CLIENTS = (
    "python-sdk/1.54.3 CPython/3.12.4", "python-sdk/1.55.0 CPython/3.11.10",
    "node-sdk/4.72.0 node/20.11.1", "java-sdk/2.8.0 jdk/21", "go-sdk/0.9.1 go1.23",
    "aiohttp/3.10.10", "node-fetch/3.3.2", "python-requests/2.32.3",
)
EVAL_CLIENTS = (
    "lm-eval/0.4.5 python-httpx/0.27.2", "inspect-ai/0.3.52 python-sdk/1.54.3",
    "helm/0.5.4 python-sdk/1.51.0", "python-sdk/1.54.3 CPython/3.12.4",
)
AGENT_VERSIONS = ("1.0.18", "1.0.21", "1.1.0")
#: the popular coding agents (indices match ``prompts.n_coding_agents``): client name, share of
#: users, and the max_tokens / temperature each harness sends by default (NaN: none sent)
AGENT_CLIENTS = ("codepilot-cli", "forge-agent", "opendev", "tabsmith")
AGENT_SHARE = (0.4, 0.25, 0.2, 0.15)
AGENT_MAX_TOKENS = (32000, 16384, 8192, 64000)
AGENT_TEMPERATURE = (float("nan"), 0.0, 1.0, 0.2)


def agent_clients(agent: np.ndarray, version: np.ndarray) -> list[str]:
    """Client fingerprint of each user: its agent's name and version."""
    return [f"{AGENT_CLIENTS[a]}/{AGENT_VERSIONS[v]}"
            for a, v in zip(agent.tolist(), version.tolist(), strict=True)]


def region_tz(rng: np.random.Generator, n: int, regions: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
    """Draw (region index, utc offset hours) for ``n`` users."""
    reg = regions if regions is not None else rng.choice(3, n, p=REGION_WEIGHTS)
    tz = np.zeros(n)
    for r, name in enumerate(REGIONS):
        idx = np.flatnonzero(reg == r)
        offs = np.array([o for o, _ in TIMEZONES[name]])
        w = np.array([w for _, w in TIMEZONES[name]])
        tz[idx] = rng.choice(offs, idx.size, p=w / w.sum())
    return reg.astype(np.int8), tz


@dataclass
class Net:
    """Flat IP pool; ``alloc`` returns the index of the first of ``n`` new addresses."""

    rng: np.random.Generator
    ips: list[str] = field(default_factory=list)
    asns: list[int] = field(default_factory=list)
    _prefix: dict[int, tuple[int, int]] = field(default_factory=dict)

    def _v4(self, asn: int, n: int, block: bool) -> list[str]:
        if asn not in self._prefix:
            self._prefix[asn] = (int(self.rng.integers(11, 223)), int(self.rng.integers(0, 256)))
        a, b = self._prefix[asn]
        if block:  # consecutive addresses in one /24 (a rented range, an office block)
            c = int(self.rng.integers(0, 256))
            d0 = int(self.rng.integers(2, max(3, 250 - n)))
            return [f"{a}.{b}.{c}.{(d0 + i) % 254 + 1}" for i in range(n)]
        cs = self.rng.integers(0, 256, n)
        ds = self.rng.integers(1, 255, n)
        return [f"{a}.{b}.{c}.{d}" for c, d in zip(cs.tolist(), ds.tolist(), strict=True)]

    def _v6(self, asn: int, n: int) -> list[str]:
        hi = int(self.rng.integers(0x2400, 0x2a10))
        mid = self.rng.integers(0, 0xFFFF, (n, 3))
        return [f"{hi:x}:{asn & 0xFFFF:x}:{m[0]:x}:{m[1]:x}::{m[2]:x}" for m in mid.tolist()]

    def alloc(self, asns: tuple[int, ...] | list[int] | np.ndarray, n: int, *,
              block: bool = False, v6_share: float = 0.0) -> int:
        """Allocate ``n`` addresses spread over ``asns`` (block=True: one /24 of one ASN)."""
        base = len(self.ips)
        if block:
            asn = int(asns[int(self.rng.integers(0, len(asns)))])
            self.ips.extend(self._v4(asn, n, True))
            self.asns.extend([asn] * n)
            return base
        pick = np.asarray(asns)[self.rng.integers(0, len(asns), n)]
        v6 = self.rng.random(n) < v6_share
        out: list[str] = [""] * n
        for asn in np.unique(pick).tolist():
            idx = np.flatnonzero((pick == asn) & ~v6).tolist()
            for i, ip in zip(idx, self._v4(asn, len(idx), False), strict=True):
                out[i] = ip
            idx6 = np.flatnonzero((pick == asn) & v6).tolist()
            for i, ip in zip(idx6, self._v6(asn, len(idx6)), strict=True):
                out[i] = ip
        self.ips.extend(out)
        self.asns.extend(pick.tolist())
        return base

    def arrays(self) -> tuple[pa.Array, pa.Array]:
        return pa.array(self.ips, pa.string()), pa.array(self.asns, pa.int32())


def home_ips(net: Net, region: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Private residential/mobile addresses, ``k[i]`` per user, from their region's ISPs.

    Returns each user's first index; a user's addresses are consecutive in the pool.
    """
    base = np.zeros(region.size, np.int64)
    for r, name in enumerate(REGIONS):
        idx = np.flatnonzero(region == r)
        if idx.size == 0:
            continue
        total = int(k[idx].sum())
        start = net.alloc(RESIDENTIAL[name] * 3 + MOBILE[name], total, v6_share=0.15)
        base[idx] = start + np.cumsum(k[idx]) - k[idx]
    return base


def cgnat_pool(net: Net, shared: dict[str, object], region: int, size: int = 48) -> int:
    """A mobile carrier's CGNAT egress addresses: many unrelated users share each one."""
    key = f"cgnat:{region}"
    if key not in shared:
        shared[key] = net.alloc(MOBILE[REGIONS[region]], size)
    return int(shared[key])  # type: ignore[call-overload]


def sdk_clients(rng: np.random.Generator, n: int) -> list[str]:
    """SDK/browser user agents with realistic version spread: most users are on recent
    releases, a long tail on older ones (what a user-agent column really looks like)."""
    out: list[str] = []
    fam = rng.choice(4, n, p=[0.45, 0.3, 0.15, 0.1])
    lag = np.minimum(rng.geometric(0.3, n) - 1, 40)
    patch = rng.integers(0, 8, n)
    rt = rng.integers(0, 4, n)
    rtp = rng.integers(0, 16, n)
    for f, g, p, r, q in zip(fam.tolist(), lag.tolist(), patch.tolist(), rt.tolist(),
                             rtp.tolist(), strict=True):
        if f == 0:
            out.append(f"python-sdk/1.{55 - g}.{p} CPython/3.{10 + r}.{q}")
        elif f == 1:
            out.append(f"node-sdk/4.{72 - g}.{p} node/{18 + 2 * r}.{q}.0")
        elif f == 2:
            out.append(f"go-sdk/0.{9 - min(g, 8)}.{p} go1.{21 + r}")
        else:
            out.append(f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/{131 - g}.0 "
                       "web-playground")
    return out


def distinct_sdk_clients(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` different user agents drawn from the same distribution as ordinary users."""
    seen: dict[str, None] = {}
    for _ in range(200):  # the space holds ~60,000 agents; beyond that some must repeat
        for c in sdk_clients(rng, 2 * (n - len(seen)) + 8):
            seen.setdefault(c, None)
            if len(seen) == n:
                return list(seen)
    have = list(seen)
    return [have[i % len(have)] for i in range(n)]
