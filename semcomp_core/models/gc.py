"""``gc``'s networks: generative compression without semantics (after Agustsson et al., ICCV 2019).

* :class:`GcEncoder` -- frame (N, 3, H, W) in 0..255 -> latent (N, C, ceil(H/16), ceil(W/16)), a
  plain conv stack (pixel-unshuffle, three stride-2 stages, residual blocks).
* :class:`GcDecoder` -- quantised latent + the channel-presence mask -> frame in -1..1: residual
  blocks at 1/16, four upsampling stages, pixel-shuffle output. No noise input: decoding is
  deterministic.
* the **learned prior** (trained in the decoder, copied into the encoder's buffers when saved: both
  sides code with it, and the latent layer's model tag checks that they agree): one discretised Gaussian per latent channel (mean, scale), factorised over
  positions. Its parameters live in the model and are exported to the coder as float64 constants,
  so the entropy decoder's model is bit-identical on every machine (a hyperprior would compute
  scales with a network on the receiver, where float differences across platforms can desynchronise
  the range decoder). The coder is constriction's range coder (``layers.latent``).

Channel scalability: the latent's channels are ordered by training (nested channel dropout: each
training sample keeps the first k channels), so a quality level is the number of channels sent and one
network covers every rate. The decoder receives the presence mask so it knows which zeros are absent.

Both networks take fixed-shape tensors and have no data-dependent control flow (ONNX-exportable);
the frame is padded to a multiple of 16 (replicate) and the output cropped by the caller.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .blocks import ResBlock
from .io import register_model

#: latent stride
FACTOR = 16
#: smallest scale of the prior (layers.latent rounds the coding scales to 1e-4 and keeps them above it)
SCALE_FLOOR = 0.11


@register_model("gc-encoder")
class GcEncoder(nn.Module):
    def __init__(self, latent_channels: int = 12, widths: tuple = (48, 64, 96, 128), blocks: int = 2,
                 gain: float = 8.0):
        super().__init__()
        self.config = dict(latent_channels=latent_channels, widths=list(widths), blocks=blocks, gain=gain)
        w = list(widths)
        layers = [nn.PixelUnshuffle(2), nn.Conv2d(12, w[0], 3, 1, 1), nn.LeakyReLU(0.2)]
        for a, b in zip(w[:-1], w[1:]):
            layers += [nn.Conv2d(a, b, 4, 2, 1), nn.LeakyReLU(0.2)]
        layers += [ResBlock(w[-1]) for _ in range(blocks)]
        layers += [nn.Conv2d(w[-1], latent_channels, 3, 1, 1)]
        self.net = nn.Sequential(*layers)
        # a copy of the decoder's learned prior (the sender codes with it; trained in the decoder, copied
        # in when the models are saved): buffers, not parameters
        self.register_buffer("prior_mean", torch.zeros(latent_channels))
        self.register_buffer("prior_log_scale", torch.zeros(latent_channels))

    @property
    def latent_channels(self) -> int:
        return self.config["latent_channels"]

    def prior(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The prior's per-channel (mean, scale), as :meth:`GcDecoder.prior`."""
        return self.prior_mean, F.softplus(self.prior_log_scale) + SCALE_FLOOR

    def copy_prior(self, decoder: "GcDecoder") -> None:
        with torch.no_grad():
            self.prior_mean.copy_(decoder.prior_mean)
            self.prior_log_scale.copy_(decoder.prior_log_scale)

    @classmethod
    def tiny(cls) -> "GcEncoder":
        return cls(latent_channels=4, widths=(4, 4, 4, 4), blocks=1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """image (N, 3, H, W) in 0..255, H and W multiples of 16 -> latent (N, C, H/16, W/16). A fixed
        ``gain`` puts the young latent well above the quantisation step (else the rate term collapses it
        to zero before the decoder learns to use it)."""
        return self.net(image / 127.5 - 1.0) * self.config["gain"]


@register_model("gc-decoder")
class GcDecoder(nn.Module):
    def __init__(self, latent_channels: int = 12, widths: tuple = (128, 96, 64, 48), blocks: int = 3):
        super().__init__()
        self.config = dict(latent_channels=latent_channels, widths=list(widths), blocks=blocks)
        w = list(widths)
        c = latent_channels
        # the learned factorised prior: per-channel mean and log-scale of a discretised Gaussian
        self.prior_mean = nn.Parameter(torch.zeros(c))
        self.prior_log_scale = nn.Parameter(torch.zeros(c))
        self.head = nn.Conv2d(2 * c, w[0], 3, 1, 1)
        self.body = nn.Sequential(*[ResBlock(w[0]) for _ in range(blocks)])
        ups = []
        for a, b in zip(w[:-1], w[1:]):
            ups += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(a, b, 3, 1, 1), nn.LeakyReLU(0.2),
                    ResBlock(b)]
        self.up = nn.Sequential(*ups)
        # the last stage works at 1/2 and writes 2x2 pixels per position (pixel shuffle)
        self.out = nn.Sequential(nn.Conv2d(w[-1], 12, 3, 1, 1), nn.PixelShuffle(2))

    @classmethod
    def tiny(cls) -> "GcDecoder":
        return cls(latent_channels=4, widths=(4, 4, 4, 4), blocks=1)

    @property
    def latent_channels(self) -> int:
        return self.config["latent_channels"]

    def forward(self, latent: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """latent (N, C, h, w) dequantised (absent channels zero), present (N, C, h, w) 0/1 -> (N, 3, 16h, 16w)
        in -1..1."""
        x = self.head(torch.cat([latent * present, present], 1))
        return torch.tanh(self.out(self.up(self.body(x))))

    def prior(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel (mean, scale) of the discretised Gaussian prior; scale >= SCALE_FLOOR."""
        return self.prior_mean, F.softplus(self.prior_log_scale) + SCALE_FLOOR


def channel_mask(shape, keep: torch.Tensor) -> torch.Tensor:
    """(N, C, h, w) presence mask keeping the first ``keep[n]`` channels of sample n."""
    n, c, h, w = shape
    idx = torch.arange(c, device=keep.device).view(1, c, 1, 1)
    return (idx < keep.view(n, 1, 1, 1)).float().expand(n, c, h, w)


def rate_bits(latent_noisy: torch.Tensor, mean: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """-log2 of the discretised Gaussian mass of each (noisy) latent value, (N, C, h, w)."""
    m, s = mean.view(1, -1, 1, 1), scale.view(1, -1, 1, 1)
    v = latent_noisy - m
    upper = 0.5 * torch.erfc(-(v + 0.5) / (s * math.sqrt(2)))
    lower = 0.5 * torch.erfc(-(v - 0.5) / (s * math.sqrt(2)))
    return -torch.log2((upper - lower).clamp_min(1e-9))


def quantise(latent: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """Integer symbols round(latent - mean) (what is coded)."""
    return torch.round(latent - mean.view(1, -1, 1, 1))
