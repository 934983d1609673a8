"""Training the segmentation encoder (``semcomp train segmenter``).

Cross-entropy with square-root median-frequency class weights (rare classes such
as pole, sign and pedestrian matter to mIoU), an auxiliary head (weight 0.4),
AdamW with linear warm-up and polynomial decay, random scale/crop/flip/jitter.
Evaluates mIoU on the validation pack at full label resolution after every
epoch; the best model is saved as safetensors + config.json + MODEL_CARD.md in
``OUT/model``, the resumable state in ``OUT/checkpoint`` (``--resume``), and
metrics as JSON lines in ``OUT/log.jsonl``.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import UsageError


@dataclass
class SegTrainConfig:
    train: str
    val: str | None
    out: str
    epochs: int = 120
    batch: int = 8
    crop: tuple[int, int] = (320, 320)
    lr: float = 2e-3
    weight_decay: float = 1e-2
    warmup_epochs: int = 2
    arch: str = "ddrnet"          # "ddrnet" (the codec's encoder) or "unet" (evaluation segmenter)
    width: int = 32
    input_scale: float = 1.0
    device: str = "cpu"
    seed: int = 0
    resume: bool = False
    threads: int | None = None
    tiny: bool = False
    max_steps_per_epoch: int | None = None
    augment: str = "standard"     # "standard" (scale 0.75-1.5, mild jitter) or "strong" (camera_augment)
    init: str | None = None       # start from this model folder (fine-tuning) instead of from scratch


def build_segmenter(arch: str, tiny: bool, width: int, **kw):
    """``ddrnet`` (DDRNetSeg, ``width``) or ``unet`` (UNetSeg, its default widths)."""
    from ..models.segmenter import DDRNetSeg
    from ..models.unet_seg import UNetSeg

    if arch == "ddrnet":
        return DDRNetSeg.tiny(**kw) if tiny else DDRNetSeg(width=width, **kw)
    if arch == "unet":
        return UNetSeg.tiny(**kw) if tiny else UNetSeg(**kw)
    raise UsageError(f"unknown segmenter architecture {arch!r} (ddrnet, unet)")


def class_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    counts = np.bincount(labels[labels < num_classes].ravel(), minlength=num_classes).astype(np.float64)
    freq = counts / max(counts.sum(), 1)
    freq[freq == 0] = freq[freq > 0].min() if (freq > 0).any() else 1.0
    w = np.sqrt(np.median(freq) / freq)
    return np.clip(w, 0.2, 5.0)


def evaluate(model, images: np.ndarray, labels: np.ndarray, num_classes: int, device: str, batch: int = 4) -> dict:
    import torch
    import torch.nn.functional as F

    from ..metrics import ConfusionAccumulator

    acc = ConfusionAccumulator(num_classes)
    model.eval()
    scale = model.config["input_scale"] if hasattr(model, "config") else 1.0
    with torch.no_grad():
        for i in range(0, len(images), batch):
            x = torch.from_numpy(images[i:i + batch]).permute(0, 3, 1, 2).float().to(device)
            H, W = x.shape[-2:]
            if scale != 1.0:
                x = F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)
            logits = F.interpolate(model(x), size=(H, W), mode="bilinear", align_corners=False)
            pred = logits.argmax(1).cpu().numpy()
            for p, t in zip(pred, labels[i:i + batch]):
                acc.update(p, t)
    model.train()
    return {"miou": acc.miou(), "pixel_accuracy": acc.pixel_accuracy(),
            "iou_per_class": [None if math.isnan(v) else round(float(v), 4) for v in acc.iou_per_class()]}


def train_segmenter(cfg: SegTrainConfig, progress: bool = True) -> dict:
    import torch
    import torch.nn.functional as F
    from tqdm import tqdm

    from ..models.io import save_model
    from . import distributed
    from .checkpoint import load_checkpoint, save_checkpoint
    from .camera_augment import augment_batch_strong
    from .data import augment_batch, load_pack

    info, device, out = distributed.start_run(cfg.device, cfg.threads, cfg.seed, cfg.out)
    train = load_pack(Path(cfg.train))
    val = load_pack(Path(cfg.val)) if cfg.val else None
    classes = train["meta"]["classes"]
    k = len(classes)
    if k == 0:
        raise UsageError("packed training data has no class table")
    kw = dict(num_classes=k, input_scale=cfg.input_scale, class_names=classes)
    if cfg.augment not in ("standard", "strong"):
        raise UsageError(f"unknown augmentation {cfg.augment!r} (standard, strong)")
    model = build_segmenter(cfg.arch, cfg.tiny, cfg.width, **kw)
    if cfg.init:
        _load_init(model, Path(cfg.init))
    model.to(device)
    ddp_model = distributed.wrap(model, info, device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    weights = torch.tensor(class_weights(train["labels"], k), dtype=torch.float32, device=device)
    n = len(train["images"])
    steps_per_epoch = max(1, n // (cfg.batch * info.world))
    if cfg.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, cfg.max_steps_per_epoch)
    total = steps_per_epoch * cfg.epochs
    warm = steps_per_epoch * cfg.warmup_epochs
    start_epoch, step, best = 0, 0, float("-inf")
    ckpt = out / "checkpoint"
    if cfg.resume and (ckpt / "trainer.json").exists():
        c = load_checkpoint(ckpt, {"model": model}, {"model": opt}, device)
        start_epoch, step, best = c["epoch"], c["step"], c["best"]
        if info.main:
            print(f"resumed from {ckpt} at epoch {start_epoch}, step {step}, best mIoU {best:.4f}")
    g = torch.Generator().manual_seed(cfg.seed * 1000 + info.rank + start_epoch)
    rng = np.random.default_rng(cfg.seed * 1000 + info.rank + start_epoch)
    log = open(out / "log.jsonl", "a") if info.main else None
    crop = tuple(int(round(c * cfg.input_scale)) for c in cfg.crop)
    bar = tqdm(total=total, initial=step, disable=not (progress and info.main), unit="step", desc="segmenter")
    result = {}
    try:
        for epoch in range(start_epoch, cfg.epochs):
            t0 = time.time()
            losses = []
            perm = torch.randperm(n, generator=g).numpy()
            for it in range(steps_per_epoch):
                idx = np.sort(perm[(it * info.world + info.rank) * cfg.batch:][: cfg.batch])
                if len(idx) == 0:
                    idx = perm[: cfg.batch]
                imgs, labs = train["images"][idx], train["labels"][idx]
                if cfg.input_scale != 1.0:
                    lo = (cfg.input_scale * 0.75, cfg.input_scale * 1.5)
                else:
                    lo = (0.75, 1.5)
                if cfg.augment == "strong":
                    x, y = augment_batch_strong(imgs, labs, crop, rng,
                                                (0.5 * cfg.input_scale, 2.0 * cfg.input_scale))
                else:
                    x, y = augment_batch(imgs, labs, crop, lo, g)
                x, y = x.to(device), y.to(device)
                lr = cfg.lr * (step + 1) / warm if step < warm else cfg.lr * (1 - (step - warm) / max(1, total - warm)) ** 0.9
                for group in opt.param_groups:
                    group["lr"] = lr
                logits, aux = ddp_model(x, with_aux=True)
                logits = F.interpolate(logits, size=y.shape[-2:], mode="bilinear", align_corners=False)
                aux = F.interpolate(aux, size=y.shape[-2:], mode="bilinear", align_corners=False)
                loss = F.cross_entropy(logits, y, weight=weights, ignore_index=255) + \
                    0.4 * F.cross_entropy(aux, y, weight=weights, ignore_index=255)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
                losses.append(float(loss.detach()))
                bar.update(1)
                bar.set_postfix(epoch=epoch, loss=f"{np.mean(losses[-20:]):.3f}", best=f"{best:.3f}")
            rec = {"epoch": epoch + 1, "step": step, "loss": float(np.mean(losses)), "lr": lr,
                   "epoch_s": round(time.time() - t0, 1)}
            if info.main:
                if val is not None:
                    ev = evaluate(model, val["images"], val["labels"], k, device)
                    rec.update(val_miou=ev["miou"], val_pixel_accuracy=ev["pixel_accuracy"],
                               val_iou_per_class=ev["iou_per_class"])
                    score = ev["miou"]
                else:
                    score = -rec["loss"]
                if score > best:
                    best = score
                    rec["best"] = True
                    card = _card(cfg, rec, classes, model)
                    save_model(model, out / "model", card=card, extra={"train": asdict(cfg), "metrics": rec})
                log.write(json.dumps(rec) + "\n")
                log.flush()
                save_checkpoint(ckpt, {"model": model}, {"model": opt},
                                {"epoch": epoch + 1, "step": step, "best": best})
                bar.write(json.dumps({k_: v for k_, v in rec.items() if k_ != "val_iou_per_class"}))
            distributed.barrier(info)
            result = rec
    finally:
        bar.close()
        if log:
            log.close()
        distributed.cleanup(info)
    result["best"] = best
    return result


def _load_init(model, folder: Path) -> None:
    """Weights of a saved model with the same configuration (fine-tuning); a mismatch is a UsageError."""
    from ..models.io import load_model

    src = load_model(folder)
    own, theirs = model.state_dict(), src.state_dict()
    bad = [k for k in own if k not in theirs or theirs[k].shape != own[k].shape]
    if bad or set(theirs) - set(own):
        raise UsageError(f"--init {folder}: its network does not match this configuration "
                         f"({len(bad)} tensors differ, e.g. {bad[:2]})")
    model.load_state_dict({k: v.float() for k, v in theirs.items()})


def _card(cfg, rec, classes, model) -> str:
    params = sum(p.numel() for p in model.parameters())
    ious = rec.get("val_iou_per_class") or []
    per_class = ", ".join(f"{c} {v:.3f}" for c, v in zip(classes, ious) if v is not None)
    kind = f"DDRNet-style, width {cfg.width}" if cfg.arch == "ddrnet" else f"U-Net, widths {model.config['widths']}"
    start = f"fine-tuned from {cfg.init}" if cfg.init else "trained from scratch (no ImageNet weights)"
    aug = ("strong camera augmentation (rescale 0.5-2x, aspect, colour, gamma, white balance, blur, noise, "
           "JPEG, vignetting)" if cfg.augment == "strong" else "standard augmentation (scale 0.75-1.5x, mild jitter)")
    return (f"# semcomp segmenter ({kind}, seed {cfg.seed})\n\n"
            f"- Data: {cfg.train} (validation: {cfg.val}); {start}; {aug}.\n"
            f"- Steps: {rec['step']} ({rec['epoch']} epochs of batch {cfg.batch}, crop {cfg.crop}, "
            f"input scale {cfg.input_scale}), AdamW lr {cfg.lr}, poly decay.\n"
            f"- Parameters: {params / 1e6:.2f} M.\n"
            f"- Validation mIoU: {rec.get('val_miou', float('nan')):.4f}, pixel accuracy "
            f"{rec.get('val_pixel_accuracy', float('nan')):.4f} (full label resolution).\n"
            f"- Per class IoU: {per_class}\n")
