"""Saving and loading models: constructor config as JSON beside safetensors weights (no pickles).

A saved model is a folder::

    config.json        {"model": "<registry name>", "config": {constructor kwargs}, "format": 1}
    model.safetensors  weights (fp32 or fp16; loaded into the model's dtype)
    MODEL_CARD.md      optional: data, steps, metrics

:func:`load_model` rebuilds the model with ``MODELS.get(name)(**config)`` and
loads the tensors strictly (missing or unexpected keys raise).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..registry import Registry

MODELS: Registry[type] = Registry("model")
FORMAT = 1


def register_model(name: str):
    def wrap(cls):
        MODELS.register(name, cls)
        cls.registry_name = name
        return cls
    return wrap


def save_model(model, folder: str | Path, *, fp16: bool = False, card: str | None = None,
               extra: dict[str, Any] | None = None) -> Path:
    import torch
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {}
    for k, v in model.state_dict().items():
        v = v.detach().cpu().contiguous()
        if fp16 and v.is_floating_point():
            v = v.to(torch.float16)
        state[k] = v
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    doc = {"format": FORMAT, "model": model.registry_name, "config": model.config}
    if extra:
        doc["extra"] = extra
    (folder / "config.json").write_text(json.dumps(doc, indent=2) + "\n")
    if card:
        (folder / "MODEL_CARD.md").write_text(card)
    return folder


def read_config(folder: str | Path) -> dict:
    path = Path(folder) / "config.json"
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"no model at {folder} (missing config.json)") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    if doc.get("format") != FORMAT or "model" not in doc or not isinstance(doc.get("config"), dict):
        raise UsageError(f"{path} is not a semcomp model config (format {FORMAT})")
    return doc


def load_model(folder: str | Path, device: str = "cpu"):
    """Rebuild a model from ``folder`` and load its weights (eval mode)."""
    import torch
    from safetensors.torch import load_file

    doc = read_config(folder)
    model = MODELS.get(doc["model"])(**doc["config"])
    weights = Path(folder) / "model.safetensors"
    if not weights.exists():
        raise UsageError(f"no weights at {weights}")
    state = load_file(str(weights))
    own = model.state_dict()
    state = {k: v.to(own[k].dtype) if k in own else v for k, v in state.items()}
    model.load_state_dict(state, strict=True)
    model.eval()
    return model.to(torch.device(device))
