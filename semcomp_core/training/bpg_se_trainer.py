"""Training ``bpg-se``'s enhancement network (``semcomp train bpg-se``).

1. **Base layers** (cached in ``OUT/base_cache.npz``, made once): every training frame coded with the
   ``bpg`` codec (x265 path, as ``bpg-se`` codes it) at every q of ``--qs`` and decoded, and the frozen
   encoder segmenter's labels on the map grids ``--factors`` -- exactly what the receiver gets.
2. **Phase 1, distortion** (steps < ``--perception-start``): MSE (PSNR) plus a semantic-consistency term
   (cross-entropy of the same frozen segmenter on the enhanced crop against the frame's labels).
3. **Phase 2, perception** (JPD-SE trains distortion first, then perception): a conditional 2-scale
   PatchGAN (it sees the label map and the base picture) with hinge loss and feature matching at small
   weights is added to the phase-1 terms, so PSNR is kept while texture improves.

Each sample draws a q and a map factor; with probability ``--label-dropout`` the labels are absent
(presence 0), so the network also enhances a container cut before its seg-map layer. The EMA weights
are saved (``OUT/model``); resumable, logged, DDP-ready like the other trainers.
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import UsageError
from .loop import RunConfig


@dataclass(kw_only=True)
class BpgSeTrainConfig(RunConfig):
    segmenter: str = "default"
    qs: tuple = tuple(range(35, 52))
    factors: tuple = (16, 8)
    steps: int = 6000
    batch: int = 16
    crop: int = 128
    w_sem: float = 0.002
    w_adv: float = 0.002
    w_fm: float = 0.02
    perception_start: int = 4000
    label_dropout: float = 0.1
    limit: int | None = None          # use the first N frames only (smoke tests)


def prepare_base(images: np.ndarray, qs, factors, segmenter: str, cache: Path, progress: bool = True) -> dict:
    """``{"base": (len(qs), N, H, W, 3) uint8, "bytes": (len(qs), N), "labels_<f>": (N, h, w) uint8}``, cached."""
    from tqdm import tqdm

    from ..codecs import create

    key = {"qs": [int(q) for q in qs], "factors": [int(f) for f in factors], "n": int(len(images)),
           "shape": list(images.shape), "segmenter": str(segmenter)}
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            if str(z["key"]) == repr(key):
                return {k: z[k] for k in z.files if k != "key"}
    seg = create("semantic-gan", segmenter=segmenter, roi="none")
    out = {"base": np.zeros((len(qs),) + images.shape, np.uint8), "bytes": np.zeros((len(qs), len(images)), np.int32)}
    for f in factors:
        out[f"labels_{f}"] = np.stack([seg.segment(im, f) for im in tqdm(images, disable=not progress,
                                                                         desc=f"labels 1/{f}", unit="img")])
    for qi, q in enumerate(tqdm(qs, disable=not progress, desc="base layers (q)", unit="q")):
        bpg = create("bpg", q=int(q), impl="x265")
        for n, im in enumerate(images):
            data = bpg.encode(im)
            out["bytes"][qi, n] = len(data)
            out["base"][qi, n] = bpg.decode(data)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(cache.stem + ".tmp.npz")
    np.savez(tmp, key=np.array(repr(key)), **out)
    tmp.replace(cache)
    return out


def train_bpg_se(cfg: BpgSeTrainConfig, progress: bool = True) -> dict:
    import torch
    import torch.nn.functional as F

    from ..codecs.semantic import _model_dir, upsampled_labels
    from ..models.discriminator import MultiScaleDiscriminator
    from ..models.enhancer import Enhancer
    from ..models.io import load_model, save_model
    from . import distributed, losses
    from .checkpoint import save_checkpoint
    from .data import load_pack
    from .loop import ema_update, random_crops, resume_run, train_run

    if cfg.crop % 16 or cfg.crop < 32:
        raise UsageError(f"--crop must be a multiple of 16, at least 32 (got {cfg.crop})")
    if not cfg.qs or min(cfg.qs) < 0 or max(cfg.qs) > 51:
        raise UsageError("--qs must be quantisers in 0..51")
    info, device, out = distributed.start_run(cfg.device, cfg.threads, cfg.seed, cfg.out)
    data = load_pack(Path(cfg.train))
    images, gt = data["images"][:cfg.limit], data["labels"][:cfg.limit]
    classes = data["meta"]["classes"]
    k = len(classes)
    seg_path = _model_dir(cfg.segmenter, "segmenter")
    seg = load_model(seg_path, device)
    if seg.num_classes != k:
        raise UsageError(f"segmenter has {seg.num_classes} classes, the data {k}")
    for p in seg.parameters():
        p.requires_grad_(False)
    base = prepare_base(images, cfg.qs, cfg.factors, seg_path, out / "base_cache.npz", progress and info.main)
    H, W = images.shape[1:3]
    # the receiver's upsampled label index maps, per factor (k = no class)
    idx_maps = {f: np.stack([upsampled_labels(lab, f, H, W, k).numpy()[:H, :W].astype(np.uint8)
                             for lab in base[f"labels_{f}"]]) for f in cfg.factors}
    lo, hi = min(cfg.qs), max(cfg.qs)
    net = Enhancer.tiny(k, classes) if cfg.tiny else Enhancer(k, q_range=(lo, hi), class_names=classes)
    disc = MultiScaleDiscriminator(k, scales=2, width=4 if cfg.tiny else 32, layers=3 if cfg.tiny else 4)
    net.to(device), disc.to(device)
    ema = copy.deepcopy(net).eval()
    net_ddp, d_ddp = distributed.wrap(net, info, device), distributed.wrap(disc, info, device)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, betas=(0.9, 0.99))
    opt_d = torch.optim.Adam(disc.parameters(), lr=2 * cfg.lr, betas=(0.0, 0.9))
    state = {"step": 0}
    ckpt = out / "checkpoint"
    modules = {"net": net, "disc": disc, "ema": ema}
    state.update(resume_run(cfg, ckpt, modules, {"g": opt, "d": opt_d}, device, info.main))
    rng = np.random.default_rng(cfg.seed + 1000 * info.rank + state["step"])
    n_q = len(cfg.qs)

    def step_fn(step: int) -> dict:
        qi = int(rng.integers(n_q))
        f = cfg.factors[int(rng.integers(len(cfg.factors)))]
        _, (orig, dec, idx, lab) = random_crops(images, cfg.batch, cfg.crop, rng,
                                                extra=[base["base"][qi], idx_maps[f], gt])
        real = torch.from_numpy(orig).permute(0, 3, 1, 2).float().to(device)
        x = torch.from_numpy(dec).permute(0, 3, 1, 2).float().to(device)
        idx_t = torch.from_numpy(idx).long().to(device)
        onehot = F.one_hot(idx_t, k + 1)[..., :k].permute(0, 3, 1, 2).float()
        presence = torch.from_numpy((rng.random(x.shape[0]) >= cfg.label_dropout).astype(np.float32)).to(device)
        presence = presence.view(-1, 1, 1, 1).expand(-1, 1, *x.shape[-2:]).contiguous()
        q = torch.full((x.shape[0], 1), float(cfg.qs[qi]), device=device)
        y = net_ddp(x, onehot, presence, q)
        terms = {"mse": F.mse_loss(y / 127.5 - 1, real / 127.5 - 1)}
        if cfg.w_sem > 0:
            terms["sem"] = cfg.w_sem * losses.semantic_consistency(seg, y / 127.5 - 1,
                                                                   torch.from_numpy(lab).long().to(device))
        rep = {}
        if step >= cfg.perception_start and cfg.w_adv > 0:
            cond = torch.cat([onehot * presence, x / 127.5 - 1], 1)
            fake, realn = y / 127.5 - 1, real / 127.5 - 1
            d_loss, g_adv, fm = losses.adversarial_terms(d_ddp, opt_d, realn, fake, cond)
            terms["adv"] = cfg.w_adv * g_adv
            terms["fm"] = cfg.w_fm * fm
            rep["d"] = float(d_loss)
        loss = sum(terms.values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        ema_update(ema, net, cfg.ema)
        with torch.no_grad():
            mse_base = F.mse_loss(x, real) / 255 ** 2
            mse_out = F.mse_loss(y.detach(), real) / 255 ** 2
        rep.update({n: float(v.detach()) for n, v in terms.items()})
        rep["psnr_gain"] = float(10 * torch.log10(mse_base / mse_out.clamp_min(1e-12)))
        return rep

    def save_fn(step: int) -> None:
        state["step"] = step
        save_checkpoint(ckpt, modules, {"g": opt, "d": opt_d}, dict(state))
        save_model(ema, out / "model", card=_card(cfg, step, ema), extra={"train": asdict(cfg), "step": step})

    return train_run(cfg, info, out, int(state["step"]), step_fn, save_fn, "bpg-se", progress)


def _card(cfg: BpgSeTrainConfig, step: int, model) -> str:
    params = sum(p.numel() for p in model.parameters())
    return (f"# semcomp bpg-se enhancement network (JPD-SE-style semantic enhancement of BPG)\n\n"
            f"- Data: {cfg.train}; base layers: x265 BPG at q {min(cfg.qs)}..{max(cfg.qs)}; labels: the encoder "
            f"segmenter ({cfg.segmenter}) on 1/{' and 1/'.join(str(f) for f in cfg.factors)} grids, dropped "
            f"with p={cfg.label_dropout}.\n"
            f"- Steps: {step} of batch {cfg.batch}, {cfg.crop}x{cfg.crop} crops. Phase 1 (distortion): MSE + "
            f"semantic consistency x{cfg.w_sem}; phase 2 from step {cfg.perception_start}: + hinge GAN x{cfg.w_adv} "
            f"+ feature matching x{cfg.w_fm}.\n"
            f"- Network: widths {list(model.config['widths'])}, {params / 1e6:.2f} M parameters; EMA {cfg.ema}.\n"
            f"- Metrics: BENCHMARKS.md (semcomp bench on CamVid val).\n")
