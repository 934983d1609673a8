"""Parameter and multiply-accumulate counts (conv and linear layers) via forward hooks."""
from __future__ import annotations


def count_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model, *inputs) -> int:
    import torch
    import torch.nn as nn

    total = [0]

    def conv_hook(m, inp, out):
        k = m.kernel_size[0] * m.kernel_size[1]
        total[0] += out.numel() * (m.in_channels // m.groups) * k

    def lin_hook(m, inp, out):
        total[0] += out.numel() * m.in_features

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(lin_hook))
    try:
        with torch.no_grad():
            model(*inputs)
    finally:
        for h in hooks:
            h.remove()
    return total[0]


def model_report(segmenter: str = "default", decoder: str = "default", sizes: str = "360x480,512x1024",
                 eval_segmenter: str = "default") -> list[dict]:
    """Params and GMACs of the segmenter, the generator and (when present or given; ``none`` skips it)
    the independent evaluation segmenter at each HxW in ``sizes``, then of the shipped bpg-se and gc
    networks."""
    from pathlib import Path

    import torch

    from ..errors import UsageError
    from ..paths import WEIGHTS_DIR
    from ..training.data import parse_size
    from .io import load_model

    rows = []
    shapes = [parse_size(s) for s in sizes.split(",") if s.strip()]
    for role, spec in (("segmenter", segmenter), ("decoder", decoder), ("eval_segmenter", eval_segmenter)):
        folder = WEIGHTS_DIR / role if spec == "default" else Path(spec)
        if role == "eval_segmenter" and (spec == "none" or (spec == "default" and not folder.exists())):
            continue
        if not (folder / "config.json").exists():
            raise UsageError(f"no {role} model at {folder}")
        model = load_model(folder)
        for h, w in shapes:
            if role.endswith("segmenter"):
                s = model.config.get("input_scale", 1.0)
                inputs = (torch.zeros(1, 3, int(h * s), int(w * s)),)
            else:
                hp, wp = 8 * -(-h // 8), 8 * -(-w // 8)
                inputs = (torch.zeros(1, model.num_classes, hp, wp), torch.zeros(1, 3, hp, wp))
            rows.append({"model": role, "name": model.registry_name, "folder": str(folder),
                         "params_M": round(count_params(model) / 1e6, 3), "height": h, "width": w,
                         "GMACs": round(count_macs(model, *inputs) / 1e9, 3)})
    # the other codecs' shipped networks (bpg-se, gc), with their inference inputs at each size
    import numpy as np

    from ..inference.base import NETWORKS

    for role, kind in (("bpg_se", "enhancer"), ("gc_encoder", "gc-encoder"), ("gc_decoder", "gc-decoder"),
                       ("ldm/vae", "vae-decoder"), ("ldm/unet", "ldm-unet"), ("ldm/clip", "clip-tower")):
        # the diffusion renderer: the VAE decoder once per frame, the UNet once per DDIM step
        folder = WEIGHTS_DIR / role
        if not (folder / "config.json").exists():
            continue
        model = load_model(folder)
        spec = NETWORKS[kind]
        for h, w in shapes:
            feeds = spec.example(model, 8 * -(-h // 8), 8 * -(-w // 8), np.random.default_rng(0))
            inputs = [torch.from_numpy(feeds[n]) for n in spec.inputs]
            rows.append({"model": role, "name": model.registry_name, "folder": str(folder),
                         "params_M": round(count_params(model) / 1e6, 3), "height": h, "width": w,
                         "GMACs": round(count_macs(model, *inputs) / 1e9, 3)})
    return rows
