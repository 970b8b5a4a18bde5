"""Device tokens (stored only as hashes), signed short-lived file links, and per-device rate limits."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass

TOKEN_PREFIX = "cgd_"


def new_token() -> str:
    """A bearer token with 256 random bits; shown to the device once, never stored."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    # The token is 256 random bits, so a plain SHA-256 is enough (no password stretching needed):
    # a database leak reveals no usable token.
    return hashlib.sha256(token.encode()).hexdigest()


def _signature(secret: bytes, key: str, expires: int) -> str:
    return hmac.new(secret, f"{key}\n{expires}".encode(), hashlib.sha256).hexdigest()


def sign(secret: bytes, key: str, ttl_s: int, now: float | None = None) -> tuple[int, str]:
    expires = int((now or time.time()) + ttl_s)
    return expires, _signature(secret, key, expires)


class LinkError(Exception):
    """A signed link that is forged or expired (the API answers 403)."""


def verify(secret: bytes, key: str, expires: int, signature: str, now: float | None = None) -> None:
    if not hmac.compare_digest(_signature(secret, key, expires).encode(), signature.encode("utf-8", "replace")):
        raise LinkError("invalid link signature")
    if (now or time.time()) > expires:
        raise LinkError("link expired; ask for the result again to get a fresh link")


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    """Token buckets per key (one process; several API processes each limit on their own)."""

    def __init__(self, per_minute: int, burst: int, max_keys: int = 100_000):
        self.rate = per_minute / 60.0
        self.burst = float(max(1, burst))
        self.max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> float:
        """0.0 when allowed, else the seconds to wait before retrying."""
        t = time.monotonic()
        with self._lock:
            b = self._buckets.get(key)
            if b is None:
                if len(self._buckets) >= self.max_keys:
                    self._buckets.clear()  # bounded memory; forgetting is lenient, never stricter
                b = self._buckets[key] = _Bucket(self.burst, t)
            b.tokens = min(self.burst, b.tokens + (t - b.stamp) * self.rate)
            b.stamp = t
            if b.tokens >= 1.0:
                b.tokens -= 1.0
                return 0.0
            return (1.0 - b.tokens) / self.rate if self.rate > 0 else 60.0
