"""``bpg-se``'s enhancement network (after JPD-SE, Duan, Chen & Gu, TIP 2022).

Input: the decoded classic picture (N, 3, H, W) in 0..255, the upsampled label map as a smooth one-hot
volume (N, K, H, W) with its presence (N, 1, H, W) (0 where no seg-map layer arrived: one network
enhances with and without semantics), and the base layer's quantiser q (N, 1). Output: the enhanced
picture in 0..255 = input + a predicted residual.

A small U-Net: pixel-unshuffle to 1/2 resolution (2x2 pixels per position), three scales (1/2, 1/4, 1/8)
with residual blocks and additive skips, pixel-shuffle back; q enters as a constant plane, normalised
to the range the network was trained on. H and W must be multiples of 8 (callers pad; see
:func:`~semcomp_core.models.blocks.pad_to`). Fixed shapes, no data-dependent control flow: ONNX-exportable.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .blocks import ResBlock
from .io import register_model


@register_model("bpg-se-enhancer")
class Enhancer(nn.Module):
    def __init__(self, num_classes: int = 11, widths: tuple = (32, 64, 96), blocks: int = 2,
                 q_range: tuple = (35, 51), class_names: list | None = None):
        super().__init__()
        self.config = dict(num_classes=num_classes, widths=list(widths), blocks=blocks, q_range=list(q_range),
                           class_names=list(class_names) if class_names else None)
        w1, w2, w3 = widths
        self.inp = nn.Conv2d(12 + num_classes + 2, w1, 3, 1, 1)
        self.e1 = ResBlock(w1)
        self.down2 = nn.Conv2d(w1, w2, 4, 2, 1)
        self.e2 = ResBlock(w2)
        self.down3 = nn.Conv2d(w2, w3, 4, 2, 1)
        self.e3 = nn.Sequential(*[ResBlock(w3) for _ in range(blocks)])
        self.up2 = nn.Conv2d(w3, w2, 3, 1, 1)
        self.d2 = ResBlock(w2)
        self.up1 = nn.Conv2d(w2, w1, 3, 1, 1)
        self.d1 = ResBlock(w1)
        self.out = nn.Conv2d(w1, 12, 3, 1, 1)
        nn.init.zeros_(self.out.weight)       # starts as the identity: the base picture unchanged
        nn.init.zeros_(self.out.bias)

    @classmethod
    def tiny(cls, num_classes: int = 11, class_names=None) -> "Enhancer":
        return cls(num_classes, widths=(4, 4, 4), blocks=1, class_names=class_names)

    @property
    def num_classes(self) -> int:
        return self.config["num_classes"]

    def forward(self, image: torch.Tensor, onehot: torch.Tensor, presence: torch.Tensor,
                q: torch.Tensor) -> torch.Tensor:
        lo, hi = self.config["q_range"]
        x = image / 127.5 - 1.0
        h, w = x.shape[-2:]
        qn = ((q.float() - (lo + hi) / 2) / max(hi - lo, 1) * 2).view(-1, 1, 1, 1)
        cond = torch.cat([onehot * presence, presence], 1)
        feats = torch.cat([F.pixel_unshuffle(x, 2), F.avg_pool2d(cond, 2),
                           qn.expand(x.shape[0], 1, h // 2, w // 2)], 1)
        s1 = self.e1(F.leaky_relu(self.inp(feats), 0.2))
        s2 = self.e2(F.leaky_relu(self.down2(s1), 0.2))
        s3 = self.e3(F.leaky_relu(self.down3(s2), 0.2))
        u2 = self.d2(F.leaky_relu(self.up2(F.interpolate(s3, scale_factor=2.0, mode="nearest")), 0.2) + s2)
        u1 = self.d1(F.leaky_relu(self.up1(F.interpolate(u2, scale_factor=2.0, mode="nearest")), 0.2) + s1)
        residual = F.pixel_shuffle(self.out(u1), 2)
        return ((x + residual).clamp(-1, 1) + 1.0) * 127.5

