"""Real-time segmentation network of the DDRNet family (Hong et al., 2021), written from scratch.

Two branches after a shared 1/8 stem: a high-resolution branch that stays at
1/8 and a low-resolution branch that goes to 1/16 and 1/32, with bilateral
fusion between them, a DAPPM context module on the low branch and a light
head at 1/8. The forward pass has no data-dependent Python control flow;
resizes take their sizes from tensor shapes (ONNX/TensorRT friendly).

``DDRNetSeg(num_classes=11, width=32)`` is the "23-slim"-like size (~5.7M
parameters); ``DDRNetSeg.tiny()`` builds a width-4 model for tests in
milliseconds. ``input_scale`` lets the encoder run on a downscaled frame
(e.g. 0.5): the seg-map layer only needs a 1/8-scale map anyway.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .io import register_model


def conv_bn(cin, cout, k=3, s=1, relu=True):
    layers = [nn.Conv2d(cin, cout, k, s, k // 2, bias=False), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride=1, last_relu=True):
        super().__init__()
        self.c1 = conv_bn(cin, cout, 3, stride)
        self.c2 = conv_bn(cout, cout, 3, 1, relu=False)
        self.down = conv_bn(cin, cout, 1, stride, relu=False) if (stride != 1 or cin != cout) else nn.Identity()
        self.last_relu = last_relu

    def forward(self, x):
        out = self.c2(self.c1(x)) + self.down(x)
        return F.relu(out) if self.last_relu else out


class Bottleneck(nn.Module):
    expansion = 2

    def __init__(self, cin, planes, stride=1):
        super().__init__()
        cout = planes * self.expansion
        self.body = nn.Sequential(conv_bn(cin, planes, 1), conv_bn(planes, planes, 3, stride),
                                  conv_bn(planes, cout, 1, relu=False))
        self.down = conv_bn(cin, cout, 1, stride, relu=False) if (stride != 1 or cin != cout) else nn.Identity()

    def forward(self, x):
        return F.relu(self.body(x) + self.down(x))


def _stage(cin, cout, n, stride=1):
    blocks = [BasicBlock(cin, cout, stride)]
    blocks += [BasicBlock(cout, cout, 1, last_relu=(i < n - 2)) for i in range(n - 1)]
    return nn.Sequential(*blocks)


def _up(x, like):
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


class DAPPM(nn.Module):
    """Deep aggregation pyramid pooling (pool sizes via avg-pool kernels, not adaptive pooling)."""

    def __init__(self, cin, mid, cout):
        super().__init__()
        def bn_relu_conv(ci, co, k=1):
            return nn.Sequential(nn.BatchNorm2d(ci), nn.ReLU(inplace=True), nn.Conv2d(ci, co, k, 1, k // 2, bias=False))
        self.scale0 = bn_relu_conv(cin, mid)
        self.pools = nn.ModuleList([nn.AvgPool2d(5, 2, 2), nn.AvgPool2d(9, 4, 4), nn.AvgPool2d(17, 8, 8)])
        self.scales = nn.ModuleList([bn_relu_conv(cin, mid) for _ in range(4)])
        self.process = nn.ModuleList([bn_relu_conv(mid, mid, 3) for _ in range(4)])
        self.compress = bn_relu_conv(mid * 5, cout)
        self.shortcut = bn_relu_conv(cin, cout)

    def forward(self, x):
        feats = [self.scale0(x)]
        for i in range(4):
            pooled = self.pools[i](x) if i < 3 else x.mean(dim=(2, 3), keepdim=True)
            feats.append(self.process[i](_up(self.scales[i](pooled), x) + feats[-1]))
        return self.compress(torch.cat(feats, 1)) + self.shortcut(x)


class SegHead(nn.Module):
    def __init__(self, cin, mid, num_classes):
        super().__init__()
        self.body = nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU(inplace=True), nn.Conv2d(cin, mid, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(mid), nn.ReLU(inplace=True), nn.Conv2d(mid, num_classes, 1))

    def forward(self, x):
        return self.body(x)


@register_model("ddrnet-seg")
class DDRNetSeg(nn.Module):
    def __init__(self, num_classes: int = 11, width: int = 32, head_width: int = 64, spp_width: int = 128,
                 input_scale: float = 1.0, class_names: list[str] | None = None,
                 mean: tuple[float, float, float] = (0.485, 0.456, 0.406),
                 std: tuple[float, float, float] = (0.229, 0.224, 0.225)) -> None:
        super().__init__()
        self.config = dict(num_classes=num_classes, width=width, head_width=head_width, spp_width=spp_width,
                           input_scale=input_scale, class_names=class_names, mean=list(mean), std=list(std))
        w = width
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1) * 255.0, persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1) * 255.0, persistent=False)
        self.stem = nn.Sequential(conv_bn(3, w, 3, 2), conv_bn(w, w, 3, 2))          # 1/4
        self.layer1 = _stage(w, w, 2)
        self.layer2 = _stage(w, 2 * w, 2, 2)                                           # 1/8
        self.layer3 = _stage(2 * w, 4 * w, 2, 2)                                       # 1/16
        self.layer3_ = _stage(2 * w, 2 * w, 2)                                         # 1/8 high branch
        self.layer4 = _stage(4 * w, 8 * w, 2, 2)                                       # 1/32
        self.layer4_ = _stage(2 * w, 2 * w, 2)
        self.layer5_ = Bottleneck(2 * w, 2 * w)                                        # -> 4w at 1/8
        self.layer5 = Bottleneck(8 * w, 8 * w, 2)                                      # -> 16w at 1/64
        self.down3 = conv_bn(2 * w, 4 * w, 3, 2, relu=False)
        self.down4 = nn.Sequential(conv_bn(2 * w, 4 * w, 3, 2), conv_bn(4 * w, 8 * w, 3, 2, relu=False))
        self.compress3 = conv_bn(4 * w, 2 * w, 1, relu=False)
        self.compress4 = conv_bn(8 * w, 2 * w, 1, relu=False)
        self.spp = DAPPM(16 * w, spp_width, 4 * w)
        self.head = SegHead(4 * w, head_width, num_classes)
        self.aux_head = SegHead(2 * w, head_width, num_classes)

    @classmethod
    def tiny(cls, num_classes: int = 11, **kw) -> "DDRNetSeg":
        return cls(num_classes=num_classes, width=4, head_width=8, spp_width=8, **kw)

    @property
    def num_classes(self) -> int:
        return self.config["num_classes"]

    def features(self, x):
        x = self.layer1(self.stem(x))
        x = self.layer2(F.relu(x))
        low = self.layer3(F.relu(x))
        high = self.layer3_(F.relu(x))
        low, high = low + self.down3(F.relu(high)), high + _up(self.compress3(F.relu(low)), high)
        aux_in = high
        low = self.layer4(F.relu(low))
        high = self.layer4_(F.relu(high))
        low, high = low + self.down4(F.relu(high)), high + _up(self.compress4(F.relu(low)), high)
        high = self.layer5_(F.relu(high))
        low = _up(self.spp(self.layer5(F.relu(low))), high)
        return high + low, aux_in

    def forward(self, image: torch.Tensor, with_aux: bool = False):
        """``image``: (B, 3, H, W) float RGB in 0..255. Returns logits at 1/8 of the (scaled) input."""
        x = (image - self.mean) / self.std
        feat, aux_in = self.features(x)
        logits = self.head(feat)
        if with_aux:
            return logits, self.aux_head(aux_in)
        return logits
