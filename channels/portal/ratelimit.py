"""In-memory sliding-window rate limits for the portal, per link and per client address.

Each process keeps its own windows: with several ``serve`` replicas behind a load balancer
the effective limit is the per-process limit times the number of replicas, which still
stops a single client hammering one link. Keys are token hashes and IP addresses, never
tokens. The number of keys is capped so a flood of made-up links cannot exhaust memory.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class PortalLimits:
    """Requests allowed per ``window_seconds``, per link and per client address."""

    per_token: int = 30
    per_ip: int = 60
    window_seconds: float = 60.0
    max_keys: int = 20_000


class SlidingWindow:
    """At most ``limit`` hits per ``window`` seconds for each key."""

    def __init__(self, limit: int, window: float, *, max_keys: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self.clock = clock
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, key: str, now: float) -> deque[float]:
        hits = self._hits.get(key)
        if hits is None:
            return deque()
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if not hits:
            del self._hits[key]
        return hits

    def wait(self, key: str) -> float:
        """Seconds until ``key`` may make another request; 0 if it may now."""
        now = self.clock()
        hits = self._recent(key, now)
        if len(hits) < self.limit:
            return 0.0
        return max(hits[0] + self.window - now, 0.001)

    def record(self, key: str) -> None:
        now = self.clock()
        hits = self._recent(key, now)
        if not hits:
            self._hits[key] = hits
        hits.append(now)
        self._hits.move_to_end(key)
        while len(self._hits) > self.max_keys:
            self._hits.popitem(last=False)


class PortalRateLimiter:
    """Both windows must admit a request; only admitted requests are counted."""

    def __init__(self, limits: PortalLimits | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits or PortalLimits()
        window, keys = self.limits.window_seconds, self.limits.max_keys
        self.by_token = SlidingWindow(self.limits.per_token, window, max_keys=keys, clock=clock)
        self.by_ip = SlidingWindow(self.limits.per_ip, window, max_keys=keys, clock=clock)

    def admit(self, *, token_hash: str, ip: str) -> float:
        """0 and counted if the request may proceed, else the seconds to wait."""
        wait = max(self.by_token.wait(token_hash), self.by_ip.wait(ip))
        if wait:
            return wait
        self.by_token.record(token_hash)
        self.by_ip.record(ip)
        return 0.0
