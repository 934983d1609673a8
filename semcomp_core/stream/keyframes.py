"""When a stream coder sends a key frame (one policy for every stream coder).

A key frame is sent on the first frame, every ``gop`` frames, when the frame
size changes, when asked (:meth:`semcomp_core.stream.EncoderSession.request_key_frame`:
start-up, a parameter change, a receiver joining), and on a scene cut: when
more than ``scenecut`` of the content differs from the reference (for the
semantic codecs: the share of map cells whose label differs from the
prediction); ``scenecut=0`` turns that off. ``gop=1`` sends only key frames.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class KeyFramePolicy:
    gop: int = 1
    scenecut: float = 0.5
    since_key: int = 0

    def reason(self, *, has_reference: bool, forced: bool, resized: bool) -> str:
        """Why this frame must be a key frame before looking at its content ("" if it need not be)."""
        if not has_reference:
            return "start"
        if resized:
            return "resize"
        if forced:
            return "request"
        if self.gop <= 1:
            return "intra"
        if self.since_key + 1 >= self.gop:
            return "gop"
        return ""

    def scene_cut(self, changed_fraction: float) -> bool:
        return bool(self.scenecut) and changed_fraction > self.scenecut

    def sent(self, key: bool) -> None:
        self.since_key = 0 if key else self.since_key + 1
