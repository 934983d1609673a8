"""The PyTorch backend: the module itself, channels-last, under inference mode."""
from __future__ import annotations

import numpy as np

from .base import Runner


class TorchRunner(Runner):
    backend = "torch"

    def __init__(self, kind: str, model, device: str = "cpu") -> None:
        import torch

        super().__init__(kind)
        self.model = model.to(device=device, memory_format=torch.channels_last).eval()
        self.device = device

    @property
    def provider(self) -> str:
        import torch

        return f"torch {torch.__version__} {self.device}"

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            args = [(v if isinstance(v, torch.Tensor) else torch.from_numpy(np.asarray(v, np.float32)))
                    .to(self.device).contiguous(memory_format=torch.channels_last)
                    for v in (feeds[n] for n in self.spec.inputs)]
            if self.kind == "generator":   # placeholders of a generator without noise / optional layers
                if not self.model.config.get("noise_channels", 0):
                    args[2] = None
                if not self.model.config.get("optional_layers"):
                    args[3] = None
            out = self.model(*args)
            return out.float().cpu().contiguous().numpy()
