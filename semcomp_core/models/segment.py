"""Running a segmentation model on numpy frames (shared by the codec, the benchmark and the nodes)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UsageError
from ..paths import WEIGHTS_DIR


def logits_for(model, image: np.ndarray, device: str = "cpu", size: tuple[int, int] | None = None):
    """Logits (1, K, h, w) for an (H, W, 3) uint8 frame; resampled to ``size`` when given
    (area pooling when shrinking, bilinear when enlarging)."""
    import torch
    import torch.nn.functional as F

    image = np.ascontiguousarray(image)
    if not image.flags.writeable:
        image = image.copy()
    x = torch.from_numpy(image).to(device).permute(2, 0, 1)[None].float()
    scale = model.config.get("input_scale", 1.0)
    if scale != 1.0:
        x = F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)
    logits = model(x)
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
