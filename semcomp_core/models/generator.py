"""SPADE-style conditional generator: label map + colour map -> RGB frame.

Conditioning ("semantic + colour" map): the one-hot label map (K channels,
upsampled with smooth contours, see ``codecs.semantic.conditioning``) concatenated
with the decoded colour thumbnail (3 channels,
bicubic-upsampled, scaled to -1..1). The network starts at 1/8 of the output
from that map, then runs one SPADE residual block per level while doubling the
resolution three times (1/8 -> 1/1). Every normalisation is
InstanceNorm2d(affine=False) modulated by per-pixel gamma/beta predicted from
the conditioning map resized (nearest) to the feature size.

Output size: the caller pads H, W to multiples of 8; the forward pass has no
data-dependent Python control flow, interpolation sizes come from tensor
shapes, scale factors are powers of two (ONNX/TensorRT friendly). With
``color_skip`` (default) the output is tanh(residual + atanh(colour map)):
the network starts from the upsampled colour map and learns the detail. Optional
noise is drawn from a seeded generator by the codec, so decoding is
deterministic for a given seed. Spectral norm is not used in the generator;
``remove_spectral_norm`` is provided for models trained with it.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .io import register_model

#: optional conditioning layers a generator may be built for: name -> input channels (each layer also
#: brings one presence channel: 0 where the layer says nothing, up to 1 where it holds). Fixed order.
OPTIONAL_LAYERS = {"roi": 3, "structure": 1}


def optional_channels(names) -> int:
    """Conditioning channels of the optional layers ``names`` (their channels plus one presence each)."""
    unknown = [n for n in names or () if n not in OPTIONAL_LAYERS]
    if unknown:
        raise ValueError(f"unknown optional layer(s) {unknown} (known: {sorted(OPTIONAL_LAYERS)})")
    return sum(OPTIONAL_LAYERS[n] + 1 for n in names or ())


class SPADE(nn.Module):
    """InstanceNorm modulated by per-pixel gamma/beta (1x1 convs over shared hidden conditioning features)."""

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels, affine=False)
        self.gamma = nn.Conv2d(hidden, channels, 1)
        self.beta = nn.Conv2d(hidden, channels, 1)

    def forward(self, x, h):
        return self.norm(x) * (1 + self.gamma(h)) + self.beta(h)


class SPADEResBlock(nn.Module):
    """SPADE residual block; the conditioning map is embedded once per block (3x3 conv) and shared
    by its two normalisations, which keeps the block cheap enough for 2-core CPUs and Jetsons."""

    def __init__(self, cin: int, cout: int, cond_channels: int, hidden: int):
        super().__init__()
        mid = min(cin, cout)
        self.embed = nn.Sequential(nn.Conv2d(cond_channels, hidden, 3, padding=1), nn.ReLU(inplace=True))
        self.norm0 = SPADE(cin, hidden)
        self.conv0 = nn.Conv2d(cin, mid, 3, padding=1)
        self.norm1 = SPADE(mid, hidden)
        self.conv1 = nn.Conv2d(mid, cout, 3, padding=1)
        self.shortcut = nn.Conv2d(cin, cout, 1, bias=False) if cin != cout else nn.Identity()

    def forward(self, x, cond):
        h = self.embed(F.interpolate(cond, size=x.shape[-2:], mode="nearest"))
        dx = self.conv0(F.leaky_relu(self.norm0(x, h), 0.2))
        dx = self.conv1(F.leaky_relu(self.norm1(dx, h), 0.2))
        return self.shortcut(x) + dx


@register_model("spade-generator")
class SPADEGenerator(nn.Module):
    """``channels``: feature widths at 1/8, 1/4, 1/2, 1/1; ``hidden``: SPADE hidden widths per level."""

    def __init__(self, num_classes: int = 11, channels: tuple[int, ...] = (96, 48, 24, 12),
                 hidden: tuple[int, ...] = (48, 32, 16, 12), noise_channels: int = 8,
                 color_skip: bool = True, class_names: list[str] | None = None,
                 optional_layers: list[str] | None = None) -> None:
        super().__init__()
        if len(channels) != 4 or len(hidden) != 4:
            raise ValueError("channels and hidden need one entry per level (1/8, 1/4, 1/2, 1/1)")
        optional_channels(optional_layers)          # ValueError for an unknown layer
        optional_layers = [n for n in OPTIONAL_LAYERS if n in (optional_layers or ())]
        self.config = dict(num_classes=num_classes, channels=list(channels), hidden=list(hidden),
                           noise_channels=noise_channels, color_skip=color_skip, class_names=class_names)
        if optional_layers:       # absent from older configs: they load unchanged
            self.config["optional_layers"] = optional_layers
        self.optional_layers = optional_layers
        self.layer_channels = optional_channels(optional_layers)
        self.color_skip = color_skip
        cond = num_classes + 3 + self.layer_channels
        self.noise_channels = noise_channels
        self.head = nn.Conv2d(cond + noise_channels, channels[0], 3, padding=1)
        self.block0 = SPADEResBlock(channels[0], channels[0], cond, hidden[0])
        self.blocks = nn.ModuleList(
            SPADEResBlock(channels[i - 1], channels[i], cond, hidden[i]) for i in range(1, 4))
        self.to_rgb = nn.Conv2d(channels[3], 3, 3, padding=1)
        if color_skip:  # start as "the upsampled colour map", learn the residual detail
            with torch.no_grad():
                self.to_rgb.weight.mul_(0.1)
                self.to_rgb.bias.zero_()

    @classmethod
    def tiny(cls, num_classes: int = 11, **kw) -> "SPADEGenerator":
        return cls(num_classes=num_classes, channels=(8, 8, 4, 4), hidden=(4, 4, 4, 4), noise_channels=2, **kw)

    @property
    def num_classes(self) -> int:
        return self.config["num_classes"]

    def layer_offset(self, name: str) -> int:
        """First channel of optional layer ``name`` in the ``layers`` input (its presence follows its channels)."""
        return optional_channels(self.optional_layers[:self.optional_layers.index(name)])

    def forward(self, onehot: torch.Tensor, color: torch.Tensor, noise: torch.Tensor | None = None,
                layers: torch.Tensor | None = None):
        """``onehot`` (B,K,H,W) and ``color`` (B,3,H,W) in -1..1 at output size (H, W multiples of 8);
        ``noise`` (B,noise_channels,H/8,W/8) or None (zeros); ``layers`` (B,layer_channels,H,W): the
        optional layers in :data:`OPTIONAL_LAYERS` order, each its channels then its presence (None: all
        absent; ignored by a generator built without optional layers). Returns RGB in -1..1."""
        parts = [onehot, color]
        if self.layer_channels:
            if layers is None:
                layers = onehot.new_zeros(onehot.shape[0], self.layer_channels, onehot.shape[2], onehot.shape[3])
            parts.append(layers)
        cond = torch.cat(parts, 1)
        base = F.avg_pool2d(cond, 8)
        if noise is None:
            noise = base.new_zeros(base.shape[0], self.noise_channels, base.shape[2], base.shape[3])
        x = self.head(torch.cat([base, noise], 1))
        x = self.block0(x, cond)
        for blk in self.blocks:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            x = blk(x, cond)
        out = self.to_rgb(F.leaky_relu(x, 0.2))
        if self.color_skip:
            c = color.clamp(-0.98, 0.98)
            out = out + 0.5 * torch.log((1 + c) / (1 - c))  # atanh, written with ops every exporter knows
        return torch.tanh(out)


def with_optional_layers(gen: SPADEGenerator, names: list[str]) -> SPADEGenerator:
    """A copy of ``gen`` that also takes the optional layers ``names``: the weights are kept, the new
    conditioning channels start at zero, so it renders exactly as ``gen`` until trained with them."""
    cfg = {k: v for k, v in gen.config.items()}
    cfg["optional_layers"] = sorted(set(gen.optional_layers) | set(names), key=list(OPTIONAL_LAYERS).index)
    new = SPADEGenerator(**cfg)
    old_k = gen.num_classes + 3
    keep = {n: i for i, n in enumerate(gen.optional_layers)}
    state = {}
    own = new.state_dict()
    for key, value in gen.state_dict().items():
        target = own[key]
        if target.shape == value.shape:
            state[key] = value
            continue
        grown = torch.zeros_like(target)       # an input-channel-widened conv: old channels in place
        grown[:, :old_k] = value[:, :old_k]
        src, dst = old_k, old_k
        for name in new.optional_layers:
            width = OPTIONAL_LAYERS[name] + 1
            if name in keep:
                grown[:, dst:dst + width] = value[:, src:src + width]
                src += width
            dst += width
        grown[:, dst:] = value[:, src:]        # what follows the conditioning (the head's noise channels)
        state[key] = grown
    new.load_state_dict(state)
    return new


def remove_spectral_norm(module: nn.Module) -> nn.Module:
    """Strip spectral-norm parametrisations/hooks (for inference and export)."""
    from torch.nn.utils import parametrize

    for m in module.modules():
        if parametrize.is_parametrized(m, "weight"):
            parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)
        elif hasattr(m, "weight_orig"):
            torch.nn.utils.remove_spectral_norm(m)
    return module
