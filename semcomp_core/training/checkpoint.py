"""Resumable training checkpoints without pickles: safetensors for tensors, JSON for the rest.

A checkpoint folder holds ``<name>.safetensors`` for each module and
optimizer (optimizer state flattened to ``state.<param index>.<key>``) and
``trainer.json`` with the optimizer hyper-parameters and loop counters.
Written to a temporary folder and renamed, so an interrupted save never
leaves a half checkpoint.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path


def _opt_to_flat(opt):
    import torch

    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"state.{idx}.{k}"] = v.detach().cpu().contiguous()
            else:
                scalars[f"{idx}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _opt_from_flat(opt, tensors, meta):
    state: dict = {}
    for key, v in tensors.items():
        _, idx, k = key.split(".", 2)
        state.setdefault(int(idx), {})[k] = v
    for key, v in meta["scalars"].items():
        idx, k = key.split(".", 1)
        state.setdefault(int(idx), {})[k] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_checkpoint(folder: Path, modules: dict, optimizers: dict, counters: dict) -> None:
    from safetensors.torch import save_file

    folder = Path(folder)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    doc = {"counters": counters, "optimizers": {}}
    for name, m in modules.items():
        m = getattr(m, "module", m)  # unwrap DDP
        save_file({k: v.detach().cpu().contiguous() for k, v in m.state_dict().items()},
                  str(tmp / f"{name}.safetensors"))
    for name, opt in optimizers.items():
        tensors, meta = _opt_to_flat(opt)
        save_file(tensors, str(tmp / f"opt_{name}.safetensors"))
        doc["optimizers"][name] = meta
    (tmp / "trainer.json").write_text(json.dumps(doc))
    old = folder.with_name(folder.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        folder.rename(old)
    tmp.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(folder: Path, modules: dict, optimizers: dict, device="cpu") -> dict:
    from safetensors.torch import load_file

    folder = Path(folder)
    doc = json.loads((folder / "trainer.json").read_text())
    for name, m in modules.items():
        getattr(m, "module", m).load_state_dict(load_file(str(folder / f"{name}.safetensors"), device=str(device)))
    for name, opt in optimizers.items():
        _opt_from_flat(opt, load_file(str(folder / f"opt_{name}.safetensors"), device=str(device)),
                       doc["optimizers"][name])
    return doc["counters"]
