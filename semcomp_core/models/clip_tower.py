"""``clip-tower``: an open_clip image tower and the product quantiser of its embedding (the CLIP layer).

The tower is built with ``open_clip.create_model(model_name, pretrained=...)``: a real architecture
name with a pretrained tag (``ViT-B-32`` + ``laion2b_s34b_b79k``), a local checkpoint path as
``pretrained``, or ``local-dir:/folder`` work for users who have the weights; ``model_kwargs``
override the architecture (tests and the shipped model build a small ViT from it). Only the image
tower is kept (the text tower is dropped after creation). The embedding is L2-normalised and scaled
by sqrt(dim) (unit variance per component).

Quantisation (what crosses the link): product quantisation of the embedding -- for a size of B
bytes the embedding is split into B sub-vectors of dim/B components, each coded as one byte (index
into a 256-entry codebook). Codebooks for every size in ``pq_bytes`` are buffers of the model, fitted
by k-means on training embeddings (``fit_pq``), so sender and receiver share them with the weights.
"""
from __future__ import annotations

import logging

import torch
import torch.nn as nn
import torch.nn.functional as F

from .io import register_model

#: sizes (bytes) of the quantised embedding a tower can send, by default
PQ_BYTES = (32, 64, 128)
CODEBOOK = 256
#: normalisation of open_clip's ViTs (OpenAI CLIP statistics)
MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)


class _NoRandomInitNote(logging.Filter):
    """open_clip notes 'No pretrained weights loaded' for every tower built without ``pretrained``: expected here
    (our own weights are loaded next, or a tower is trained from scratch)."""

    def filter(self, record):
        return "No pretrained weights loaded" not in record.getMessage()


def _build(model_name: str, pretrained: str | None, model_kwargs: dict | None):
    import open_clip

    kw = {k: v for k, v in (model_kwargs or {}).items()}
    quiet = _NoRandomInitNote()
    logging.getLogger().addFilter(quiet)
    try:
        model = open_clip.create_model(model_name, pretrained=pretrained, **kw)
    finally:
        logging.getLogger().removeFilter(quiet)
    return model.visual, int(model.visual.output_dim) if hasattr(model.visual, "output_dim") else None


@register_model("clip-tower")
class ClipTower(nn.Module):
    """open_clip image tower + product quantisers. ``image_size``: the tower's input side; frames are
    resized (squashed) to it. ``forward(image)``: image (B,3,H,W) 0..255 -> embedding (B, dim)."""

    def __init__(self, model_name: str = "ViT-B-32", pretrained: str | None = None,
                 model_kwargs: dict | None = None, image_size: int = 224, embed_dim: int = 512,
                 pq_bytes: tuple[int, ...] = PQ_BYTES) -> None:
        super().__init__()
        self.config = dict(model_name=model_name, pretrained=pretrained, model_kwargs=model_kwargs,
                           image_size=image_size, embed_dim=embed_dim, pq_bytes=list(pq_bytes))
        self.visual, _ = _build(model_name, pretrained, model_kwargs)
        for b in pq_bytes:
            if b <= 0 or embed_dim % b:
                raise ValueError(f"embedding of {embed_dim} components cannot be split into {b} byte sub-vectors")
            self.register_buffer(f"pq{b}", torch.zeros(b, CODEBOOK, embed_dim // b))
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1) * 255)
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1) * 255)

    @classmethod
    def tiny(cls, **kw) -> "ClipTower":
        """A small ViT from open_clip's own config path (builds in milliseconds)."""
        return cls(model_name="ViT-B-32", pretrained=None, model_kwargs=tiny_kwargs(16, 16), image_size=32,
                   embed_dim=16, pq_bytes=(4, 8, 16), **kw)

    @property
    def embed_dim(self) -> int:
        return self.config["embed_dim"]

    @property
    def pq_bytes(self) -> tuple[int, ...]:
        return tuple(self.config["pq_bytes"])

    def prepare(self, image: torch.Tensor) -> torch.Tensor:
        """Frames (B,3,H,W) 0..255 resized (squashed, antialiased bilinear) to the tower's input side."""
        s = self.config["image_size"]
        if tuple(image.shape[-2:]) == (s, s):
            return image.float()
        return F.interpolate(image.float(), size=(s, s), mode="bilinear", align_corners=False, antialias=True)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Embedding (B, dim) of frames (B,3,H,W) 0..255 (resized by :meth:`prepare` unless already at the
        input side: the exported network takes image_size x image_size frames)."""
        x = self.prepare(image)
        e = self.visual((x - self.mean) / self.std)
        return F.normalize(e.float(), dim=-1) * self.embed_dim ** 0.5

    def codebook(self, nbytes: int) -> torch.Tensor:
        if nbytes not in self.pq_bytes:
            raise ValueError(f"no {nbytes}-byte quantiser (this tower has {list(self.pq_bytes)})")
        return getattr(self, f"pq{nbytes}")

    def quantiser_tags(self) -> dict[int, int]:
        """{size in bytes: 16-bit tag of that size's codebooks} (``layers.clip.quantiser_tag``), computed once
        per loaded tower (the codebooks are fixed after loading; :meth:`fit_pq` clears the cache)."""
        if getattr(self, "_tags", None) is None:
            from ..layers.clip import quantiser_tag

            self._tags = {b: quantiser_tag(self.codebook(b).detach().cpu().numpy()) for b in self.pq_bytes}
        return self._tags

    def quantise(self, embed: torch.Tensor, nbytes: int) -> torch.Tensor:
        """(B, dim) -> (B, nbytes) uint8 codebook indices."""
        cb = self.codebook(nbytes)
        sub = embed.float().view(embed.shape[0], nbytes, -1)                # (B, M, d)
        d2 = ((sub[:, :, None, :] - cb[None]) ** 2).sum(-1)                 # (B, M, 256)
        return d2.argmin(-1).to(torch.uint8)

    def dequantise(self, codes: torch.Tensor, nbytes: int) -> torch.Tensor:
        """(B, nbytes) indices -> (B, dim) embedding."""
        cb = self.codebook(nbytes)
        idx = codes.long()
        m = torch.arange(nbytes, device=idx.device)
        return cb[m[None, :], idx].reshape(codes.shape[0], -1)

    @torch.no_grad()
    def fit_pq(self, embeddings: torch.Tensor, iters: int = 25, seed: int = 0) -> dict:
        """k-means (256 centres per sub-space) of ``embeddings`` (N, dim) for every size; returns the
        relative quantisation error (||e - q(e)||^2 / ||e||^2) per size."""
        g = torch.Generator().manual_seed(seed)
        self._tags = None
        emb = embeddings.detach().float().cpu()
        err = {}
        for b in self.pq_bytes:
            sub = emb.view(emb.shape[0], b, -1).transpose(0, 1)             # (M, N, d)
            n = sub.shape[1]
            pick = torch.randint(0, n, (CODEBOOK,), generator=g)
            centres = sub[:, pick].clone() + 1e-3 * torch.randn(b, CODEBOOK, sub.shape[2], generator=g)
            for _ in range(iters):
                assign = torch.cdist(sub, centres).argmin(-1)                # (M, N)
                for m in range(b):
                    counts = torch.bincount(assign[m], minlength=CODEBOOK).float()
                    sums = torch.zeros(CODEBOOK, sub.shape[2]).index_add_(0, assign[m], sub[m])
                    used = counts > 0
                    centres[m][used] = sums[used] / counts[used, None]
            self.codebook(b).copy_(centres.to(self.codebook(b).device))
            q = self.dequantise(self.quantise(emb.to(centres.device), b), b).cpu()
            err[b] = float(((emb - q) ** 2).sum() / (emb ** 2).sum().clamp_min(1e-12))
        return err


def tiny_kwargs(width: int, embed_dim: int, layers: int = 1, image_size: int = 32, patch: int = 16) -> dict:
    """open_clip ``model_kwargs`` of a small ViT-B-32-shaped tower (and a minimal text tower)."""
    return {"embed_dim": embed_dim,
            "vision_cfg": {"image_size": image_size, "layers": layers, "width": width, "patch_size": patch,
                           "head_width": max(8, width // 2), "mlp_ratio": 2.0},
            "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 8, "heads": 1, "layers": 1}}
