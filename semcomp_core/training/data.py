"""Training data: pack a dataset split into one compact array file, and augment batches on the fly.

``semcomp train pack --dataset camvid --data ROOT --split train -o camvid_train.npz [--size 360x480]``
writes ``images`` (N, H, W, 3) uint8, ``labels`` (N, H, W) uint8 train ids
(255 ignore), ``names`` and the class table — small enough to carry to a GPU
machine (CamVid train: ~190 MB raw; ``--size 180x240`` gives ~48 MB).
Frames of other sizes are resized (area for images, nearest for labels).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import UsageError


def parse_size(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"size must look like HEIGHTxWIDTH, e.g. 360x480 (got {text!r})") from None
    if not (8 <= h <= 4096 and 8 <= w <= 4096):
        raise UsageError(f"size {h}x{w} out of range")
    return h, w


def pack_dataset(ds, out: Path, size: tuple[int, int] | None = None, progress: bool = True) -> Path:
    from tqdm import tqdm

    n = len(ds)
    if n == 0:
        raise UsageError("dataset is empty")
    first = ds.load_image(0)
    h, w = size or first.shape[:2]
    images = np.zeros((n, h, w, 3), np.uint8)
    labels = np.full((n, h, w), 255, np.uint8)
    for i in tqdm(range(n), disable=not progress, desc="pack", unit="img"):
        img, lab = ds[i]
        if img.shape[:2] != (h, w):
            img = np.asarray(Image.fromarray(img).resize((w, h), Image.Resampling.BOX))
            if lab is not None:
                lab = np.asarray(Image.fromarray(lab).resize((w, h), Image.Resampling.NEAREST))
        images[i] = img
        if lab is not None:
            labels[i] = lab
    meta = {"dataset": ds.name, "split": getattr(ds, "split", None), "classes": list(ds.classes),
            "palette": np.asarray(ds.palette).tolist()}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, images=images, labels=labels, names=np.array([s.name for s in ds.samples]),
             meta=np.array(json.dumps(meta)))
    return out


def load_pack(path: Path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as z:
            d = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read packed data {path}: {exc}") from None
    d["meta"] = json.loads(str(d["meta"]))
    return d


def augment_batch(images, labels, crop: tuple[int, int], scale_range=(0.75, 1.5), generator=None):
    """Random scale, crop (padding labels with 255), horizontal flip, mild photometric jitter.

    ``images`` uint8 (B, H, W, 3) numpy, ``labels`` (B, H, W). Returns float tensors (B,3,h,w) 0..255
    and long labels (B,h,w).
    """
    import torch
    import torch.nn.functional as F

    g = generator
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    y = torch.from_numpy(labels).long()
    out_x, out_y = [], []
    ch, cw = crop
    for i in range(x.shape[0]):
        s = float(torch.empty(1).uniform_(*scale_range, generator=g))
        H, W = x.shape[2], x.shape[3]
        nh, nw = max(int(H * s + 0.5), 8), max(int(W * s + 0.5), 8)
        xi = F.interpolate(x[i:i + 1], size=(nh, nw), mode="bilinear", align_corners=False)
        yi = F.interpolate(y[i:i + 1, None].float(), size=(nh, nw), mode="nearest").long()[:, 0]
        ph, pw = max(ch - nh, 0), max(cw - nw, 0)
        if ph or pw:
            xi = F.pad(xi, (0, pw, 0, ph), value=0.0)
            yi = F.pad(yi, (0, pw, 0, ph), value=255)
        top = int(torch.randint(0, xi.shape[2] - ch + 1, (1,), generator=g))
        left = int(torch.randint(0, xi.shape[3] - cw + 1, (1,), generator=g))
        xi = xi[:, :, top:top + ch, left:left + cw]
        yi = yi[:, top:top + ch, left:left + cw]
        if bool(torch.rand(1, generator=g) < 0.5):
            xi, yi = xi.flip(-1), yi.flip(-1)
        gain = float(torch.empty(1).uniform_(0.8, 1.2, generator=g))
        bias = float(torch.empty(1).uniform_(-20, 20, generator=g))
        xi = (xi * gain + bias).clamp(0, 255)
        out_x.append(xi)
        out_y.append(yi)
    return torch.cat(out_x), torch.cat(out_y)
