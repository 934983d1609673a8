"""Camera-style transforms of a labelled frame, for the robustness suite (``semcomp robustness``).

Each transform is a callable ``(image, label, rng) -> (image, label)``: ``image`` (H, W, 3) uint8
RGB, ``label`` (H, W) uint8 train ids with 255 = ignore, or None; ``rng`` a
``numpy.random.Generator`` (only ``noise`` draws from it, so every transform is deterministic given
the generator's seed). Outputs are new arrays, (H', W', 3) uint8 and (H', W') uint8.

Geometric transforms resample the label with nearest neighbour (no new values; 255 stays 255) and
the image with bicubic interpolation; photometric transforms return the label unchanged.

:data:`TRANSFORMS` (name -> transform, in report order):

* ``identity`` -- the frame as it is.
* ``cityscapes-1024x512`` / ``cityscapes-2048x1024`` -- another camera: the central band of the
  frame with the 2:1 aspect ratio (CamVid 480x360: the full width, rows 60..299) upscaled to a
  Cityscapes-size frame (x2.13 / x4.27: objects many more pixels tall than in training).
* ``narrow-fov`` -- a longer focal length: the central 70 % of each side upscaled back to the
  input size (x1.43).
* ``color-cast-warm`` / ``color-cast-cool`` -- white-balance gains on the 8-bit R, G, B values:
  (1.15, 1.0, 0.8) / (0.85, 1.0, 1.2).
* ``dark-gamma`` -- a camera without the display gamma, under-exposed:
  ``255 * 0.8 * (x / 255) ** 2.2`` (a mid grey 128 becomes 45).
* ``blur`` -- Gaussian blur, sigma 2 px (defocus / motion-free soft optics).
* ``noise`` -- additive Gaussian sensor noise, sigma 8 levels, independent per pixel and channel.
* ``jpeg-q30`` -- a JPEG round trip at quality 30 (4:2:0, OpenCV/libjpeg): blocking and ringing.
* ``vignetting`` -- radial fall-off ``1 - 0.4 * (r / r_corner) ** 2`` (corners at 60 %).

Every transform carries ``params`` (its exact parameters, written to ``robustness.json``).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

def _as_u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _resize(image: np.ndarray, label: np.ndarray | None, size_wh: tuple[int, int]):
    """Image bicubic (saturated to 0..255), label nearest neighbour; both pixel-centre aligned
    (``INTER_NEAREST_EXACT``: plain ``INTER_NEAREST`` is shifted by half a source pixel)."""
    import cv2

    out = cv2.resize(np.ascontiguousarray(image), size_wh, interpolation=cv2.INTER_CUBIC)
    lab = None if label is None else cv2.resize(np.ascontiguousarray(label), size_wh,
                                                interpolation=cv2.INTER_NEAREST_EXACT)
    return out, lab


def _central_crop(image: np.ndarray, label: np.ndarray | None, h: int, w: int, top: int, left: int):
    crop = image[top:top + h, left:left + w]
    return crop, (None if label is None else label[top:top + h, left:left + w])


def _check(image: np.ndarray, label: np.ndarray | None) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
    if label is not None and label.shape != image.shape[:2]:
        raise ValueError(f"label shape {label.shape} does not match image {image.shape}")


class CameraTransform:
    """A named transform with its parameters; subclasses implement :meth:`apply`."""

    name = ""
    geometric = False

    def __init__(self, name: str, **params) -> None:
        self.name = name
        self.params = params

    def __call__(self, image: np.ndarray, label: np.ndarray | None, rng: np.random.Generator | None = None):
        _check(image, label)
        out, lab = self.apply(image, label, rng)
        return np.ascontiguousarray(out, dtype=np.uint8), (None if lab is None else np.ascontiguousarray(lab))

    def apply(self, image, label, rng):  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> dict:
        return {"name": self.name, "kind": type(self).__name__, "geometric": self.geometric, **self.params}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self.params})"


class Identity(CameraTransform):
    def apply(self, image, label, rng):
        return image.copy(), (None if label is None else label.copy())


class AspectCropResize(CameraTransform):
    """The largest central crop with the output's aspect ratio, resized to ``width`` x ``height``."""

    geometric = True

    def __init__(self, name: str, width: int, height: int) -> None:
        super().__init__(name, width=width, height=height, crop="largest central crop of aspect width:height",
                         image_interpolation="bicubic", label_interpolation="nearest")

    def apply(self, image, label, rng):
        H, W = image.shape[:2]
        w_out, h_out = self.params["width"], self.params["height"]
        if W * h_out >= H * w_out:      # wider than the target: crop the width
            h, w = H, max(1, round(H * w_out / h_out))
        else:                           # taller (CamVid 4:3 -> 2:1): crop a central band of rows
            h, w = max(1, round(W * h_out / w_out)), W
        crop, lab = _central_crop(image, label, h, w, (H - h) // 2, (W - w) // 2)
        return _resize(crop, lab, (w_out, h_out))


class CentralZoom(CameraTransform):
    """The central ``fraction`` of each side, resized back to the input size (a longer focal length)."""

    geometric = True

    def __init__(self, name: str, fraction: float) -> None:
        super().__init__(name, fraction=fraction, image_interpolation="bicubic", label_interpolation="nearest")

    def apply(self, image, label, rng):
        H, W = image.shape[:2]
        f = self.params["fraction"]
        h, w = max(1, round(H * f)), max(1, round(W * f))
        crop, lab = _central_crop(image, label, h, w, (H - h) // 2, (W - w) // 2)
        return _resize(crop, lab, (W, H))


class ChannelGains(CameraTransform):
    """White balance: the 8-bit R, G, B values times ``gains`` (saturated)."""

    def __init__(self, name: str, gains: tuple[float, float, float]) -> None:
        super().__init__(name, gains=list(gains), space="8-bit sRGB values")

    def apply(self, image, label, rng):
        g = np.asarray(self.params["gains"], np.float32)
        return _as_u8(image.astype(np.float32) * g), label


class GammaExposure(CameraTransform):
    """``255 * exposure * (x / 255) ** gamma``: gamma > 1 darkens the mid-tones."""

    def __init__(self, name: str, gamma: float, exposure: float) -> None:
        super().__init__(name, gamma=gamma, exposure=exposure, formula="255 * exposure * (x / 255) ** gamma")

    def apply(self, image, label, rng):
        x = np.arange(256, dtype=np.float64) / 255.0
        lut = _as_u8(255.0 * self.params["exposure"] * x ** self.params["gamma"])
        return lut[image], label


class GaussianBlur(CameraTransform):
    def __init__(self, name: str, sigma: float) -> None:
        super().__init__(name, sigma_px=sigma, kernel="OpenCV GaussianBlur, size from sigma, border reflect-101")

    def apply(self, image, label, rng):
        import cv2

        return cv2.GaussianBlur(image, (0, 0), sigmaX=self.params["sigma_px"]), label


class GaussianNoise(CameraTransform):
    """Additive N(0, sigma^2) per pixel and channel, drawn from ``rng``, rounded and saturated."""

    def __init__(self, name: str, sigma: float) -> None:
        super().__init__(name, sigma_levels=sigma, seeded="numpy Generator per (seed, transform, frame)")

    def apply(self, image, label, rng):
        if rng is None:
            raise ValueError(f"{self.name}: needs a numpy random Generator")
        noise = rng.normal(0.0, self.params["sigma_levels"], image.shape).astype(np.float32)
        return _as_u8(image.astype(np.float32) + noise), label


class JpegRoundTrip(CameraTransform):
    def __init__(self, name: str, quality: int) -> None:
        super().__init__(name, quality=quality, encoder="OpenCV imencode (libjpeg), 4:2:0")

    def apply(self, image, label, rng):
        import cv2

        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(image[:, :, ::-1]),
                               [cv2.IMWRITE_JPEG_QUALITY, int(self.params["quality"])])
        if not ok:  # pragma: no cover
            raise RuntimeError("JPEG encoding failed")
        return cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1], label


class Vignetting(CameraTransform):
    """Gain ``1 - strength * (r / r_corner) ** 2`` about the frame centre."""

    def __init__(self, name: str, strength: float) -> None:
        super().__init__(name, strength=strength, formula="1 - strength * (r / r_corner) ** 2")

    def apply(self, image, label, rng):
        H, W = image.shape[:2]
        cy, cx = (H - 1) / 2, (W - 1) / 2
        y = np.arange(H, dtype=np.float32) - cy
        x = np.arange(W, dtype=np.float32) - cx
        r2 = (y[:, None] ** 2 + x[None, :] ** 2) / max(cy ** 2 + cx ** 2, 1.0)   # (r / r_corner) ** 2, pixels
        gain = 1.0 - self.params["strength"] * r2
        return _as_u8(image.astype(np.float32) * gain[:, :, None]), label


def _registry(*items: CameraTransform) -> dict[str, CameraTransform]:
    return {t.name: t for t in items}


#: name -> transform, in the order of the report
TRANSFORMS: dict[str, Callable] = _registry(
    Identity("identity"),
    AspectCropResize("cityscapes-1024x512", width=1024, height=512),
    AspectCropResize("cityscapes-2048x1024", width=2048, height=1024),
    CentralZoom("narrow-fov", fraction=0.7),
    ChannelGains("color-cast-warm", (1.15, 1.0, 0.8)),
    ChannelGains("color-cast-cool", (0.85, 1.0, 1.2)),
    GammaExposure("dark-gamma", gamma=2.2, exposure=0.8),
    GaussianBlur("blur", sigma=2.0),
    GaussianNoise("noise", sigma=8.0),
    JpegRoundTrip("jpeg-q30", quality=30),
    Vignetting("vignetting", strength=0.4),
)


def parse_transforms(text: str) -> list[str]:
    """Names of ``all`` or a comma-separated list; UsageError naming the valid ones otherwise."""
    from ..errors import UsageError

    text = (text or "").strip()
    if text in ("", "all"):
        return list(TRANSFORMS)
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [n for n in names if n not in TRANSFORMS]
    if unknown:
        raise UsageError(f"unknown transform {', '.join(map(repr, unknown))}; valid: all, {', '.join(TRANSFORMS)}")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise UsageError(f"transform listed twice: {', '.join(dup)}")
    return names


def frame_rng(seed: int, transform: str, frame: str) -> np.random.Generator:
    """The generator for one (transform, frame): independent of order, --limit and other transforms."""
    import zlib

    return np.random.default_rng([int(seed), zlib.crc32(transform.encode()), zlib.crc32(frame.encode())])
