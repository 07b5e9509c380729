"""TEMPORARY stand-in for ``instructor_core.engine`` (issue 10) until it lands on main; deleted then."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class IngestReport:
    seen: int
    written: int
    skipped: int
    retried: int
    batches: int


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    backoff: float = 0.5
    max_backoff: float = 8.0


def call_with_retry(
    fn: Callable[[], T],
    *,
    is_transport_error: Callable[[BaseException], bool],
    policy: RetryPolicy = RetryPolicy(),
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[T, int]:
    for attempt in range(1, policy.max_attempts + 1):
        try:
            return fn(), attempt - 1
        except Exception as exc:
            if not is_transport_error(exc) or attempt == policy.max_attempts:
                raise
            sleep(min(policy.backoff * 2 ** (attempt - 1), policy.max_backoff))
    raise AssertionError("unreachable")


Any = Any
