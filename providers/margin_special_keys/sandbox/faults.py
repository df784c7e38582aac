"""Fault rules, the skewed clock and the request log of the sandbox.

A rule matches requests by method and path and then, `count` times (or for ever) with the given
`probability`, does one of:
- `error`:        answer `status` with Binance error `code`/`msg`; the exchange does not act;
- `latency`:      wait `delay_ms`, then serve normally;
- `latency_after`: let the exchange act, then wait `delay_ms` before answering (a create made
                  on the exchange whose answer is still on its way back);
- `error_after`:  let the exchange act, then answer `status` (a 5xx: outcome unknown to the caller);
- `drop_after`:   let the exchange act, then close the connection without an answer;
- `drop_before`:  close the connection without acting.

The log keeps method, path, HTTP status and Binance code of each request, never parameters or
bodies: those hold signatures and, for HMAC keys, secrets.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field

ACTIONS = ("error", "latency", "latency_after", "error_after", "drop_after", "drop_before")


@dataclass
class FaultRule:
    action: str
    path: str
    method: str = "*"
    status: int = 500
    code: int = -1000
    msg: str = "An unknown error occurred while processing the request."
    delay_ms: int = 0
    retry_after: int | None = None
    count: int | None = None  # None: every matching request
    probability: float = 1.0
    id: int = 0
    hits: int = 0

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"action must be one of {', '.join(ACTIONS)}")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError("probability must be between 0 and 1")
        if self.count is not None and self.count < 0:
            raise ValueError("count must be 0 or more")


@dataclass(frozen=True)
class LoggedRequest:
    at_ms: int  # when the answer went out
    method: str
    path: str
    status: int  # 0: the connection was dropped
    code: int | None
    started_ms: int  # when the request arrived
    account: str | None = None  # the calling account's id, once its API key was read


@dataclass
class Faults:
    rules: list[FaultRule] = field(default_factory=list)
    skew_ms: int = 0
    log: list[LoggedRequest] = field(default_factory=list)
    _next_id: int = 1
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _random: random.Random = field(default_factory=random.Random)

    def now_ms(self) -> int:
        """The exchange's clock, which a test may skew."""
        return int(time.time() * 1000) + self.skew_ms

    def add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            rule.id = self._next_id
            self._next_id += 1
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()
            self.skew_ms = 0

    def match(self, method: str, path: str) -> FaultRule | None:
        """The first live rule for this request, consuming one of its counts."""
        with self._lock:
            for rule in self.rules:
                if rule.path != path or rule.method not in ("*", method):
                    continue
                if rule.count is not None and rule.hits >= rule.count:
                    continue
                if rule.probability < 1.0 and self._random.random() >= rule.probability:
                    continue
                rule.hits += 1
                return rule
        return None

    def record(self, method: str, path: str, status: int, code: int | None, started_ms: int,
               account: str | None = None) -> None:
        with self._lock:
            self.log.append(LoggedRequest(int(time.time() * 1000), method, path, status, code,
                                          started_ms, account))

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            return {
                "rules": [asdict(r) for r in self.rules],
                "skewMs": self.skew_ms,
                "counts": dict(Counter(f"{r.method} {r.path}" for r in self.log)),
                "requests": [asdict(r) for r in self.log],
            }

    def reset_log(self) -> None:
        with self._lock:
            self.log.clear()
