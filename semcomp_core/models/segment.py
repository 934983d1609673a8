"""Running a segmentation model on numpy frames (shared by the codec, the benchmark and the nodes)."""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import UsageError
from ..paths import WEIGHTS_DIR


def logits_for(model, image: np.ndarray, device: str = "cpu", size: tuple[int, int] | None = None,
               runner=None):
    """Logits (1, K, h, w) for an (H, W, 3) uint8 frame; resampled to ``size`` when given
    (area pooling when shrinking, bilinear when enlarging). ``runner`` (a
    :class:`semcomp_core.inference.Runner` of ``model``) runs the network instead of the module."""
    import torch
    import torch.nn.functional as F

    image = np.ascontiguousarray(image)
    if not image.flags.writeable:
        image = image.copy()
    x = torch.from_numpy(image).to(device).permute(2, 0, 1)[None].float()
    scale = model.config.get("input_scale", 1.0)
    if scale != 1.0:
        x = F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)
    logits = model(x) if runner is None else torch.from_numpy(runner(image=x)).to(device)
    if size is not None and tuple(logits.shape[-2:]) != tuple(size):
        if logits.shape[-2] > size[0]:
            logits = F.adaptive_avg_pool2d(logits, size)
        else:
            logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
    return logits


def default_segmenter_dir() -> Path:
    return WEIGHTS_DIR / "segmenter"


def default_eval_segmenter_dir() -> Path:
    """The shipped independent evaluation segmenter (a U-Net, not the codec's encoder)."""
    return WEIGHTS_DIR / "eval_segmenter"


class Segmenter:
    """Callable ``image -> (H, W) uint8 labels`` at full resolution; loads a saved model folder."""

    def __init__(self, path: str | Path = "default", device: str = "cpu") -> None:
        from .io import load_model

        folder = default_segmenter_dir() if str(path) == "default" else Path(path)
        from ..devices import check_device
        check_device(device)
        if not (folder / "config.json").exists():
            raise UsageError(f"no segmenter at {folder}")
        self.path = folder
        self.device = device
        self.model = load_model(folder, device)
        self.num_classes = self.model.num_classes
        self.class_names = self.model.config.get("class_names")

    def __call__(self, image: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            logits = logits_for(self.model, image, self.device, size=image.shape[:2])
            return logits.argmax(1)[0].to(torch.uint8).cpu().numpy()


class _FactorySegmenter:
    """A segmenter from ``package.module:factory``: ``factory(device) -> (callable, num_classes)``."""

    def __init__(self, spec: str, device: str) -> None:
        module_name, _, attr = spec.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise UsageError(f"cannot load segmenter {spec!r}: {exc}") from None
        self.fn, self.num_classes = factory(device)
        self.num_classes = int(self.num_classes)
        self.path = spec

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return self.fn(image)


#: what ``auto`` / a shipped name means in :func:`open_segmenter`
SHIPPED_SEGMENTERS: dict[str, Callable[[], Path]] = {
    "default": default_segmenter_dir, "eval": default_eval_segmenter_dir}


def open_segmenter(spec: str, device: str = "cpu", auto: str = "default"):
    """The one way the CLI, the benchmark and the nodes get a segmenter for semantic metrics.

    ``spec``: ``none`` or empty (no segmenter: returns None); ``auto`` (the shipped model named by
    ``auto`` when it is installed, else None); ``default`` (the codec's shipped encoder
    segmenter); ``eval`` (the shipped independent evaluation U-Net); a model folder
    (config.json + model.safetensors); or ``package.module:factory`` where ``factory(device)``
    returns ``(callable image -> label map, number of classes)``. The result is callable
    ``image -> (H, W) labels`` and has ``num_classes``. UsageError if it cannot be loaded.
    """
    spec = str(spec or "").strip()
    if spec in ("", "none"):
        return None
    if spec == "auto":
        folder = SHIPPED_SEGMENTERS[auto]()
        return Segmenter(folder, device) if (folder / "config.json").exists() else None
    if spec in SHIPPED_SEGMENTERS:
        return Segmenter(SHIPPED_SEGMENTERS[spec](), device)
    if ":" in spec and not Path(spec).exists():
        return _FactorySegmenter(spec, device)
    return Segmenter(spec, device)
