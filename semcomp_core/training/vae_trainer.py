"""Training the diffusion renderer's autoencoder (``semcomp train vae``): diffusers ``AutoencoderKL``, f=4.

Recipe (no LPIPS/VGG weights can be had here, so an f=4 latent and pixel losses): L1 + (1 - SSIM) in
-1..1, a small KL weight, and from ``--gan-start`` a hinge PatchGAN with feature matching (the 2-scale
discriminator of the other trainers) for texture. Random crops with flips. The EMA of the model is
saved; at every save the latent ``scaling_factor`` is measured on the training frames (1 / std of the
posterior means) and written into the config, so the UNet trains on unit-variance latents.

Runs through accelerate (``--mixed-precision bf16|fp16`` on a GPU; ``accelerate launch -m semcomp_core train
vae ...`` for several GPUs), with the shared step loop (progress bar with ETA, JSON log, checkpoints,
``--resume``, a checkpoint on Ctrl-C / SIGTERM).
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import UsageError
from .loop import RunConfig


@dataclass(kw_only=True)
class VaeTrainConfig(RunConfig):
    steps: int = 4000
    batch: int = 8
    crop: int = 128
    channels: tuple = (32, 64, 96)
    latent_channels: int = 4
    w_l1: float = 1.0
    w_ssim: float = 0.5
    w_kl: float = 1e-6
    w_adv: float = 0.02
    w_fm: float = 1.0
    gan_start: int = 2500
    lr_d: float = 2e-4
    d_width: int = 32
    mixed_precision: str = "no"
    lr: float = 4e-4
    decoder_only: bool = False         # fine-tune the decoder alone: the latent space (and a UNet trained on it) stay valid


def accelerator_for(device: str, mixed_precision: str, threads: int | None, seed: int):
    """An ``accelerate.Accelerator`` on ``device`` (CPU unless it names CUDA) with ``mixed_precision``."""
    import torch
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    if threads:
        torch.set_num_threads(threads)
    if mixed_precision not in ("no", "fp16", "bf16"):
        raise UsageError(f"--mixed-precision must be no, fp16 or bf16 (got {mixed_precision!r})")
    cpu = not str(device).startswith("cuda")
    if cpu and mixed_precision == "fp16":
        raise UsageError("--mixed-precision fp16 needs a CUDA device (bf16 works on CPUs)")
    acc = Accelerator(cpu=cpu, mixed_precision=mixed_precision)
    set_seed(seed + acc.process_index)
    return acc


def scaling_factor(vae, images: np.ndarray, device, count: int = 32, crop: int = 128) -> float:
    """1 / std of the posterior means of ``count`` training crops (the latent scale the UNet trains on)."""
    import torch

    rng = np.random.default_rng(123)
    _, (img,) = _crops(images, count, crop, rng)
    with torch.no_grad():
        z = torch.cat([vae.posterior(x.to(device)).mean for x in torch.split(img, 8)])
    return float(1.0 / z.float().std().clamp_min(1e-6))


def _crops(images, batch, crop, rng):
    import torch

    from .loop import random_crops

    idx, (img,) = random_crops(images, batch, crop, rng, multiple=4)
    return idx, (torch.from_numpy(img).permute(0, 3, 1, 2).float() / 127.5 - 1,)


def train_vae(cfg: VaeTrainConfig, progress: bool = True) -> dict:
    import torch
    import torch.nn.functional as F
    from pytorch_msssim import ssim

    from ..models.discriminator import MultiScaleDiscriminator
    from ..models.io import save_model
    from ..models.ldm import LatentVae
    from . import losses
    from .checkpoint import save_checkpoint
    from .data import load_pack
    from .loop import ema_update, resume_run, run_steps

    if cfg.crop % 8 or cfg.crop < 32:
        raise UsageError(f"--crop must be a multiple of 8, at least 32 (got {cfg.crop})")
    acc = accelerator_for(cfg.device, cfg.mixed_precision, cfg.threads, cfg.seed)
    device, main = acc.device, acc.is_main_process
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    images = load_pack(Path(cfg.train))["images"]
    if min(images.shape[1:3]) < cfg.crop:
        raise UsageError(f"frames {images.shape[1]}x{images.shape[2]} are smaller than the crop {cfg.crop}")
    vae = LatentVae.tiny() if cfg.tiny else LatentVae(channels=tuple(cfg.channels),
                                                      latent_channels=cfg.latent_channels)
    disc = MultiScaleDiscriminator(0, scales=2, width=4 if cfg.tiny else cfg.d_width, layers=3)
    vae.to(device), disc.to(device)
    ema = copy.deepcopy(vae).eval()
    opt = torch.optim.Adam(vae.parameters(), lr=cfg.lr, betas=(0.5, 0.9))
    opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.lr_d, betas=(0.0, 0.9))
    state = {"step": 0}
    modules = {"vae": vae, "disc": disc, "ema": ema}
    frozen_scale = None
    if cfg.decoder_only:
        # fine-tune the decoder of a trained run: its saved (EMA) encoder is the one a UNet was trained on, so
        # the live model takes it and keeps it; the run keeps its own checkpoint (checkpoint_decoder/)
        from .checkpoint import load_checkpoint

        ckpt = out / "checkpoint_decoder"
        if not (ckpt / "trainer.json").exists():
            if not (out / "checkpoint" / "trainer.json").exists():
                raise UsageError(f"--decoder-only fine-tunes a trained run: no checkpoint in {out}")
            state.update(load_checkpoint(out / "checkpoint", modules, {}, device))
        frozen = ("vae.encoder.", "vae.quant_conv.")
        own = ema.state_dict()
        vae.load_state_dict({k: own[k] for k in vae.state_dict() if k.startswith(frozen)}, strict=False)
        for name, p in vae.named_parameters():
            p.requires_grad_(not name.startswith(frozen))
        opt = torch.optim.Adam([p for p in vae.parameters() if p.requires_grad], lr=cfg.lr, betas=(0.5, 0.9))
        resumed = resume_run(dataclasses.replace(cfg, resume=True), ckpt, modules, {"g": opt, "d": opt_d}, device,
                             main)
        state.update(resumed)
        from ..models.io import read_config

        saved = out / "model"
        frozen_scale = (read_config(saved)["config"]["scaling_factor"] if (saved / "config.json").exists()
                        else scaling_factor(ema, images, device, crop=min(cfg.crop, 128)))
    else:
        ckpt = out / "checkpoint"
        state.update(resume_run(cfg, ckpt, modules, {"g": opt, "d": opt_d}, device, main))
    vae_p, opt_p, disc_p, opt_d_p = acc.prepare(vae, opt, disc, opt_d)
    rng = np.random.default_rng(cfg.seed + 1000 * acc.process_index + state["step"])

    def step_fn(step: int) -> dict:
        _, (real,) = _crops(images, cfg.batch, cfg.crop, rng)
        real = real.to(device)
        with acc.autocast():
            post = acc.unwrap_model(vae_p).posterior(real)
            z = post.mean if cfg.decoder_only else post.sample()
            fake = acc.unwrap_model(vae_p).vae.decode(z).sample
        fake = fake.float()
        terms = {"l1": cfg.w_l1 * F.l1_loss(fake, real),
                 "ssim": cfg.w_ssim * (1 - ssim((fake + 1) / 2, (real + 1) / 2, data_range=1.0, size_average=True)),
                 "kl": cfg.w_kl * post.kl().mean()}
        gan = step >= cfg.gan_start and cfg.w_adv > 0
        if gan:
            cond = F.interpolate(F.avg_pool2d(real, 8), size=real.shape[-2:], mode="nearest")
            d_loss, g_adv, fm = losses.adversarial_terms(disc_p, opt_d_p, real, fake, cond)
            terms["adv"] = cfg.w_adv * g_adv
            terms["fm"] = cfg.w_adv * cfg.w_fm * fm
        loss = sum(terms.values())
        opt_p.zero_grad(set_to_none=True)
        acc.backward(loss)
        opt_p.step()
        ema_update(ema, acc.unwrap_model(vae_p), cfg.ema)
        rep = {n: float(v.detach()) for n, v in terms.items()}
        rep["psnr"] = float(10 * torch.log10(4 / F.mse_loss(fake.detach(), real).clamp_min(1e-10)))
        if gan:
            rep["d"] = float(d_loss)
        return rep

    def save_fn(step: int) -> None:
        state["step"] = step
        save_checkpoint(ckpt, modules, {"g": opt, "d": opt_d}, dict(state))
        if frozen_scale is not None:
            ema.set_scaling_factor(frozen_scale)
        else:
            ema.set_scaling_factor(1.0)
            ema.set_scaling_factor(scaling_factor(ema, images, device, crop=min(cfg.crop, 128)))
        save_model(ema, out / "model", card=_card(cfg, step, ema.scaling_factor),
                   extra={"train": asdict(cfg), "step": step})

    step = run_steps(steps=cfg.steps, start=int(state["step"]), step_fn=step_fn, save_fn=save_fn, out=out,
                     main=main, desc="vae", progress=progress, log_every=cfg.log_every, save_every=cfg.save_every)
    return {"step": step, "model": str(out / "model")}


def _card(cfg: VaeTrainConfig, step: int, scale: float) -> str:
    return (f"# semcomp ldm-vae (the diffusion renderer's autoencoder)\n\n"
            f"- diffusers AutoencoderKL, downsampling 4, {cfg.latent_channels} latent channels, widths "
            f"{list(cfg.channels)}; trained from scratch.\n"
            f"- Data: {cfg.train}; {step} steps of batch {cfg.batch}, {cfg.crop}x{cfg.crop} crops (flips).\n"
            f"- Losses: L1 x{cfg.w_l1}, 1-SSIM x{cfg.w_ssim}, KL x{cfg.w_kl}, hinge PatchGAN x{cfg.w_adv} + feature "
            f"matching from step {cfg.gan_start}; EMA {cfg.ema}"
            + ("; this phase trained the decoder alone (encoder and latent space frozen)" if cfg.decoder_only else "")
            + ".\n"
            f"- Latent scaling factor (1/std on training crops): {scale:.4f}.\n")
