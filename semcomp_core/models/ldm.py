"""The diffusion renderer's networks, built on diffusers: a small KL autoencoder and a conditional UNet.

* ``ldm-vae`` (:class:`LatentVae`): ``diffusers.AutoencoderKL`` with downsampling 4 (three blocks, no
  mid-block attention: a 120x90 latent of a 480x360 frame would make a 10k-token attention), trained
  from scratch (``semcomp train vae``). ``scaling_factor`` is measured on its own latents at the end of
  training (1 / std), not Stable Diffusion's 0.18215.
* ``ldm-unet`` (:class:`LatentUnet`): ``diffusers.UNet2DConditionModel`` over the scaled latent with the
  semantic layers concatenated as channels (SSGC/CDC-style concatenation, one mechanism with the GAN's
  optional-layer conditioning): the seg map as per-cell class fractions at latent resolution plus its
  presence, the colour map (-1..1) plus its presence, then the optional layers of
  :data:`models.generator.OPTIONAL_LAYERS` (channels + presence each). A global embedding (the CLIP
  layer) conditions the lower levels by cross-attention: it is projected to ``tokens`` tokens; absent,
  the embedding is zero and its presence flag 0 (the model is trained with layer dropout, so one UNet
  renders seg-map containers, CLIP containers and both).

Both keep the registry contract: constructor arguments are the config, weights are safetensors, and
``tiny()`` builds in milliseconds for tests.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .generator import OPTIONAL_LAYERS, optional_channels
from .io import register_model

#: latent downsampling factor of the VAE (three encoder blocks)
VAE_FACTOR = 4


@register_model("ldm-vae")
class LatentVae(nn.Module):
    """diffusers ``AutoencoderKL`` (f=4). ``encode`` returns the *scaled* latent mean (what the UNet sees),
    ``decode`` takes a scaled latent and returns RGB in -1..1; H, W multiples of 4."""

    def __init__(self, channels: tuple[int, ...] = (32, 64, 96), latent_channels: int = 4, layers_per_block: int = 1,
                 norm_groups: int = 16, scaling_factor: float = 1.0) -> None:
        super().__init__()
        from diffusers import AutoencoderKL

        if len(channels) != 3:
            raise ValueError("the f=4 VAE has three blocks: give three channel widths")
        self.config = dict(channels=list(channels), latent_channels=latent_channels,
                           layers_per_block=layers_per_block, norm_groups=norm_groups,
                           scaling_factor=float(scaling_factor))
        self.vae = AutoencoderKL(
            in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 3,
            up_block_types=("UpDecoderBlock2D",) * 3, block_out_channels=tuple(channels),
            layers_per_block=layers_per_block, latent_channels=latent_channels, norm_num_groups=norm_groups,
            sample_size=128, scaling_factor=float(scaling_factor), mid_block_add_attention=False)

    @classmethod
    def tiny(cls, **kw) -> "LatentVae":
        return cls(channels=(8, 8, 8), latent_channels=4, layers_per_block=1, norm_groups=4, **kw)

    @property
    def latent_channels(self) -> int:
        return self.config["latent_channels"]

    @property
    def scaling_factor(self) -> float:
        return self.config["scaling_factor"]

    def set_scaling_factor(self, value: float) -> None:
        self.config["scaling_factor"] = float(value)
        self.vae.register_to_config(scaling_factor=float(value))

    def posterior(self, image: torch.Tensor):
        """The diagonal-Gaussian posterior of ``image`` (B,3,H,W) in -1..1 (unscaled latent)."""
        return self.vae.encode(image).latent_dist

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        """Scaled posterior mean (B,C,H/4,W/4) of ``image`` in -1..1."""
        return self.posterior(image).mean * self.scaling_factor

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """RGB (B,3,4h,4w) in -1..1 (not clamped) of a scaled latent."""
        return self.vae.decode(latent / self.scaling_factor).sample

    def forward(self, latent: torch.Tensor) -> torch.Tensor:      # the exported part: the decoder
        return self.decode(latent)


def cond_channels(num_classes: int, optional_layers=()) -> int:
    """Conditioning channels of a :class:`LatentUnet`: class fractions + presence, colour + presence, the
    optional layers (channels + presence each)."""
    return num_classes + 1 + 3 + 1 + optional_channels(optional_layers)


@register_model("ldm-unet")
class LatentUnet(nn.Module):
    """diffusers ``UNet2DConditionModel`` predicting ``prediction_type`` (v by default) from the noisy
    scaled latent, the timestep, the concatenated semantic conditioning (:func:`cond_channels`) and an
    optional global embedding (``embed_dim`` > 0: cross-attention on ``tokens`` projected tokens in the
    levels listed by ``attention_levels``).

    The diffusion schedule travels in the config (``schedule``: DDPMScheduler arguments) so the renderer
    samples with exactly the process the UNet was trained on; ``max_strength``: the highest SDEdit
    strength (share of T) it was trained for."""

    def __init__(self, num_classes: int = 11, latent_channels: int = 4, channels: tuple[int, ...] = (64, 128, 192),
                 layers_per_block: int = 1, attention_levels: tuple[int, ...] = (2,), embed_dim: int = 0,
                 tokens: int = 4, cross_dim: int = 128, head_dim: int = 32, norm_groups: int = 16,
                 prediction_type: str = "v_prediction", schedule: dict | None = None, max_strength: float = 1.0,
                 class_names: list[str] | None = None, optional_layers: list[str] | None = None) -> None:
        super().__init__()
        from diffusers import UNet2DConditionModel

        optional_channels(optional_layers)
        optional_layers = [n for n in OPTIONAL_LAYERS if n in (optional_layers or ())]
        schedule = dict(schedule or {"num_train_timesteps": 1000, "beta_schedule": "scaled_linear",
                                     "beta_start": 0.00085, "beta_end": 0.012})
        self.config = dict(num_classes=num_classes, latent_channels=latent_channels, channels=list(channels),
                           layers_per_block=layers_per_block, attention_levels=list(attention_levels),
                           embed_dim=embed_dim, tokens=tokens, cross_dim=cross_dim, head_dim=head_dim,
                           norm_groups=norm_groups, prediction_type=prediction_type, schedule=schedule,
                           max_strength=float(max_strength), class_names=class_names, optional_layers=optional_layers)
        self.optional_layers = optional_layers
        self.cond_channels = cond_channels(num_classes, optional_layers)
        n = len(channels)
        att = set(attention_levels)
        down = tuple("CrossAttnDownBlock2D" if i in att else "DownBlock2D" for i in range(n))
        up = tuple("CrossAttnUpBlock2D" if (n - 1 - i) in att else "UpBlock2D" for i in range(n))
        self.unet = UNet2DConditionModel(
            sample_size=32, in_channels=latent_channels + self.cond_channels, out_channels=latent_channels,
            down_block_types=down, up_block_types=up, block_out_channels=tuple(channels),
            # diffusers reads attention_head_dim as the number of heads (its documented naming issue): heads of
            # head_dim channels each
            layers_per_block=layers_per_block, cross_attention_dim=cross_dim,
            attention_head_dim=tuple(max(1, c // head_dim) for c in channels),
            norm_num_groups=norm_groups, mid_block_type="UNetMidBlock2DCrossAttn" if att else None)
        # the global embedding (+ its presence) -> tokens for cross-attention; a constant token set when absent
        self.to_tokens = nn.Linear(embed_dim + 1, tokens * cross_dim)

    @classmethod
    def tiny(cls, num_classes: int = 11, **kw) -> "LatentUnet":
        kw.setdefault("embed_dim", 0)
        return cls(num_classes=num_classes, latent_channels=4, channels=(8, 16), layers_per_block=1,
                   attention_levels=(1,), tokens=2, cross_dim=8, head_dim=4, norm_groups=4, **kw)

    @property
    def num_classes(self) -> int:
        return self.config["num_classes"]

    @property
    def embed_dim(self) -> int:
        return self.config["embed_dim"]

    def tokens(self, embed: torch.Tensor | None, presence: torch.Tensor, batch: int) -> torch.Tensor:
        """Cross-attention tokens (B, tokens, cross_dim) of a global embedding (B, embed_dim) with its
        presence (B, 1) (embedding zeroed where absent)."""
        if self.embed_dim:
            if embed is None:
                embed = presence.new_zeros(batch, self.embed_dim)
            x = torch.cat([embed * presence, presence], 1)
        else:
            x = presence
        return self.to_tokens(x).view(batch, self.config["tokens"], self.config["cross_dim"])

    @property
    def multiple(self) -> int:
        """Latent sides must be multiples of this (the UNet halves them ``levels - 1`` times)."""
        return 2 ** (len(self.config["channels"]) - 1)

    def forward(self, latent: torch.Tensor, t: torch.Tensor, cond: torch.Tensor,
                embed: torch.Tensor, embed_presence: torch.Tensor) -> torch.Tensor:
        """``latent`` (B,C,h,w) noisy scaled latent (h, w multiples of :attr:`multiple`), ``t`` timesteps (B,)
        or (B,1,1,1), ``cond`` (B, cond_channels, h, w), ``embed`` (B, max(1, embed_dim)[,1,1]) and
        ``embed_presence`` (B, 1[,1,1]) (4-D forms: what the inference backends feed).
        Returns the model output (v, epsilon or x0 per ``prediction_type``)."""
        b = latent.shape[0]
        t = t.reshape(b)
        embed, embed_presence = embed.reshape(b, -1), embed_presence.reshape(b, 1)
        tok = self.tokens(embed if self.embed_dim else None, embed_presence, b)
        return self.unet(torch.cat([latent, cond], 1), t, encoder_hidden_states=tok).sample


class VaeEncoder(nn.Module):
    """The encoding half of a :class:`LatentVae` as its own module (the ``vae-encoder`` network kind):
    image (B,3,H,W) in -1..1 -> scaled latent mean."""

    def __init__(self, vae: LatentVae) -> None:
        super().__init__()
        self.vae = vae
        self.config = vae.config
        self.registry_name = vae.registry_name

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.vae.encode(image)


def latent_conditioning(onehot: torch.Tensor | None, color: torch.Tensor | None, layers: torch.Tensor | None,
                        num_classes: int, optional_layers, factor: int = VAE_FACTOR) -> torch.Tensor:
    """The UNet's ``cond`` input from full-resolution conditioning (the GAN's: one-hot map (B,K,H,W),
    colour map (B,3,H,W) in -1..1, optional-layer input) pooled to the latent grid (average over
    ``factor`` x ``factor`` cells: class fractions). ``None`` = that layer is absent (zeros, presence 0).
    H, W must be multiples of ``factor``."""
    ref = next(x for x in (onehot, color, layers) if x is not None)
    b, h, w = ref.shape[0], ref.shape[2] // factor, ref.shape[3] // factor
    parts = []
    if onehot is None:
        parts += [ref.new_zeros(b, num_classes + 1, h, w)]
    else:
        parts += [F.avg_pool2d(onehot, factor), ref.new_ones(b, 1, h, w)]
    if color is None:
        parts += [ref.new_zeros(b, 4, h, w)]
    else:
        parts += [F.avg_pool2d(color, factor), ref.new_ones(b, 1, h, w)]
    want = optional_channels(optional_layers)
    if want:
        if layers is None or layers.shape[1] != want:
            parts.append(ref.new_zeros(b, want, h, w))
        else:
            parts.append(F.avg_pool2d(layers, factor))
    return torch.cat(parts, 1)
