"""GAN losses: hinge adversarial, discriminator feature matching, reconstruction, semantic consistency,
structure consistency."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def d_hinge(real_outs, fake_outs) -> torch.Tensor:
    loss = 0.0
    for (_, r), (_, f) in zip(real_outs, fake_outs):
        loss = loss + F.relu(1 - r).mean() + F.relu(1 + f).mean()
    return loss / len(real_outs)


def g_hinge(fake_outs) -> torch.Tensor:
    return sum(-f.mean() for _, f in fake_outs) / len(fake_outs)


def feature_matching(real_outs, fake_outs) -> torch.Tensor:
    loss, n = 0.0, 0
    for (rf, _), (ff, _) in zip(real_outs, fake_outs):
        for a, b in zip(rf, ff):
            loss = loss + F.l1_loss(b, a.detach())
            n += 1
    return loss / max(n, 1)


def reconstruction(fake, real, pool: int = 4) -> torch.Tensor:
    """L1 at 1/pool resolution (colour and layout) plus a light full-resolution L1."""
    return F.l1_loss(F.avg_pool2d(fake, pool), F.avg_pool2d(real, pool)) + 0.25 * F.l1_loss(fake, real)


def semantic_consistency(segmenter, fake, labels) -> torch.Tensor:
    """Cross-entropy of the frozen segmenter on the generated image (in -1..1) against the labels."""
    logits = segmenter((fake + 1) * 127.5)
    logits = F.interpolate(logits, size=labels.shape[-2:], mode="bilinear", align_corners=False)
    return F.cross_entropy(logits, labels, ignore_index=255)


def gradient_magnitude(image: torch.Tensor) -> torch.Tensor:
    """Sobel gradient magnitude of the BT.601 luma of (N, 3, H, W) images in -1..1, (N, 1, H, W)."""
    luma = (0.299 * image[:, 0:1] + 0.587 * image[:, 1:2] + 0.114 * image[:, 2:3])
    k = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], device=image.device) / 8
    kernels = torch.stack([k, k.t()])[:, None]
    g = F.conv2d(F.pad(luma, (1, 1, 1, 1), mode="replicate"), kernels)
    return torch.sqrt((g * g).sum(1, keepdim=True) + 1e-6)


def structure_consistency(fake, real, presence, lines=None, reach: int = 0) -> torch.Tensor:
    """L1 between the luma gradient magnitudes of ``fake`` and ``real`` where the structure layer is
    present (``presence`` (N, 1, H, W) in 0..1); with ``reach`` > 0 and the layer's channel ``lines``
    (N, 1, H, W) in -1..1, only within ``reach`` pixels of a sent line (texture elsewhere left to the
    adversarial terms). No pressure at all in samples without the layer. The shipped decoder was
    trained with ``reach`` 0 (BENCHMARKS.md, "Structure layer")."""
    w = presence.float()
    if reach > 0 and lines is not None:
        near = F.max_pool2d((lines > -0.9).float(), 2 * reach + 1, stride=1, padding=reach)
        w = w * near
    if float(w.sum()) == 0.0:
        return fake.sum() * 0.0
    diff = (gradient_magnitude(fake) - gradient_magnitude(real)).abs()
    return (diff * w).sum() / w.sum()


def adversarial_terms(disc, opt_d, real, fake, cond):
    """One discriminator step (hinge) on ``real`` vs ``fake.detach()``, then the generator's terms.

    Returns (discriminator loss, generator hinge loss, feature-matching loss); the generator terms carry
    gradients to ``fake``."""
    d_loss = d_hinge(disc(real, cond), disc(fake.detach(), cond))
    opt_d.zero_grad(set_to_none=True)
    d_loss.backward()
    opt_d.step()
    fake_outs = disc(fake, cond)
    with torch.no_grad():
        real_outs = disc(real, cond)
    return d_loss.detach(), g_hinge(fake_outs), feature_matching(real_outs, fake_outs)
