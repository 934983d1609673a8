"""Optional LPIPS perceptual distance (AlexNet variant, v0.1), offline only.

LPIPS is used only when all of these are already on this machine:

* the ``lpips`` PyPI package (not a semcomp dependency);
* its linear-layer weights: ``$SEMCOMP_LPIPS_WEIGHTS`` if set, else the
  ``weights/v0.1/alex.pth`` file shipped inside the ``lpips`` package;
* the AlexNet backbone checkpoint: ``$SEMCOMP_LPIPS_BACKBONE`` if set, else
  torchvision's ``alexnet-owt-7be5be79.pth`` (any ``alexnet-*.pth``) in
  ``torch.hub.get_dir()/checkpoints``. A full torchvision AlexNet state dict
  (``features.N.*`` keys) or a bare ``features`` state dict (``N.*``) works.

Nothing is ever downloaded: the model is built with a random backbone
(``pnet_rand=True``, which makes torchvision fetch nothing) and the backbone
weights are then loaded from the local file. When something is missing,
:func:`lpips_distance` returns None and the reason is logged once at INFO
(at WARNING when a file exists but cannot be loaded). The model is built at
most once per process and cached, also when it failed.
"""
from __future__ import annotations

import glob
import logging
import os
import threading

import numpy as np

log = logging.getLogger(__name__)

ENV_WEIGHTS = "SEMCOMP_LPIPS_WEIGHTS"
ENV_BACKBONE = "SEMCOMP_LPIPS_BACKBONE"
BACKBONE_FILE = "alexnet-owt-7be5be79.pth"
#: AlexNet needs at least ~31 px per side to reach its last LPIPS layer.
MIN_SIDE = 32

_lock = threading.Lock()
_state: dict = {"tried": False, "model": None}


class _Unavailable(Exception):
    """Internal: LPIPS cannot be used; the message says why."""


def _backbone_path() -> str:
    env = os.environ.get(ENV_BACKBONE)
    if env:
        if not os.path.isfile(env):
            raise _Unavailable(f"{ENV_BACKBONE}={env} is not a file")
        return env
    import torch.hub

    ckpt_dir = os.path.join(torch.hub.get_dir(), "checkpoints")
    exact = os.path.join(ckpt_dir, BACKBONE_FILE)
    if os.path.isfile(exact):
        return exact
    found = sorted(glob.glob(os.path.join(ckpt_dir, "alexnet-*.pth")))
    if found:
        return found[0]
    raise _Unavailable(f"no AlexNet checkpoint in {ckpt_dir} (set {ENV_BACKBONE})")


def _lin_weights_path(lpips_mod) -> str:
    env = os.environ.get(ENV_WEIGHTS)
    path = env or os.path.join(os.path.dirname(lpips_mod.__file__), "weights", "v0.1", "alex.pth")
    if not os.path.isfile(path):
        raise _Unavailable(f"LPIPS linear weights not found at {path} (set {ENV_WEIGHTS})")
    return path


def _load_backbone(net, path: str) -> None:
    """Copy a local AlexNet ``features`` checkpoint into lpips' sliced backbone.

    lpips names the layers ``sliceK.N.*`` with N the index in
    ``torchvision.models.alexnet().features``; every parameter must be found.
    """
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    prefix = "features." if any(k.startswith("features.") for k in state) else ""
    own = net.state_dict()
    mapped = {}
    for name in own:
        _, _, rest = name.partition(".")  # "slice2.3.weight" -> "3.weight"
        src = prefix + rest
        if src not in state:
            raise ValueError(f"backbone checkpoint {path} lacks {src!r}")
        if tuple(state[src].shape) != tuple(own[name].shape):
            raise ValueError(f"backbone checkpoint {path}: {src!r} has shape {tuple(state[src].shape)}, "
                               f"expected {tuple(own[name].shape)}")
        mapped[name] = state[src]
    net.load_state_dict(mapped, strict=True)


def _build():
    try:
        import lpips
    except ImportError as exc:
        raise _Unavailable(f"the 'lpips' package is not importable ({exc})") from None

    backbone = _backbone_path()
    lin = _lin_weights_path(lpips)
    kwargs = dict(pretrained=True, net="alex", version="0.1", pnet_rand=True, model_path=lin)
    try:
        model = lpips.LPIPS(verbose=False, **kwargs)
    except TypeError:  # old lpips without ``verbose``
        model = lpips.LPIPS(**kwargs)
    _load_backbone(model.net, backbone)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    log.info("LPIPS enabled (backbone %s, linear weights %s)", backbone, lin)
    return model


def _get_model():
    with _lock:
        if not _state["tried"]:
            _state["tried"] = True
            try:
                _state["model"] = _build()
            except _Unavailable as exc:
                log.info("LPIPS unavailable, reporting None: %s", exc)
            except Exception as exc:  # a present but broken install or file
                log.warning("LPIPS unavailable, reporting None: %s: %s", type(exc).__name__, exc)
        return _state["model"]


def reset_lpips_cache() -> None:
    """Forget the cached model (or failure) so the next call looks again."""
    with _lock:
        _state["tried"] = False
        _state["model"] = None


def lpips_available() -> bool:
    """True when an LPIPS model could be built from local files (builds and caches it)."""
    return _get_model() is not None


def lpips_distance(a: np.ndarray, b: np.ndarray) -> float | None:
    """LPIPS distance between two (H, W, 3) uint8 RGB images (0 = identical, lower is better).

    Returns None when LPIPS is unavailable (see module docstring) or the short
    side is under :data:`MIN_SIDE` pixels. A shape mismatch raises ValueError.
    """
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"images must have the same shape, got {a.shape} and {b.shape}")
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"images must be (H, W, 3) RGB, got shape {a.shape}")
    model = _get_model()
    if model is None:
        return None
    if min(a.shape[:2]) < MIN_SIDE:
        log.debug("LPIPS skipped for a %dx%d image (min side %d)", a.shape[0], a.shape[1], MIN_SIDE)
        return None
    import torch

    def to_tensor(img: np.ndarray):
        arr = img.astype(np.float32).transpose(2, 0, 1)[None] / 127.5 - 1.0
        return torch.from_numpy(np.ascontiguousarray(arr))

    with torch.no_grad():
        return float(model(to_tensor(a), to_tensor(b)).reshape(-1)[0])
