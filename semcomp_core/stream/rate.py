"""Rate control to a link budget, shared by the stream coders.

A leaky-bucket model in bytes: every frame adds its share of the budget,
``kbps * 1000 / 8 * dt`` (``dt``: ``1 / fps`` when the codec's ``fps`` is set,
else the time since the previous frame from the stamps, else ``1 /
default_fps`` -- the stream's nominal rate, 10 Hz when unknown; at most
:data:`MAX_DT_S`, so a pause in the camera does not bank a burst), and removes the bytes actually sent. Each frame may
spend its share plus a fraction of the balance (``1 / horizon`` of it; the
balance is paid back or spent over about ``horizon`` frames), never more than
``max_bytes``. The coder tries operating points from the richest that could
fit and keeps the first that does; over a stream the sent bytes follow the
budget to within a few frames' worth of bytes, i.e. within a few percent over
hundreds of frames.

Stamps that do not advance (duplicates, out of order) give the frame no new
budget and are counted (``stamp_anomalies``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import UsageError

MAX_DT_S = 1.0
DEFAULT_FPS = 10.0


@dataclass
class RateController:
    kbps: float
    #: frame rate that overrides the stamps (0: use the stamps)
    fps: float = 0.0
    max_bytes: int = 0
    #: frame rate assumed for frames without stamps (and the first frame); 0: DEFAULT_FPS
    default_fps: float = 0.0
    horizon: float = 4.0
    balance: float = 0.0
    frames: int = 0
    sent: int = 0
    budget_total: float = 0.0
    stamp_anomalies: int = 0
    last_anomaly: str = ""
    _last_stamp: int | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.kbps > 0:
            raise UsageError(f"kbps must be positive, got {self.kbps}")
        if self.fps < 0 or self.max_bytes < 0:
            raise UsageError("fps and max_bytes must not be negative")

    @property
    def frame_interval(self) -> float:
        return 1.0 / (self.fps or self.default_fps or DEFAULT_FPS)

    def _dt(self, stamp_ns: int | None) -> float:
        if stamp_ns is None or self.fps:
            return self.frame_interval
        last = self._last_stamp
        if last is None:
            self._last_stamp = stamp_ns
            return self.frame_interval
        dt = (stamp_ns - last) / 1e9
        if dt <= 0:
            self.stamp_anomalies += 1
            self.last_anomaly = (f"stamp {stamp_ns} does not advance on the previous one ({last}): "
                                 "duplicate or out-of-order frame, no budget added")
            return 0.0
        self._last_stamp = stamp_ns
        return min(dt, MAX_DT_S)

    def allowance(self, stamp_ns: int | None = None) -> float:
        """Bytes this frame may spend (call once per frame, then :meth:`spent`)."""
        share = self.kbps * 125.0 * self._dt(stamp_ns)
        self.budget_total += share
        self.balance += share
        allow = share + (self.balance - share) / self.horizon
        if self.max_bytes:
            allow = min(allow, self.max_bytes)
        return max(allow, 0.0)

    def spent(self, n_bytes: int) -> None:
        self.balance -= n_bytes
        self.frames += 1
        self.sent += n_bytes

    def fits_cap(self, n_bytes: int) -> bool:
        return not self.max_bytes or n_bytes <= self.max_bytes

    @property
    def bitrate_kbps(self) -> float | None:
        """Bitrate sent so far, over the budgeted time."""
        if not self.budget_total:
            return None
        return self.kbps * self.sent / self.budget_total
