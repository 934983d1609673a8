"""Export a network to ONNX with a sidecar JSON, check parity in onnxruntime, cache the result.

:func:`export_onnx` writes ``<kind>.onnx`` (opset 18 by default: TensorRT 10.x parses it; dynamic
height and width) and ``<kind>.json`` beside it with what a runtime must know: opset, input and
output names, shapes (symbolic where dynamic) and dtypes, the ONNX file's sha256, the torch and
onnx versions, the model's registry name and config (class count and names), and the parity
measured against PyTorch at two frame sizes (max abs error; for segmenters the arg-max label
agreement). An export whose parity is off raises :class:`ExportError` and leaves no file.

:func:`cached_onnx` is what ``backend=onnxruntime`` uses: the export of a model folder, cached
under ``$SEMCOMP_CACHE/onnx`` (default ``~/.cache/semcomp/onnx``) by a key of the weights'
and config's sha256, the torch version and the opset, so retrained weights never reuse a stale
file.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import warnings
from pathlib import Path

import numpy as np

from ..errors import SemcompError
from .base import NETWORKS

OPSET = 18
#: parity limits (fp32): max abs error of the output, and arg-max agreement for segmenters
TOLERANCE = {"segmenter": 2e-3, "generator": 1e-3, "enhancer": 2e-2, "gc-encoder": 2e-3, "gc-decoder": 1e-3,
             "vae-encoder": 2e-3, "vae-decoder": 2e-3, "ldm-unet": 2e-3, "clip-tower": 2e-3}
MIN_LABEL_AGREEMENT = 0.999
PARITY_SIZES = ((96, 128), (64, 160))


class ExportError(SemcompError):
    """An export failed or its parity check against PyTorch is off."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _exportable(kind: str, model):
    import torch

    m = copy.deepcopy(model).to(memory_format=torch.contiguous_format).float().cpu().eval()
    if kind == "generator":
        has_noise, has_layers = bool(m.config.get("noise_channels", 0)), bool(m.config.get("optional_layers"))

        class Generator(torch.nn.Module):
            """Every generator takes (onehot, color, noise, layers); inputs a model does not use are
            placeholders, kept in the graph (``0 * x.sum()``) so that every ONNX file has the same inputs."""

            def __init__(self, g):
                super().__init__()
                self.g = g

            def forward(self, onehot, color, noise, layers):
                out = self.g(onehot, color, noise if has_noise else None, layers if has_layers else None)
                if not has_noise:
                    out = out + 0 * noise.sum()
                if not has_layers:
                    out = out + 0 * layers.sum()
                return out
        return Generator(m)
    if kind == "ldm-unet" and not m.embed_dim:
        class Unet(torch.nn.Module):
            """A UNet without CLIP conditioning keeps its (unused) embedding input in the graph."""

            def __init__(self, u):
                super().__init__()
                self.u = u

            def forward(self, latent, t, cond, embed, embed_presence):
                return self.u(latent, t, cond, embed, embed_presence) + 0 * embed.sum()
        return Unet(m)
    return m


def parity(kind: str, model, onnx_path: str | Path, sizes=PARITY_SIZES, seed: int = 0,
           real: dict[str, dict[str, np.ndarray]] | None = None) -> dict:
    """Max abs error (and label agreement for segmenters) of the ONNX file vs the torch model, on
    random inputs at ``sizes`` and on the named ``real`` feeds (e.g. from bundled frames)."""
    import onnxruntime as ort
    import torch

    spec = NETWORKS[kind]
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    ref_model = _exportable(kind, model)
    rng = np.random.default_rng(seed)
    out = {}
    cases = [(f"{h}x{w}", spec.example(model, h, w, rng)) for h, w in sizes] + list((real or {}).items())
    for name, feeds in cases:
        with torch.inference_mode():
            ref = ref_model(*[torch.from_numpy(feeds[n]) for n in spec.inputs]).numpy()
        got = sess.run([spec.output], feeds)[0]
        entry = {"max_abs_error": float(np.abs(got - ref).max()) if got.shape == ref.shape else float("inf")}
        if kind == "segmenter" and got.shape == ref.shape:
            entry["label_agreement"] = float((got.argmax(1) == ref.argmax(1)).mean())
        out[name] = entry
    return out


def export_onnx(kind: str, model, path: str | Path, opset: int = OPSET, extra: dict | None = None,
                sizes=PARITY_SIZES, real: dict[str, dict[str, np.ndarray]] | None = None) -> dict:
    """Export ``model`` (network ``kind``) to ``path`` + a sidecar ``.json``; returns the sidecar.

    Parity is checked at ``sizes`` (random inputs) and on ``real`` feeds. ExportError (nothing
    written) when the export fails or parity is off."""
    import onnx
    import torch

    if kind not in NETWORKS:
        raise ExportError(f"unknown network kind {kind!r}")
    spec = NETWORKS[kind]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    feeds = spec.example(model, *PARITY_SIZES[0], np.random.default_rng(0))
    fast = torch.backends.mha.get_fastpath_enabled()
    try:
        torch.backends.mha.set_fastpath_enabled(False)   # nn.MultiheadAttention's fused kernel has no ONNX op
        with warnings.catch_warnings():  # the tracer's notes on shapes and instance norm: not actionable here
            warnings.simplefilter("ignore")
            torch.onnx.export(_exportable(kind, model), tuple(torch.from_numpy(feeds[n]) for n in spec.inputs),
                              str(tmp), input_names=list(spec.inputs), output_names=[spec.output],
                              opset_version=opset, dynamo=False, dynamic_axes=spec.dynamic,
                              do_constant_folding=True)
        torch.backends.mha.set_fastpath_enabled(fast)
        checked = parity(kind, model, tmp, sizes=sizes, real=real)
    except ExportError:
        tmp.unlink(missing_ok=True)
        raise
    except Exception as exc:  # noqa: BLE001 -- exporter or runtime failure: one clear error
        tmp.unlink(missing_ok=True)
        raise ExportError(f"cannot export the {kind} to ONNX: {type(exc).__name__}: {exc}") from None
    finally:
        torch.backends.mha.set_fastpath_enabled(fast)
    for size, entry in checked.items():
        if entry["max_abs_error"] > TOLERANCE[kind] or entry.get("label_agreement", 1.0) < MIN_LABEL_AGREEMENT:
            tmp.unlink(missing_ok=True)
            raise ExportError(f"ONNX {kind} does not match PyTorch at {size}: {entry}")
    graph = onnx.load(str(tmp), load_external_data=False).graph

    def io(values):
        return [{"name": v.name, "dtype": onnx.helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type).name,
                 "shape": [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]} for v in values]

    sidecar = {"kind": kind, "opset": opset, "inputs": io(graph.input), "outputs": io(graph.output),
               "sha256": _sha256(tmp), "torch": torch.__version__, "onnx": onnx.__version__,
               "model": getattr(model, "registry_name", type(model).__name__), "config": model.config,
               "parity": checked, **(extra or {})}
    os.replace(tmp, path)
    path.with_suffix(".json").write_text(json.dumps(sidecar, indent=2) + "\n")
    return sidecar


def cache_dir() -> Path:
    root = os.environ.get("SEMCOMP_CACHE") or Path.home() / ".cache" / "semcomp"
    return Path(root) / "onnx"


#: version of the network IO table (inference.base.NETWORKS): 2 = the generator's optional-layer input
IO_VERSION = 2


def model_key(model, model_dir: str | Path | None, opset: int = OPSET) -> str:
    """Cache key: the weights and config (files of ``model_dir``, else the state dict), torch version, opset."""
    import torch

    h = hashlib.sha256(f"{torch.__version__}|opset{opset}|io{IO_VERSION}|{getattr(model, 'registry_name', '')}"
                       .encode())
    files = [Path(model_dir) / n for n in ("config.json", "model.safetensors")] if model_dir else []
    if files and all(f.exists() for f in files):
        for f in files:
            h.update(_sha256(f).encode())
    else:
        h.update(json.dumps(model.config, sort_keys=True, default=str).encode())
        for k, v in model.state_dict().items():
            h.update(k.encode())
            h.update(v.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()[:24]


def cached_onnx(kind: str, model, model_dir: str | Path | None = None) -> Path:
    """The ONNX export of ``model`` from the cache, exporting it (with parity check) on first use."""
    key = model_key(model, model_dir)
    path = cache_dir() / key / f"{kind}.onnx"
    side = path.with_suffix(".json")
    if path.exists() and side.exists():
        try:
            if json.loads(side.read_text()).get("sha256") == _sha256(path):
                return path
        except (OSError, ValueError):
            pass
    export_onnx(kind, model, path, extra={"source": str(model_dir) if model_dir else None, "cache_key": key})
    return path
