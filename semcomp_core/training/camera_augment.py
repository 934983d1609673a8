"""Strong camera augmentation for training (``--augment strong``): what another camera does to a frame.

Geometric: random rescale 0.5-2x with an independent aspect change (x0.8-1.25 on one axis), a random
crop (labels padded with 255 = ignore), horizontal flip. Photometric, each drawn with probability
``p`` and random strength: brightness/contrast/saturation jitter, gamma 0.5-2.2 with exposure
0.6-1.3, white-balance gains 0.75-1.3 per channel, Gaussian blur sigma 0.3-2.5 px, Gaussian sensor
noise sigma 2-14 levels, JPEG round trip at quality 15-85 (block and ringing artefacts, the closest
thing to HEVC intra artefacts that OpenCV encodes in microseconds), vignetting 0.1-0.6.

The ranges are chosen to cover what cameras do, not the robustness suite's fixed settings
(``bench/camera_transforms.py``), which stay a held-out test: nothing here reads them.

:func:`augment_sample` works on one (H, W, 3) uint8 image and its (H, W) label with a
``numpy.random.Generator``; :func:`augment_batch_strong` returns float tensors like
``data.augment_batch``.
"""
from __future__ import annotations

import numpy as np

P_PHOTOMETRIC = 0.35     # each photometric op independently


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def geometric(image: np.ndarray, label: np.ndarray, crop: tuple[int, int], rng: np.random.Generator,
              scale_range=(0.5, 2.0)):
    """Rescale (log-uniform in ``scale_range``, aspect jitter), random crop to ``crop`` (h, w), flip."""
    import cv2

    H, W = image.shape[:2]
    s = float(np.exp(rng.uniform(np.log(scale_range[0]), np.log(scale_range[1]))))
    a = float(np.exp(rng.uniform(np.log(0.8), np.log(1.25))))
    sy, sx = s * np.sqrt(a), s / np.sqrt(a)
    nh, nw = max(int(H * sy + 0.5), 8), max(int(W * sx + 0.5), 8)
    img = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR if s >= 1 else cv2.INTER_AREA)
    lab = cv2.resize(label, (nw, nh), interpolation=cv2.INTER_NEAREST_EXACT)
    ch, cw = crop
    ph, pw = max(ch - nh, 0), max(cw - nw, 0)
    if ph or pw:
        img = np.pad(img, ((0, ph), (0, pw), (0, 0)), mode="reflect" if rng.random() < 0.5 else "constant")
        lab = np.pad(lab, ((0, ph), (0, pw)), constant_values=255)
    top = int(rng.integers(0, img.shape[0] - ch + 1))
    left = int(rng.integers(0, img.shape[1] - cw + 1))
    img, lab = img[top:top + ch, left:left + cw], lab[top:top + ch, left:left + cw]
    if rng.random() < 0.5:
        img, lab = img[:, ::-1], lab[:, ::-1]
    return np.ascontiguousarray(img), np.ascontiguousarray(lab)


def photometric(image: np.ndarray, rng: np.random.Generator, p: float = P_PHOTOMETRIC) -> np.ndarray:
    """Random camera-style photometric changes of an (H, W, 3) uint8 RGB image."""
    import cv2

    x = image.astype(np.float32)
    if rng.random() < p:          # brightness / contrast / saturation
        mean = x.mean()
        x = (x - mean) * rng.uniform(0.6, 1.4) + mean * rng.uniform(0.6, 1.4)
        grey = x.mean(axis=2, keepdims=True)
        x = grey + (x - grey) * rng.uniform(0.3, 1.6)
    if rng.random() < p:          # white balance
        x = x * rng.uniform(0.75, 1.3, size=3).astype(np.float32)
    if rng.random() < p:          # gamma and exposure
        x = 255.0 * rng.uniform(0.6, 1.3) * (np.clip(x, 0, 255) / 255.0) ** rng.uniform(0.5, 2.2)
    if rng.random() < p:          # vignetting
        h, w = x.shape[:2]
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        cy, cx = rng.uniform(0.35, 0.65) * h, rng.uniform(0.35, 0.65) * w
        r2 = ((yy - cy) ** 2 + (xx - cx) ** 2) / (cy ** 2 + cx ** 2)
        x = x * (1 - rng.uniform(0.1, 0.6) * r2)[..., None]
    out = _u8(x)
    if rng.random() < p:          # defocus
        out = cv2.GaussianBlur(out, (0, 0), sigmaX=float(rng.uniform(0.3, 2.5)))
    if rng.random() < p:          # sensor noise
        out = _u8(out.astype(np.float32) + rng.normal(0, rng.uniform(2, 14), out.shape).astype(np.float32))
    if rng.random() < p:          # coding artefacts
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(out[:, :, ::-1]),
                               [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(15, 86))])
        if ok:
            out = cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1]
    return np.ascontiguousarray(out)


def augment_sample(image, label, crop, rng, scale_range=(0.5, 2.0), p: float = P_PHOTOMETRIC):
    img, lab = geometric(image, label, crop, rng, scale_range)
    return photometric(img, rng, p), lab


def augment_batch_strong(images, labels, crop, rng: np.random.Generator, scale_range=(0.5, 2.0),
                         p: float = P_PHOTOMETRIC):
    """Like ``data.augment_batch`` (float tensors (B,3,h,w) 0..255 and long labels), strong variant."""
    import torch

    xs, ys = zip(*(augment_sample(i, l, crop, rng, scale_range, p) for i, l in zip(images, labels)))
    x = torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).float()
    y = torch.from_numpy(np.stack(ys).astype(np.int64))
    return x, y
