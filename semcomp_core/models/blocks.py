"""Small building blocks shared by the codec networks (gc, bpg-se)."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class ResBlock(nn.Module):
    """x + conv(lrelu(conv(lrelu(x)))), channels unchanged."""

    def __init__(self, c: int):
        super().__init__()
        self.a = nn.Conv2d(c, c, 3, 1, 1)
        self.b = nn.Conv2d(c, c, 3, 1, 1)

    def forward(self, x):
        return x + self.b(F.leaky_relu(self.a(F.leaky_relu(x, 0.2)), 0.2))


def pad_to(image: torch.Tensor, factor: int) -> torch.Tensor:
    """Replicate-pad (N, C, H, W) at the bottom and right to multiples of ``factor``."""
    h, w = image.shape[-2:]
    ph, pw = (-h) % factor, (-w) % factor
    return F.pad(image, (0, pw, 0, ph), mode="replicate") if ph or pw else image
