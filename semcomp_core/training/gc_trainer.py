"""Training ``gc`` (``semcomp train gc``): learned encoder + factorised prior + GAN decoder.

Recipe (Agustsson et al. 2019 in spirit, sized for small data and small machines):

* **rate**: bits of the noisy latent (additive uniform noise) under the learned per-channel
  discretised Gaussian, over the channels the sample keeps (so each channel pays only where it is
  sent); the rate weight ``lambda`` adapts multiplicatively so the full latent's rate settles at
  ``--target-bpp`` (HiFiC-style rate target).
* **nested channel dropout**: each sample keeps the first k of C channels (k uniform in
  ``--min-channels``..C), so the channels are ordered and one network serves every quality level.
  The decoder sees the noisy latent during the distortion phase (a young latent rounds to nothing), then
  the straight-through *rounded* latent, exactly what the receiver gets.
* **distortion**: L1 + MSE in -1..1; **semantic**: cross-entropy of a frozen segmenter (the codec's
  encoder DDRNet, never the independent evaluation U-Net) on the reconstruction against the frame's
  labels -- the only perceptual network available without downloaded weights (no VGG/LPIPS);
  **adversarial** (after ``--gan-start`` steps): hinge loss with a 2-scale PatchGAN that also sees a
  1/8-resolution copy of the original (is this a plausible sharp version of that picture?), plus
  discriminator feature matching.

The EMA of encoder and decoder is what gets saved (``OUT/model/encoder``, ``OUT/model/decoder``).
Resumable (``OUT/checkpoint``), logged (``OUT/log.jsonl``), DDP-ready (``torchrun``).
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import UsageError
from .loop import RunConfig


@dataclass(kw_only=True)
class GcTrainConfig(RunConfig):
    segmenter: str | None = None
    steps: int = 6000
    batch: int = 8
    crop: int = 160
    lr_d: float = 4e-4
    lr_prior: float = 1e-2
    target_bpp: float = 0.05          # rate of the full latent at which lambda settles
    min_channels: int = 1
    latent_channels: int = 12
    w_mse: float = 4.0
    w_l1: float = 1.0
    w_sem: float = 0.3
    w_adv: float = 0.05
    w_fm: float = 1.0
    gan_start: int = 2000
    d_width: int = 32


def train_gc(cfg: GcTrainConfig, progress: bool = True) -> dict:
    import torch
    import torch.nn.functional as F

    from ..models.discriminator import MultiScaleDiscriminator
    from ..models.gc import GcDecoder, GcEncoder, channel_mask, rate_bits
    from ..models.io import load_model, save_model
    from . import distributed, losses
    from .checkpoint import save_checkpoint
    from .data import load_pack
    from .loop import ema_update, random_crops, resume_run, train_run

    if cfg.crop % 16 or cfg.crop < 32:
        raise UsageError(f"--crop must be a multiple of 16, at least 32 (got {cfg.crop})")
    info, device, out = distributed.start_run(cfg.device, cfg.threads, cfg.seed, cfg.out)
    data = load_pack(Path(cfg.train))
    images, labels = data["images"], data["labels"]
    if min(images.shape[1:3]) < cfg.crop:
        raise UsageError(f"frames {images.shape[1]}x{images.shape[2]} are smaller than the crop {cfg.crop}")
    seg = None
    if cfg.segmenter and cfg.w_sem > 0:
        seg = load_model(cfg.segmenter, device)
        for p in seg.parameters():
            p.requires_grad_(False)
    enc, dec = (GcEncoder.tiny(), GcDecoder.tiny()) if cfg.tiny else (
        GcEncoder(cfg.latent_channels), GcDecoder(cfg.latent_channels))
    c = dec.latent_channels
    if not 1 <= cfg.min_channels <= c:
        raise UsageError(f"--min-channels must be in 1..{c}")
    disc = MultiScaleDiscriminator(0, scales=2, width=4 if cfg.tiny else cfg.d_width, layers=3 if cfg.tiny else 4)
    enc.to(device), dec.to(device), disc.to(device)
    ema_enc, ema_dec = copy.deepcopy(enc).eval(), copy.deepcopy(dec).eval()
    enc_ddp, dec_ddp, d_ddp = (distributed.wrap(m, info, device) for m in (enc, dec, disc))
    prior = [dec.prior_mean, dec.prior_log_scale]
    nets = [p for p in list(enc.parameters()) + list(dec.parameters()) if all(p is not q for q in prior)]
    # the prior learns fast (it must follow the latent, or the rate term collapses the latent instead)
    opt = torch.optim.Adam([{"params": nets}, {"params": prior, "lr": cfg.lr_prior}], lr=cfg.lr, betas=(0.9, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.lr_d, betas=(0.0, 0.9))
    state = {"step": 0, "log_lambda": 0.0}
    ckpt = out / "checkpoint"
    modules = {"enc": enc, "dec": dec, "disc": disc, "ema_enc": ema_enc, "ema_dec": ema_dec}
    state.update(resume_run(cfg, ckpt, modules, {"g": opt, "d": opt_d}, device, info.main))
    rng = np.random.default_rng(cfg.seed + 1000 * info.rank + state["step"])

    def step_fn(step: int) -> dict:
        _, (img, lab) = random_crops(images, cfg.batch, cfg.crop, rng, extra=[labels])
        x = torch.from_numpy(img).permute(0, 3, 1, 2).float().to(device)
        lab = torch.from_numpy(lab).long().to(device)
        real = x / 127.5 - 1
        y = enc_ddp(x)
        mean, scale = dec.prior()
        keep = torch.from_numpy(rng.integers(cfg.min_channels, c + 1, x.shape[0])).to(device)
        mask = channel_mask(y.shape, keep)
        bits = rate_bits(y + torch.empty_like(y).uniform_(-0.5, 0.5), mean, scale)
        pixels = x.shape[2] * x.shape[3]
        bpp_kept = (bits * mask).sum((1, 2, 3)) / pixels
        bpp_full = bits.sum((1, 2, 3)) / pixels
        m = mean.view(1, -1, 1, 1)
        if step < cfg.gan_start:        # phase 1: the decoder sees the noisy latent (a rounded young latent
            y_hat = y + torch.empty_like(y).uniform_(-0.5, 0.5)     # would carry nothing), then ...
        else:                           # ... exactly what the receiver gets (straight-through rounding)
            y_hat = y + (torch.round(y - m) + m - y).detach()
        fake = dec_ddp(y_hat, mask)
        lam = float(np.exp(state["log_lambda"]))
        terms = {"rate": lam * bpp_kept.mean(),
                 "mse": cfg.w_mse * F.mse_loss(fake, real), "l1": cfg.w_l1 * F.l1_loss(fake, real)}
        if seg is not None:
            terms["sem"] = cfg.w_sem * losses.semantic_consistency(seg, fake, lab)
        gan = step >= cfg.gan_start and cfg.w_adv > 0
        if gan:
            cond = F.interpolate(F.avg_pool2d(real, 8), size=real.shape[-2:], mode="nearest")
            d_loss, g_adv, fm = losses.adversarial_terms(d_ddp, opt_d, real, fake, cond)
            terms["adv"] = cfg.w_adv * g_adv
            terms["fm"] = cfg.w_adv * cfg.w_fm * fm
        loss = sum(terms.values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        ema_update(ema_enc, enc, cfg.ema)
        ema_update(ema_dec, dec, cfg.ema)
        # rate target: lambda up while the full latent is above it, down while below
        full = float(bpp_full.detach().mean())
        state["log_lambda"] = float(np.clip(state["log_lambda"] + 0.002 * np.sign(full - cfg.target_bpp), -4, 3))
        rep = {n: float(v.detach()) for n, v in terms.items()}
        rep.update(bpp_full=full, bpp_kept=float(bpp_kept.detach().mean()), lam=lam,
                   psnr=float(10 * torch.log10(4 / F.mse_loss(fake.detach(), real).clamp_min(1e-10))))
        if gan:
            rep["d"] = float(d_loss.detach())
        return rep

    def save_fn(step: int) -> None:
        state["step"] = step
        save_checkpoint(ckpt, modules, {"g": opt, "d": opt_d}, dict(state))
        extra = {"train": asdict(cfg), "step": step}
        ema_enc.copy_prior(ema_dec)       # the sender codes with the decoder's prior
        save_model(ema_enc, out / "model" / "encoder", card=_card(cfg, step, "encoder"), extra=extra)
        save_model(ema_dec, out / "model" / "decoder", card=_card(cfg, step, "decoder"), extra=extra)

    return train_run(cfg, info, out, int(state["step"]), step_fn, save_fn, "gc", progress)


def _card(cfg: GcTrainConfig, step: int, part: str) -> str:
    return (f"# semcomp gc {part} (generative compression without semantics)\n\n"
            f"- Data: {cfg.train}; {step} steps of batch {cfg.batch}, {cfg.crop}x{cfg.crop} crops.\n"
            f"- Latent: {cfg.latent_channels} channels at 1/16, factorised discretised-Gaussian prior, nested "
            f"channel dropout (k >= {cfg.min_channels}); rate target {cfg.target_bpp} bpp for the full latent.\n"
            f"- Losses: MSE x{cfg.w_mse}, L1 x{cfg.w_l1}, semantic x{cfg.w_sem} "
            f"({'segmenter ' + str(cfg.segmenter) if cfg.segmenter else 'off'}), hinge GAN x{cfg.w_adv} + feature "
            f"matching x{cfg.w_fm} from step {cfg.gan_start}; EMA {cfg.ema}.\n"
            f"- Metrics: BENCHMARKS.md (semcomp bench on CamVid val).\n")
