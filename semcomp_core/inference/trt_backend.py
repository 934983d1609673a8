"""The TensorRT backend: engines built from the exported ONNX, cached, checked, never stale.

Written against the TensorRT Python API of 10.x (Jetson JetPack 6 ships 10.3) and 11.x; the
module imports ``tensorrt`` lazily and needs a CUDA GPU and torch with CUDA (device buffers and
the stream come from torch). It cannot be installed on the project's CI machines: its tests skip
there with a reason (test/test_inference.py), and nothing here has run on a GPU yet.

Engine cache (``$SEMCOMP_CACHE/tensorrt``, default ``~/.cache/semcomp/tensorrt``): one
``<key>.plan`` + ``<key>.json`` per engine, where the key is the sha256 of

* the ONNX file's sha256 (so retrained weights never reuse an engine),
* the TensorRT version,
* the GPU name and compute capability,
* the precision (fp32 / fp16),
* the optimisation profile (min / opt / max shape of every input).

A cached plan whose sidecar disagrees with any of these, or that TensorRT refuses to
deserialise (``deserialize_cuda_engine`` returns None, e.g. after an upgrade), is rebuilt with
a log line -- never loaded. A timing cache (keyed by TensorRT version and compute capability)
speeds up rebuilds. The same engine can be built by hand with ``trtexec`` from the same ONNX
(export/README.md shows the command).

Version differences handled: ``BuilderFlag.FP16`` exists on 10.x and is gone on 11 (strongly
typed networks: precision then comes from the ONNX itself, so fp16 on 11 needs an fp16 ONNX);
``build_serialized_network`` (not ``build_engine``); ``NATIVE_INSTANCENORM`` keeps InstanceNorm in
FP32 where the parser has the flag; ``init_libnvinfer_plugins`` before parsing.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np

from ..errors import UsageError
from .base import NETWORKS, Runner

log = logging.getLogger(__name__)
WORKSPACE_BYTES = 1 << 30
#: default optimisation profile (frame H x W): min, opt, max
DEFAULT_PROFILE = ((64, 64), (360, 480), (1024, 2048))


def import_tensorrt():
    """The tensorrt module, or UsageError naming what is missing."""
    try:
        import tensorrt as trt  # noqa: F401
    except ImportError:
        raise UsageError("backend tensorrt needs NVIDIA TensorRT's Python package (tensorrt) and a CUDA GPU; "
                         "it is not installed here: use backend=onnxruntime (CUDA provider) or torch") from None
    return trt


def input_shapes(kind: str, config: dict, hw: tuple[int, int]) -> dict[str, tuple[int, ...]]:
    """Shape of every input of network ``kind`` for a frame of ``hw`` (padded to multiples of 8)."""
    h, w = 8 * -(-hw[0] // 8), 8 * -(-hw[1] // 8)
    if kind == "segmenter":
        return {"image": (1, 3, h, w)}
    from .base import layer_channels

    k, c = config["num_classes"], max(1, config.get("noise_channels", 0))
    return {"onehot": (1, k, h, w), "color": (1, 3, h, w), "noise": (1, c, h // 8, w // 8),
            "layers": (1, max(1, layer_channels(config)), h, w)}


def engine_key(onnx_sha256: str, trt_version: str, gpu_name: str, capability: tuple[int, int], precision: str,
               profile: dict[str, tuple[tuple[int, ...], ...]]) -> str:
    """The engine cache key: everything that makes a serialized engine valid (see the module doc)."""
    doc = {"onnx": onnx_sha256, "tensorrt": trt_version, "gpu": gpu_name, "sm": list(capability),
           "precision": precision, "profile": {k: [list(s) for s in v] for k, v in sorted(profile.items())}}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32]


def cache_dir() -> Path:
    root = os.environ.get("SEMCOMP_CACHE") or Path.home() / ".cache" / "semcomp"
    return Path(root) / "tensorrt"


class TrtRunner(Runner):
    backend = "tensorrt"

    def __init__(self, kind: str, onnx_path: str | Path, config: dict, device: str = "cuda",
                 precision: str = "fp32", profile=DEFAULT_PROFILE, engine_cache: str | Path | None = None) -> None:
        super().__init__(kind)
        if not str(device).startswith("cuda"):
            raise UsageError("backend tensorrt runs on a CUDA device: pass --device cuda")
        if precision not in ("fp32", "fp16"):
            raise UsageError(f"precision must be fp32 or fp16, got {precision!r}")
        trt = import_tensorrt()
        import torch

        self.trt, self.torch = trt, torch
        self.device = torch.device(device)
        self.logger = trt.Logger(trt.Logger.WARNING)
        trt.init_libnvinfer_plugins(self.logger, "")
        self.onnx_path = Path(onnx_path)
        onnx_sha = hashlib.sha256(self.onnx_path.read_bytes()).hexdigest()
        self.shapes = {name: tuple(input_shapes(kind, config, hw)[name] for hw in profile)
                       for name in self.spec.inputs}
        props = torch.cuda.get_device_properties(self.device)
        cap = (props.major, props.minor)
        self.key = engine_key(onnx_sha, trt.__version__, props.name, cap, precision, self.shapes)
        folder = Path(engine_cache) if engine_cache else cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        plan, meta = folder / f"{self.key}.plan", folder / f"{self.key}.json"
        want = {"key": self.key, "onnx_sha256": onnx_sha, "tensorrt": trt.__version__, "gpu": props.name,
                "sm": list(cap), "precision": precision, "kind": kind}
        self.runtime = trt.Runtime(self.logger)
        self.engine = None
        if plan.exists() and meta.exists():
            try:
                ok = json.loads(meta.read_text()) == want
            except (OSError, ValueError):
                ok = False
            if ok:
                self.engine = self.runtime.deserialize_cuda_engine(plan.read_bytes())
            if self.engine is None:
                log.warning("TensorRT engine %s is stale or foreign (another TensorRT, GPU or ONNX): rebuilding", plan)
        if self.engine is None:
            blob = self._build(precision, folder / f"timing_{trt.__version__}_sm{cap[0]}{cap[1]}.cache")
            tmp = plan.with_name(plan.name + f".tmp{os.getpid()}")
            tmp.write_bytes(blob)
            os.replace(tmp, plan)
            meta.write_text(json.dumps(want, indent=2) + "\n")
            self.engine = self.runtime.deserialize_cuda_engine(blob)
            if self.engine is None:
                raise UsageError(f"TensorRT could not deserialise the engine it just built for {self.onnx_path}")
        self.context = self.engine.create_execution_context()
        self.plan_path = plan

    def _build(self, precision: str, timing_cache: Path) -> bytes:
        trt = self.trt
        builder = trt.Builder(self.logger)
        flags = 0
        strongly_typed = not hasattr(trt.BuilderFlag, "FP16")           # TensorRT 11: no precision flags
        if strongly_typed and hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"):
            flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
        network = builder.create_network(flags)
        parser = trt.OnnxParser(network, self.logger)
        if hasattr(trt, "OnnxParserFlag") and hasattr(trt.OnnxParserFlag, "NATIVE_INSTANCENORM"):
            parser.set_flag(trt.OnnxParserFlag.NATIVE_INSTANCENORM)    # InstanceNorm stays FP32
        if not parser.parse(self.onnx_path.read_bytes()):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise UsageError(f"TensorRT cannot parse {self.onnx_path}: {errors}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
        if precision == "fp16":
            if strongly_typed:
                raise UsageError("TensorRT 11 builds strongly typed networks: fp16 needs an fp16 ONNX export")
            config.set_flag(trt.BuilderFlag.FP16)
        profile = builder.create_optimization_profile()
        for name, (lo, opt, hi) in self.shapes.items():
            profile.set_shape(name, lo, opt, hi)
        config.add_optimization_profile(profile)
        cache = config.create_timing_cache(timing_cache.read_bytes() if timing_cache.exists() else b"")
        config.set_timing_cache(cache, ignore_mismatch=False)
        log.warning("building TensorRT engine for %s (%s); this takes a while once", self.onnx_path.name, precision)
        blob = builder.build_serialized_network(network, config)
        if blob is None:
            raise UsageError(f"TensorRT failed to build an engine from {self.onnx_path}")
        timing_cache.write_bytes(bytes(config.get_timing_cache().serialize()))
        return bytes(blob)

    @property
    def provider(self) -> str:
        return f"tensorrt {self.trt.__version__} {self.device}"

    def run(self, feeds: dict) -> np.ndarray:
        torch = self.torch
        inputs = {}  # kept alive until the stream is synchronised
        for name in self.spec.inputs:
            v = feeds[name]
            t = v if isinstance(v, torch.Tensor) else torch.from_numpy(np.asarray(v, np.float32))
            t = t.to(self.device, torch.float32).contiguous()
            lo, hi = self.shapes[name][0], self.shapes[name][2]
            if any(s < a or s > b for s, a, b in zip(t.shape, lo, hi)):
                raise UsageError(f"input {name} of shape {tuple(t.shape)} is outside the engine's profile "
                                 f"{lo}..{hi}: build it for this frame size")
            inputs[name] = t
            self.context.set_input_shape(name, tuple(t.shape))
            self.context.set_tensor_address(name, t.data_ptr())
        out_name = self.spec.output
        out = torch.empty(tuple(self.context.get_tensor_shape(out_name)), dtype=torch.float32, device=self.device)
        self.context.set_tensor_address(out_name, out.data_ptr())
        stream = torch.cuda.current_stream(self.device)
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise RuntimeError(f"TensorRT execution of {self.onnx_path.name} failed")
        stream.synchronize()
        return out.cpu().numpy()


__all__ = ["DEFAULT_PROFILE", "NETWORKS", "TrtRunner", "cache_dir", "engine_key", "import_tensorrt", "input_shapes"]
