"""Training the diffusion renderer's UNet (``semcomp train ldm``), jointly with a CLIP image tower.

Each sample is built as the receiver will see it (``gan_trainer.ConditionSampler``: a random quality
level's seg map -- the encoder segmenter's predictions by default, as the shipped GAN decoder was
trained -- and its colour map through the real colour-map layer, upsampled as the decoder does), then
pooled to the latent grid (``models.ldm.latent_conditioning``). Layer dropout: the seg map is absent
with probability ``--drop-segmap`` (CLIP containers and cut containers render too), the colour map
with ``--drop-colormap``, the CLIP embedding with ``--drop-clip``.

The CLIP tower (``models.clip_tower``, an open_clip ViT) is trained from scratch with the UNet, as a
learned global code of the whole frame (nothing pretrained can be had here); during training its
embedding is perturbed as the link perturbs it (Gaussian noise of the product quantiser's typical
error), unCLIP-style, so the UNet tolerates the quantiser; and an InfoNCE term between two views of each frame
(``--w-contrast``) keeps it from collapsing to a constant (a run without it did collapse; resumed with
it, the shipped tower recovered: its card says so). ``--clip`` off trains a UNet without
cross-attention input. At every save the product quantisers are fitted by k-means on the embeddings of
every training frame (and its mirror image).

Diffusion: the frozen VAE's scaled latents of random crops; v-prediction (``--prediction``) with the
scaled-linear DDPM schedule; timesteps drawn uniformly below ``--max-strength`` x T (the renderer
never starts above that; SDEdit uses 0.7 by default). EMA of UNet and tower is what gets saved.
accelerate handles the device, mixed precision and several processes; resumable, logged, progress
bar with ETA (the shared step loop).
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import UsageError
from .loop import RunConfig


@dataclass(kw_only=True)
class LdmTrainConfig(RunConfig):
    vae: str = ""
    segmenter: str | None = None        # labels predicted by this segmenter (None: ground truth)
    steps: int = 8000
    batch: int = 8
    crop: int = 128
    channels: tuple = (64, 128, 192)
    prediction: str = "v_prediction"
    max_strength: float = 1.0
    clip: bool = True
    clip_dim: int = 128
    clip_width: int = 128
    clip_layers: int = 4
    clip_image: int = 64
    clip_noise: float = 0.1
    w_contrast: float = 0.1             # InfoNCE between two views of each frame: keeps the tower from collapsing
    drop_segmap: float = 0.2
    drop_colormap: float = 0.1
    drop_clip: float = 0.5
    mixed_precision: str = "no"
    lr: float = 3e-4
    ema: float = 0.999


def train_ldm(cfg: LdmTrainConfig, progress: bool = True) -> dict:
    import torch
    import torch.nn.functional as F
    from diffusers import DDPMScheduler

    from ..codecs.semantic_levels import LEVELS
    from ..models.clip_tower import ClipTower, tiny_kwargs
    from ..models.io import load_model, save_model
    from ..models.ldm import VAE_FACTOR, LatentUnet, latent_conditioning
    from .checkpoint import save_checkpoint
    from .data import load_pack
    from .gan_trainer import ConditionSampler, _predicted_labels
    from .loop import ema_update, resume_run, run_steps
    from .vae_trainer import accelerator_for

    if cfg.crop % 32 or cfg.crop < 32:
        raise UsageError(f"--crop must be a multiple of 32 (got {cfg.crop})")
    if not 0.0 < cfg.max_strength <= 1.0:
        raise UsageError(f"--max-strength must be in (0, 1] (got {cfg.max_strength})")
    if cfg.prediction not in ("v_prediction", "epsilon", "sample"):
        raise UsageError(f"--prediction must be v_prediction, epsilon or sample (got {cfg.prediction!r})")
    if not cfg.vae:
        raise UsageError("--vae is required (a model folder from `semcomp train vae`)")
    acc = accelerator_for(cfg.device, cfg.mixed_precision, cfg.threads, cfg.seed)
    device, main = acc.device, acc.is_main_process
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    data = load_pack(Path(cfg.train))
    images, labels = data["images"], data["labels"]
    class_names = list(data["meta"]["classes"])
    k = len(class_names)
    vae = load_model(cfg.vae, str(device))
    for p in vae.parameters():
        p.requires_grad_(False)
    if cfg.segmenter:
        seg = load_model(cfg.segmenter, str(device))
        cache = out / "labels.npy"
        if cache.exists() and np.load(cache, mmap_mode="r").shape == labels.shape:
            labels = np.load(cache)
        else:
            labels = _predicted_labels(seg, images, device)
            if main:
                np.save(cache, labels)
        if seg.num_classes != k:
            raise UsageError(f"segmenter has {seg.num_classes} classes, data has {k}")
        del seg
    sampler = ConditionSampler(images, labels, k, LEVELS, seed=cfg.seed + 17 * acc.process_index,
                               class_names=class_names)
    embed_dim = cfg.clip_dim if cfg.clip else 0
    if cfg.tiny:
        unet = LatentUnet.tiny(num_classes=k, embed_dim=16 if cfg.clip else 0, prediction_type=cfg.prediction,
                               class_names=class_names, max_strength=cfg.max_strength)
        tower = ClipTower.tiny() if cfg.clip else None
    else:
        unet = LatentUnet(num_classes=k, latent_channels=vae.latent_channels, channels=tuple(cfg.channels),
                          embed_dim=embed_dim, prediction_type=cfg.prediction, class_names=class_names,
                          max_strength=cfg.max_strength)
        tower = ClipTower(model_kwargs=tiny_kwargs(cfg.clip_width, cfg.clip_dim, layers=cfg.clip_layers,
                                                   image_size=cfg.clip_image, patch=8),
                          image_size=cfg.clip_image, embed_dim=cfg.clip_dim) if cfg.clip else None
    sched = DDPMScheduler(**unet.config["schedule"], prediction_type=cfg.prediction)
    unet.to(device)
    if tower is not None:
        tower.to(device)
    ema_unet = copy.deepcopy(unet).eval()
    ema_tower = copy.deepcopy(tower).eval() if tower is not None else None
    params = list(unet.parameters()) + (list(tower.parameters()) if tower is not None else [])
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=1e-4)
    state = {"step": 0}
    ckpt = out / "checkpoint"
    modules = {"unet": unet, "ema_unet": ema_unet}
    if tower is not None:
        modules.update(tower=tower, ema_tower=ema_tower)
    state.update(resume_run(cfg, ckpt, modules, {"opt": opt}, device, main))
    unet_p, opt_p = acc.prepare(unet, opt)
    tower_p = acc.prepare(tower) if tower is not None else None
    rng = np.random.default_rng(cfg.seed + 1000 * acc.process_index + state["step"])
    t_max = max(1, int(round(cfg.max_strength * sched.config.num_train_timesteps)))
    alphas = sched.alphas_cumprod.to(device)
    whole = torch.from_numpy(images).permute(0, 3, 1, 2)          # uint8 (N,3,H,W): the tower's input frames

    def step_fn(step: int) -> dict:
        x, onehot, color, _, _ = sampler.sample(cfg.batch, cfg.crop)
        x, onehot, color = x.to(device), onehot.to(device), color.to(device)
        b = x.shape[0]
        keep_seg = torch.from_numpy(rng.random(b) >= cfg.drop_segmap).float().to(device).view(b, 1, 1, 1)
        keep_col = torch.from_numpy(rng.random(b) >= cfg.drop_colormap).float().to(device).view(b, 1, 1, 1)
        cond = latent_conditioning(onehot, color, None, k, unet.optional_layers)
        cond[:, :k + 1] *= keep_seg
        cond[:, k + 1:k + 5] *= keep_col
        with torch.no_grad():
            z0 = vae.encode(x)
        noise = torch.randn_like(z0)
        t = torch.from_numpy(rng.integers(0, t_max, b)).long().to(device)
        zt = sched.add_noise(z0, noise, t)
        if tower is not None:
            frames = whole[torch.from_numpy(sampler.last_index)].float().to(device)
            flip = torch.from_numpy(sampler.last_flip).to(device).view(b, 1, 1, 1)
            frames = torch.where(flip, frames.flip(-1), frames)
            emb = tower_p(frames)
            contrast = None
            if cfg.w_contrast > 0:          # a second view (mirrored, cropped) of the same frames must match
                contrast = cfg.w_contrast * view_contrast(tower_p, frames, emb, sampler.last_index, rng)
            emb = emb + cfg.clip_noise * torch.randn_like(emb)
            pres = torch.from_numpy(rng.random(b) >= cfg.drop_clip).float().to(device).view(b, 1)
        else:
            emb = z0.new_zeros(b, 1)
            pres = z0.new_zeros(b, 1)
        with acc.autocast():
            pred = unet_p(zt, t, cond, emb, pres)
        if cfg.prediction == "v_prediction":
            target = sched.get_velocity(z0, noise, t)
        elif cfg.prediction == "epsilon":
            target = noise
        else:
            target = z0
        loss = F.mse_loss(pred.float(), target)
        extra = {}
        if tower is not None and contrast is not None:
            extra["contrast"] = float(contrast.detach())
            loss = loss + contrast
        opt_p.zero_grad(set_to_none=True)
        acc.backward(loss)
        acc.clip_grad_norm_(params, 1.0)
        opt_p.step()
        ema_update(ema_unet, acc.unwrap_model(unet_p), cfg.ema)
        if tower is not None:
            ema_update(ema_tower, acc.unwrap_model(tower_p), cfg.ema)
        with torch.no_grad():     # x0 error of this batch (latent units), for the log
            a = alphas[t].view(b, 1, 1, 1)
            if cfg.prediction == "v_prediction":
                x0 = a.sqrt() * zt - (1 - a).sqrt() * pred.float()
            elif cfg.prediction == "epsilon":
                x0 = (zt - (1 - a).sqrt() * pred.float()) / a.sqrt()
            else:
                x0 = pred.float()
        return {"loss": float(loss.detach()), "x0_mse": float(F.mse_loss(x0, z0)), **extra}

    def save_fn(step: int) -> None:
        state["step"] = step
        save_checkpoint(ckpt, modules, {"opt": opt}, dict(state))
        extra = {"train": asdict(cfg), "step": step}
        pq_err = None
        if ema_tower is not None:
            embs = _all_embeddings(ema_tower, whole, device)
            pq_err = ema_tower.fit_pq(embs, seed=cfg.seed)
            pq_err["cosine"] = mean_cosine(embs)
            save_model(ema_tower, out / "model" / "clip", card=_card(cfg, step, "clip", pq_err), extra=extra)
        save_model(ema_unet, out / "model" / "unet", card=_card(cfg, step, "unet", pq_err), extra=extra)

    step = run_steps(steps=cfg.steps, start=int(state["step"]), step_fn=step_fn, save_fn=save_fn, out=out,
                     main=main, desc="ldm", progress=progress, log_every=cfg.log_every, save_every=cfg.save_every)
    return {"step": step, "model": str(out / "model"), "latent_factor": VAE_FACTOR}


def view_contrast(tower, frames, emb, index, rng, tau: float = 0.1):
    """InfoNCE (SimCLR-style) between ``emb`` (the tower's embedding of ``frames``) and the embedding of a second
    view of the same frames (mirrored, cropped to 80-100% of each side): each frame must pick out its own view
    among the batch's (frames drawn twice count as positives). Without it, a tower trained from scratch only
    through the denoising loss can collapse to a constant."""
    import torch
    import torch.nn.functional as F

    h, w = frames.shape[-2:]
    s = float(rng.uniform(0.8, 1.0))
    ch, cw = max(8, int(h * s)), max(8, int(w * s))
    top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    other = tower(frames[..., top:top + ch, left:left + cw].flip(-1))
    a, b = F.normalize(emb.float(), dim=1), F.normalize(other.float(), dim=1)
    idx = torch.as_tensor(index, device=emb.device)
    same = (idx[:, None] == idx[None, :]).float()
    target = same / same.sum(1, keepdim=True)
    return F.cross_entropy(a @ b.T / tau, target)


def mean_cosine(embs) -> float:
    """Mean cosine similarity between the embeddings of different frames (1.0: the tower collapsed to a
    constant and its layer carries nothing)."""
    import torch

    n = torch.nn.functional.normalize(embs.float(), dim=1)
    sim = n @ n.T
    k = sim.shape[0]
    return float((sim.sum() - sim.diagonal().sum()) / max(1, k * k - k))


def _all_embeddings(tower, whole, device):
    import torch

    with torch.no_grad():
        embs = []
        for chunk in torch.split(whole, 16):
            x = chunk.float().to(device)
            embs += [tower(x), tower(x.flip(-1))]
    return torch.cat(embs)


def _card(cfg: LdmTrainConfig, step: int, part: str, pq_err) -> str:
    head = {"unet": "# semcomp ldm-unet (the diffusion renderer's denoiser)\n\n",
            "clip": "# semcomp clip-tower (open_clip ViT trained from scratch with the diffusion renderer)\n\n"}[part]
    pq = "" if not pq_err else ("- Product quantiser (k-means, 256 codes per sub-vector), relative squared error on "
                                "the training embeddings: " + ", ".join(f"{b} B: {e:.3f}" for b, e in pq_err.items()
                                                                        if b != "cosine")
                                + f"\n- Mean cosine similarity between training frames' embeddings: {pq_err['cosine']:.4f} "
                                "(1.0 = collapsed to a constant: the layer carries nothing)\n")
    return (head + f"- Data: {cfg.train}; {step} steps of batch {cfg.batch}, {cfg.crop}x{cfg.crop} crops; VAE "
            f"{cfg.vae}; labels {'predicted by ' + str(cfg.segmenter) if cfg.segmenter else 'ground truth'}.\n"
            f"- diffusers UNet2DConditionModel {list(cfg.channels)}, {cfg.prediction}, timesteps below "
            f"{cfg.max_strength} T; layer dropout seg map {cfg.drop_segmap}, colour map {cfg.drop_colormap}, "
            f"CLIP {cfg.drop_clip}; EMA {cfg.ema}.\n"
            + (f"- CLIP tower: open_clip ViT (width {cfg.clip_width}, {cfg.clip_layers} layers, {cfg.clip_image} px "
               f"input, {cfg.clip_dim}-d embedding) trained from scratch jointly (no pretrained CLIP semantics); "
               f"embedding noise {cfg.clip_noise}; view-contrast weight {cfg.w_contrast}.\n" if cfg.clip else "- No CLIP conditioning.\n") + pq)
