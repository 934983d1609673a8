"""Multi-scale PatchGAN discriminator (pix2pixHD/SPADE), conditioned on the same semantic + colour map.

Each scale returns its intermediate features (for the feature-matching loss)
and its final patch logits. Spectral norm on every convolution.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import spectral_norm

from .io import register_model


class PatchDiscriminator(nn.Module):
    def __init__(self, in_channels: int, width: int = 64, layers: int = 4):
        super().__init__()
        blocks = []
        c = in_channels
        for i in range(layers):
            out = width * min(2 ** i, 4)
            stride = 2 if i < layers - 1 else 1
            blocks.append(nn.Sequential(spectral_norm(nn.Conv2d(c, out, 4, stride, 2)), nn.LeakyReLU(0.2, True)))
            c = out
        self.blocks = nn.ModuleList(blocks)
        self.out = spectral_norm(nn.Conv2d(c, 1, 4, 1, 2))

    def forward(self, x):
        feats = []
        for b in self.blocks:
            x = b(x)
            feats.append(x)
        return feats, self.out(x)


@register_model("multiscale-discriminator")
class MultiScaleDiscriminator(nn.Module):
    def __init__(self, num_classes: int = 11, scales: int = 2, width: int = 64, layers: int = 4) -> None:
        super().__init__()
        self.config = dict(num_classes=num_classes, scales=scales, width=width, layers=layers)
        self.nets = nn.ModuleList(PatchDiscriminator(num_classes + 3 + 3, width, layers) for _ in range(scales))

    @classmethod
    def tiny(cls, num_classes: int = 11) -> "MultiScaleDiscriminator":
        return cls(num_classes=num_classes, scales=2, width=4, layers=3)

    def forward(self, image: torch.Tensor, cond: torch.Tensor):
        """Returns a list (one per scale) of (features, logits)."""
        x = torch.cat([image, cond], 1)
        results = []
        for i, net in enumerate(self.nets):
            if i:
                x = F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)
            results.append(net(x))
        return results
