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
