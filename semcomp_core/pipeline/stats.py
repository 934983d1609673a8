"""Bounded running statistics and ROS-free diagnostic reports for the pipeline stages.

Everything here has a fixed memory bound, so a node can run for days:

* :class:`RollingWindow` -- the last N values (percentiles, mean);
* :class:`RateMeter` -- events and amounts over the last few seconds (fps, bitrate);
* :class:`DiagnosticReport` -- what a stage reports; the ROS layer turns it into a
  ``diagnostic_msgs/DiagnosticStatus`` (``values`` become ``KeyValue`` pairs).
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

#: DiagnosticStatus level names, in the order of their byte values (OK=0 ... STALE=3).
LEVELS = ("OK", "WARN", "ERROR", "STALE")


class RollingWindow:
    """The last ``size`` values of a series."""

    def __init__(self, size: int = 1000) -> None:
        self._values: deque[float] = deque(maxlen=size)

    def add(self, value: float | None) -> None:
        if value is not None and np.isfinite(value):
            self._values.append(float(value))

    def __len__(self) -> int:
        return len(self._values)

    def array(self) -> np.ndarray:
        return np.fromiter(self._values, float, count=len(self._values))

    def percentile(self, q: float) -> float | None:
        return float(np.percentile(self.array(), q)) if self._values else None

    def mean(self) -> float | None:
        return float(self.array().mean()) if self._values else None


class RateMeter:
    """Events per second and amount per second over the last ``window_s`` seconds."""

    def __init__(self, window_s: float = 5.0, max_events: int = 10_000) -> None:
        self.window_ns = int(window_s * 1e9)
        self._events: deque[tuple[int, float]] = deque(maxlen=max_events)

    def add(self, amount: float = 0.0, now_ns: int | None = None) -> None:
        self._events.append((time.monotonic_ns() if now_ns is None else now_ns, float(amount)))

    def _recent(self, now_ns: int | None) -> list[tuple[int, float]]:
        now = time.monotonic_ns() if now_ns is None else now_ns
        while self._events and now - self._events[0][0] > self.window_ns:
            self._events.popleft()
        return list(self._events)

    def rates(self, now_ns: int | None = None) -> tuple[float, float]:
        """``(events per second, amount per second)``; zeros with fewer than two events."""
        events = self._recent(now_ns)
        if len(events) < 2:
            return 0.0, 0.0
        span = (events[-1][0] - events[0][0]) / 1e9
        if span <= 0:
            return 0.0, 0.0
        # n events span n-1 intervals; the amount of the first event is outside the span
        return (len(events) - 1) / span, sum(a for _, a in events[1:]) / span


@dataclass
class DiagnosticReport:
    """A ROS-free DiagnosticStatus: ``level`` is one of :data:`LEVELS`."""

    name: str
    level: str
    message: str
    values: dict[str, str] = field(default_factory=dict)

    @property
    def level_value(self) -> int:
        return LEVELS.index(self.level)


def fmt(value: float | int | None, digits: int = 2) -> str:
    """Diagnostic value text: ``"-"`` for missing values."""
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


class Counters(dict):
    """Named frame counters that also remember what was last reported (for WARN levels)."""

    def __init__(self, *names: str) -> None:
        super().__init__({n: 0 for n in names})
        self._reported = dict(self)

    def bump(self, name: str, n: int = 1) -> None:
        self[name] = self.get(name, 0) + n

    def since_report(self, *names: str) -> int:
        """How many of ``names`` happened since the last :meth:`mark_reported`."""
        return sum(self.get(n, 0) - self._reported.get(n, 0) for n in names)

    def mark_reported(self) -> None:
        self._reported = dict(self)

    def status(self, bad: tuple[str, ...], bad_text: str, last_error: str | None, idle: str,
               idle_text: str, ok_text: str) -> tuple[str, str]:
        """(level, message) for a diagnostics report, then mark everything reported.

        WARN when any ``bad`` counter moved since the last report, OK "waiting" while ``idle``
        is still zero, OK ``ok_text`` otherwise.
        """
        n_bad = self.since_report(*bad)
        if n_bad:
            result = ("WARN", f"{n_bad} frame(s) {bad_text} since the last report: {last_error}")
        elif self.get(idle, 0) == 0:
            result = ("OK", idle_text)
        else:
            result = ("OK", ok_text)
        self.mark_reported()
        return result
