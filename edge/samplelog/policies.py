"""Which frames to keep: the logging policies, combinable.

A frame is a candidate when any policy names a reason (low confidence, random,
manual; disagreement is decided by the shadow thread). A candidate is kept
unless a rate limit says no: the minimum interval between two logged frames and
the per-class quota per hour (a car waiting at a red light must not log a
thousand near-copies). Manual frames bypass the rate limits.

Example:
    >>> engine = PolicyEngine(LogPolicy(low_confidence=0.6, random_rate=0.1))
    >>> engine.reasons(confidence=0.4)
    ['low_confidence']
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from pathlib import Path

from edge.errors import UserError

REASONS = ("low_confidence", "random", "disagreement", "manual")


@dataclass
class LogPolicy:
    """Logging policy settings (flags or the `[log]` table of the TOML config).

    Args:
        low_confidence: log when top-1 probability < this (None: off).
        random_rate: fraction of frames logged at random (0: off).
        quota_per_class_hour: at most this many frames per predicted class per hour (None: no quota).
        min_interval: seconds between two logged frames (0: no limit).
        manual_frames: frames marked by SIGUSR1 or by touching `manual_file`.
        manual_file: path polled for existence; it is deleted when seen.
        seed: seed of the random policy (None: fresh).
    """

    low_confidence: float | None = None
    random_rate: float = 0.0
    quota_per_class_hour: int | None = None
    min_interval: float = 0.0
    manual_frames: int = 30
    manual_file: Path | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.low_confidence is not None and not 0 < self.low_confidence <= 1:
            raise UserError(f"sample log: low_confidence must be in (0, 1], got {self.low_confidence}")
        if not 0 <= self.random_rate <= 1:
            raise UserError(f"sample log: random (random_rate) must be a fraction in [0, 1], got {self.random_rate}")
        if self.quota_per_class_hour is not None and self.quota_per_class_hour < 1:
            raise UserError(f"sample log: quota_per_class_hour must be >= 1, got {self.quota_per_class_hour}")
        if self.min_interval < 0 or self.manual_frames < 1:
            raise UserError(f"sample log: min_interval must be >= 0 and manual_frames >= 1, got {self.min_interval} and {self.manual_frames}")
        if self.manual_file is not None:
            self.manual_file = Path(self.manual_file)


class PolicyEngine:
    """Decides, cheaply and without blocking, whether a frame is logged. Thread-safe."""

    def __init__(self, policy: LogPolicy) -> None:
        self.policy = policy
        self._random = random.Random(policy.seed)
        self._lock = threading.Lock()
        self._last_logged: float | None = None
        self._per_class: dict[str, deque[float]] = defaultdict(deque)
        self._manual_left = 0
        self._next_file_check = 0.0
        self.rate_limited = 0

    def mark_manual(self, frames: int | None = None) -> None:
        """Log the next `frames` frames (SIGUSR1 calls this; safe from a signal handler)."""
        self._manual_left = frames or self.policy.manual_frames

    def _poll_manual_file(self) -> None:
        path = self.policy.manual_file
        now = time.monotonic()
        if path is None or now < self._next_file_check:
            return
        self._next_file_check = now + 0.2
        if path.exists():
            try:
                os.unlink(path)
            except OSError:
                pass
            self.mark_manual()

    def reasons(self, confidence: float) -> list[str]:
        """Reasons of the frame-local policies (disagreement is added by the shadow)."""
        self._poll_manual_file()
        found = []
        if self.policy.low_confidence is not None and confidence < self.policy.low_confidence:
            found.append("low_confidence")
        if self.policy.random_rate and self._random.random() < self.policy.random_rate:
            found.append("random")
        if self._manual_left > 0:
            self._manual_left -= 1
            found.append("manual")
        return found

    def admit(self, label: str, reasons: list[str], when: float) -> bool:
        """Apply the rate limits; record the frame as logged when admitted."""
        with self._lock:
            if "manual" not in reasons:
                if self._last_logged is not None and when - self._last_logged < self.policy.min_interval:
                    self.rate_limited += 1
                    return False
                quota = self.policy.quota_per_class_hour
                if quota is not None:
                    recent = self._per_class[label]
                    while recent and when - recent[0] >= 3600:
                        recent.popleft()
                    if len(recent) >= quota:
                        self.rate_limited += 1
                        return False
            self._last_logged = when
            if self.policy.quota_per_class_hour is not None:
                self._per_class[label].append(when)
            return True

    @property
    def active(self) -> bool:
        p = self.policy
        return bool(p.low_confidence or p.random_rate or p.manual_file)
