"""Compact U-Net segmenter: the *evaluation* segmenter, independent of the codec's encoder.

The semantic-preservation number of a semantic codec is only meaningful when the
segmenter that judges reconstructions is not the one the decoder was trained
against (the GAN's semantic-consistency term optimises the codec's DDRNet
directly). This network differs in family (symmetric encoder-decoder with
skip connections, no two-branch fusion, no pyramid pooling), width, seed and
input resolution (``input_scale``, 0.5 by default: it sees 240x180 for a
480x360 frame), so it shares neither weights nor inductive biases with the
encoder.

Same interface as ``DDRNetSeg``: ``forward(image 0..255, with_aux=False)``,
``config`` = constructor arguments, ``num_classes``, ``tiny()``. Logits come
out at 1/2 of the (scaled) input. No data-dependent control flow.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .io import register_model
from .segmenter import conv_bn


class _Down(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.body = nn.Sequential(conv_bn(cin, cout, 3, 2), conv_bn(cout, cout, 3))

    def forward(self, x):
        return self.body(x)


class _Up(nn.Module):
    def __init__(self, cin: int, skip: int, cout: int):
        super().__init__()
        self.body = nn.Sequential(conv_bn(cin + skip, cout, 3), conv_bn(cout, cout, 3))

    def forward(self, x, skip):
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.body(torch.cat([x, skip], 1))


@register_model("unet-seg")
class UNetSeg(nn.Module):
    def __init__(self, num_classes: int = 11, widths: tuple[int, ...] = (24, 48, 96, 160, 256),
                 input_scale: float = 0.5, class_names: list[str] | None = None,
                 mean: tuple[float, float, float] = (0.5, 0.5, 0.5),
                 std: tuple[float, float, float] = (0.25, 0.25, 0.25)) -> None:
        super().__init__()
        if len(widths) != 5:
            raise ValueError("widths: one entry per resolution 1/2 .. 1/32")
        self.config = dict(num_classes=num_classes, widths=list(widths), input_scale=input_scale,
                           class_names=class_names, mean=list(mean), std=list(std))
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1) * 255.0, persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1) * 255.0, persistent=False)
        w = widths
        self.stem = nn.Sequential(conv_bn(3, w[0], 3, 2), conv_bn(w[0], w[0], 3))   # 1/2
        self.downs = nn.ModuleList(_Down(w[i], w[i + 1]) for i in range(4))          # 1/4 .. 1/32
        self.context = nn.Sequential(conv_bn(w[4], w[4], 3), nn.Dropout2d(0.1))
        self.ups = nn.ModuleList(_Up(w[i + 1], w[i], w[i]) for i in reversed(range(4)))  # 1/16 .. 1/2
        self.head = nn.Conv2d(w[0], num_classes, 1)
        self.aux_head = nn.Conv2d(w[4], num_classes, 1)

    @classmethod
    def tiny(cls, num_classes: int = 11, **kw) -> "UNetSeg":
        return cls(num_classes=num_classes, widths=(4, 4, 8, 8, 8), **kw)

    @property
    def num_classes(self) -> int:
        return self.config["num_classes"]

    def forward(self, image: torch.Tensor, with_aux: bool = False):
        """``image``: (B, 3, H, W) float RGB in 0..255. Returns logits at 1/2 of the input."""
        x = self.stem((image - self.mean) / self.std)
        skips = [x]
        for down in self.downs:
            x = down(x)
            skips.append(x)
        x = self.context(x)
        deep = x
        for up, skip in zip(self.ups, reversed(skips[:-1])):
            x = up(x, skip)
        logits = self.head(x)
        if with_aux:
            return logits, self.aux_head(deep)
        return logits
