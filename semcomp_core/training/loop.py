"""The step loop shared by the codec trainers (``train gc``, ``train bpg-se``): progress bar with ETA,
JSON-lines metrics log, periodic checkpoints, resume, a checkpoint on Ctrl-C / SIGTERM, and DDP-aware
logging (only rank 0 writes)."""
from __future__ import annotations

import json
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np


@dataclass(kw_only=True)
class RunConfig:
    """What every codec trainer's run takes besides its own recipe (keyword-only fields)."""

    train: str
    out: str
    device: str = "cpu"
    seed: int = 0
    resume: bool = False
    threads: int | None = None
    tiny: bool = False
    lr: float = 2e-4
    ema: float = 0.995
    save_every: int = 200
    log_every: int = 20


def run_steps(*, steps: int, start: int, step_fn: Callable[[int], dict], save_fn: Callable[[int], None],
              out: Path, main: bool, desc: str, progress: bool = True, log_every: int = 20,
              save_every: int = 200) -> int:
    """Run ``step_fn(step)`` (returns {name: float}) from ``start`` to ``steps``; returns the last step.

    Logs means every ``log_every`` steps to ``out/log.jsonl``, calls ``save_fn(step)`` every
    ``save_every`` steps and at the end; an interrupt (SIGINT, or SIGTERM turned into one) saves first.
    """
    from tqdm import tqdm

    def _term(signum, frame):  # background runs are stopped with SIGTERM: keep their steps
        raise KeyboardInterrupt
    old = signal.signal(signal.SIGTERM, _term) if main else None
    log = open(Path(out) / "log.jsonl", "a") if main else None
    bar = tqdm(total=steps, initial=start, disable=not (progress and main), unit="step", desc=desc)
    hist: dict[str, list] = {}
    t0 = time.time()
    step = start
    try:
        while step < steps:
            terms = step_fn(step)
            step += 1
            bar.update(1)
            for name, v in terms.items():
                hist.setdefault(name, []).append(float(v))
            if main and (step % log_every == 0 or step == steps):
                rec = {"step": step, "elapsed_s": round(time.time() - t0, 1),
                       **{n: round(float(np.mean(v)), 5) for n, v in hist.items()}}
                hist.clear()
                log.write(json.dumps(rec) + "\n")
                log.flush()
                bar.set_postfix({n: rec[n] for n in list(rec)[2:6]})
            if main and (step % save_every == 0 or step == steps):
                save_fn(step)
    except KeyboardInterrupt:
        if main and step % save_every:
            save_fn(step)
            print(f"interrupted: checkpoint saved at step {step}")
        raise
    finally:
        bar.close()
        if log:
            log.close()
        if old is not None:
            signal.signal(signal.SIGTERM, old)
    return step


def resume_run(cfg: RunConfig, ckpt: Path, modules: dict, optimizers: dict, device, main: bool) -> dict:
    """The counters of ``ckpt`` loaded into ``modules``/``optimizers`` when ``cfg.resume`` and a checkpoint
    exists ({} otherwise); the first optimizer's first group takes ``cfg.lr`` (a resumed run may change it)."""
    from .checkpoint import load_checkpoint

    if not (cfg.resume and (ckpt / "trainer.json").exists()):
        return {}
    counters = load_checkpoint(ckpt, modules, optimizers, device)
    next(iter(optimizers.values())).param_groups[0]["lr"] = cfg.lr
    if main:
        print(f"resumed from {ckpt} at step {counters['step']}")
    return counters


def train_run(cfg, info, out: Path, start: int, step_fn, save_fn, desc: str, progress: bool) -> dict:
    """:func:`run_steps` with the config's cadence, then the process group's cleanup whatever happened;
    returns ``{"step", "model"}``."""
    from . import distributed

    try:
        step = run_steps(steps=cfg.steps, start=start, step_fn=step_fn, save_fn=save_fn, out=out, main=info.main,
                         desc=desc, progress=progress, log_every=cfg.log_every, save_every=cfg.save_every)
    finally:
        distributed.cleanup(info)
    return {"step": step, "model": str(Path(out) / "model")}


def ema_update(ema, model, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model (parameters); buffers copied."""
    import torch

    with torch.no_grad():
        for pe, pg in zip(ema.parameters(), model.parameters()):
            pe.lerp_(pg, 1 - decay)
        for be, bg in zip(ema.buffers(), model.buffers()):
            be.copy_(bg)


def random_crops(images: np.ndarray, batch: int, crop: int, rng: np.random.Generator, multiple: int = 16,
                 extra: list[np.ndarray] | None = None):
    """``batch`` random ``crop`` x ``crop`` crops (corners on a ``multiple`` grid, random horizontal flip) of
    (N, H, W, ...) arrays: returns (indices, [cropped images, cropped extra arrays...]) as numpy."""
    n, H, W = images.shape[:3]
    idx = rng.integers(0, n, batch)
    outs = [[] for _ in range(1 + len(extra or []))]
    for i in idx:
        top = multiple * int(rng.integers(0, (H - crop) // multiple + 1))
        left = multiple * int(rng.integers(0, (W - crop) // multiple + 1))
        flip = rng.random() < 0.5
        for k, arr in enumerate([images] + list(extra or [])):
            a = arr[i, top:top + crop, left:left + crop]
            outs[k].append(a[:, ::-1] if flip else a)
    return idx, [np.ascontiguousarray(np.stack(o)) for o in outs]
