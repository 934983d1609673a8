"""GAN losses: hinge adversarial, discriminator feature matching, reconstruction, semantic consistency."""
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
