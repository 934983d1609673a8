"""The Runner contract, the network IO table and the backend choice."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..devices import check_device
from ..errors import UsageError

#: backends a codec's ``backend=`` parameter may name (tensorrt needs TensorRT and a CUDA GPU)
BACKENDS = ("torch", "onnxruntime", "tensorrt")


@dataclass(frozen=True)
class NetworkSpec:
    """How a kind of network is called: input names (NCHW float32), output name, and example inputs
    (for export and parity checks) built from the model's config at a frame size."""

    inputs: tuple[str, ...]
    output: str
    #: input name -> which axes are dynamic, as {axis: symbolic name}
    dynamic: dict[str, dict[int, str]]
    example: Callable[[object, int, int, np.random.Generator], dict[str, np.ndarray]]


def _segmenter_example(model, h: int, w: int, rng) -> dict[str, np.ndarray]:
    return {"image": (rng.random((1, 3, h, w)) * 255).astype(np.float32)}


def _generator_example(model, h: int, w: int, rng) -> dict[str, np.ndarray]:
    k = model.num_classes
    labels = rng.integers(0, k, size=(h // 8, w // 8)).repeat(8, 0).repeat(8, 1)
    onehot = (labels[None, None] == np.arange(k)[None, :, None, None]).astype(np.float32)
    color = (rng.random((1, 3, h, w)) * 2 - 1).astype(np.float32)
    noise = rng.standard_normal((1, max(1, model.config.get("noise_channels", 0)), h // 8, w // 8)).astype(np.float32)
    return {"onehot": onehot, "color": color, "noise": noise, "layers": example_layers(model.config, h, w, rng)}


def layer_channels(config: dict) -> int:
    """Conditioning channels of a generator config's optional layers (0 for none)."""
    from ..models.generator import optional_channels

    return optional_channels(config.get("optional_layers"))


def example_layers(config: dict, h: int, w: int, rng) -> np.ndarray:
    """Optional-layer input of a generator: each layer's channels in -1..1 then its presence in 0..1
    (a one-channel zero placeholder for generators without optional layers)."""
    c = layer_channels(config)
    if not c:
        return np.zeros((1, 1, h, w), np.float32)
    x = (rng.random((1, c, h, w)) * 2 - 1).astype(np.float32)
    from ..models.generator import OPTIONAL_LAYERS

    at = 0
    for name in config.get("optional_layers") or ():
        at += OPTIONAL_LAYERS[name]
        x[:, at] = (x[:, at] > 0).astype(np.float32)      # presence
        at += 1
    return x


def _enhancer_example(model, h: int, w: int, rng) -> dict[str, np.ndarray]:
    k = model.num_classes
    labels = rng.integers(0, k, size=(h // 8, w // 8)).repeat(8, 0).repeat(8, 1)
    return {"image": (rng.random((1, 3, h, w)) * 255).astype(np.float32),
            "onehot": (labels[None, None] == np.arange(k)[None, :, None, None]).astype(np.float32),
            "presence": np.ones((1, 1, h, w), np.float32), "q": np.full((1, 1, 1, 1), 45.0, np.float32)}


def _gc_encoder_example(model, h: int, w: int, rng) -> dict[str, np.ndarray]:
    return {"image": (rng.random((1, 3, 16 * -(-h // 16), 16 * -(-w // 16))) * 255).astype(np.float32)}


def _gc_decoder_example(model, h: int, w: int, rng) -> dict[str, np.ndarray]:
    c, lh, lw = model.latent_channels, -(-h // 16), -(-w // 16)
    present = (np.arange(c) < max(1, c // 2)).astype(np.float32)[None, :, None, None] * np.ones((1, c, lh, lw),
                                                                                           np.float32)
    return {"latent": np.round(rng.standard_normal((1, c, lh, lw)) * 2).astype(np.float32) * present,
            "present": present}


def _vae_encoder_example(model, h: int, w: int, rng) -> dict[str, np.ndarray]:
    return {"image": (rng.random((1, 3, 4 * -(-h // 4), 4 * -(-w // 4))) * 2 - 1).astype(np.float32)}


def _vae_decoder_example(model, h: int, w: int, rng) -> dict[str, np.ndarray]:
    return {"latent": rng.standard_normal((1, model.config["latent_channels"], -(-h // 4), -(-w // 4)))
            .astype(np.float32)}


def _ldm_unet_example(model, h: int, w: int, rng) -> dict[str, np.ndarray]:
    m = model.multiple
    lh, lw = m * -(-h // (4 * m)), m * -(-w // (4 * m))
    return {"latent": rng.standard_normal((1, model.config["latent_channels"], lh, lw)).astype(np.float32),
            "t": np.full((1, 1, 1, 1), 500.0, np.float32),
            "cond": rng.random((1, model.cond_channels, lh, lw)).astype(np.float32),
            "embed": rng.standard_normal((1, max(1, model.embed_dim), 1, 1)).astype(np.float32),
            "embed_presence": np.ones((1, 1, 1, 1), np.float32)}


def _clip_tower_example(model, h: int, w: int, rng) -> dict[str, np.ndarray]:
    s = model.config["image_size"]          # the tower's fixed input side (frames are resized before it)
    return {"image": (rng.random((1, 3, s, s)) * 255).astype(np.float32)}


#: network kind -> its IO: "segmenter" = image 0..255 -> logits; "generator" = SPADE generator; "enhancer",
#: "gc-encoder", "gc-decoder" = the networks of the bpg-se and gc codecs
NETWORKS: dict[str, NetworkSpec] = {
    "segmenter": NetworkSpec(("image",), "logits", {"image": {2: "height", 3: "width"},
                                                     "logits": {2: "out_height", 3: "out_width"}},
                             _segmenter_example),
    "generator": NetworkSpec(("onehot", "color", "noise", "layers"), "rgb",
                             {"onehot": {2: "height", 3: "width"}, "color": {2: "height", 3: "width"},
                              "noise": {2: "height_8", 3: "width_8"}, "layers": {2: "height", 3: "width"},
                              "rgb": {2: "height", 3: "width"}},
                             _generator_example),
    # bpg-se: decoded base picture 0..255 + one-hot labels + their presence + q (1, 1, 1, 1) -> picture 0..255
    "enhancer": NetworkSpec(("image", "onehot", "presence", "q"), "rgb",
                            {"image": {2: "height", 3: "width"}, "onehot": {2: "height", 3: "width"},
                             "presence": {2: "height", 3: "width"}, "rgb": {2: "height", 3: "width"}},
                            _enhancer_example),
    # gc: frame 0..255 (sides multiples of 16) -> latent at 1/16; latent + channel presence -> frame in -1..1
    "gc-encoder": NetworkSpec(("image",), "latent", {"image": {2: "height", 3: "width"},
                                                      "latent": {2: "height_16", 3: "width_16"}},
                              _gc_encoder_example),
    "gc-decoder": NetworkSpec(("latent", "present"), "rgb",
                              {"latent": {2: "height_16", 3: "width_16"}, "present": {2: "height_16", 3: "width_16"},
                               "rgb": {2: "height", 3: "width"}},
                              _gc_decoder_example),
    # the diffusion renderer (models.ldm): VAE halves at f=4 (image in -1..1, scaled latents) and the UNet's
    # one denoising call (timestep, embedding and its presence as (1, C, 1, 1) tensors)
    "vae-encoder": NetworkSpec(("image",), "latent", {"image": {2: "height", 3: "width"},
                                                       "latent": {2: "height_4", 3: "width_4"}},
                               _vae_encoder_example),
    "vae-decoder": NetworkSpec(("latent",), "rgb", {"latent": {2: "height_4", 3: "width_4"},
                                                     "rgb": {2: "height", 3: "width"}},
                               _vae_decoder_example),
    "ldm-unet": NetworkSpec(("latent", "t", "cond", "embed", "embed_presence"), "out",
                            {"latent": {2: "height_4", 3: "width_4"}, "cond": {2: "height_4", 3: "width_4"},
                             "out": {2: "height_4", 3: "width_4"}},
                            _ldm_unet_example),
    # the CLIP layer's image tower: frame resized to the tower's side, 0..255 -> embedding (B, dim)
    "clip-tower": NetworkSpec(("image",), "embedding", {}, _clip_tower_example),
}


class Runner(ABC):
    """Runs one network: ``runner(**feeds) -> output array`` (numpy in, numpy out)."""

    backend: str = ""

    def __init__(self, kind: str) -> None:
        if kind not in NETWORKS:
            raise UsageError(f"unknown network kind {kind!r} (known: {', '.join(NETWORKS)})")
        self.kind = kind
        self.spec = NETWORKS[kind]

    @property
    @abstractmethod
    def provider(self) -> str:
        """What really runs, e.g. ``torch 2.14.1 cpu`` or ``onnxruntime 1.32.0 CPUExecutionProvider``."""

    @abstractmethod
    def run(self, feeds: dict) -> np.ndarray:
        """The network's output (float32 numpy, NCHW) for ``feeds``: every input of the spec, float32
        NCHW, as numpy arrays or CPU/GPU torch tensors (a backend converts what it must)."""

    def __call__(self, **feeds) -> np.ndarray:
        missing = [n for n in self.spec.inputs if n not in feeds]
        if missing:
            raise ValueError(f"{self.kind} runner needs inputs {missing}")
        return self.run({n: feeds[n] for n in self.spec.inputs})


def make_runner(kind: str, model, backend: str = "torch", device: str = "cpu", *, model_dir: str | None = None,
                engine_cache: str | None = None) -> Runner:
    """A runner for ``model`` (an eval-mode torch module of network ``kind``) on ``backend``.

    ``model_dir`` (the folder the model was loaded from) keys the ONNX cache of the onnxruntime backend.
    UsageError for an unknown or uninstalled backend."""
    check_device(device)
    if backend == "torch":
        from .torch_backend import TorchRunner

        return TorchRunner(kind, model, device)
    if backend == "onnxruntime":
        from .ort_backend import OrtRunner
        from .export import cached_onnx

        return OrtRunner(kind, cached_onnx(kind, model, model_dir), device)
    if backend == "tensorrt":
        from .export import cached_onnx
        from .trt_backend import TrtRunner, import_tensorrt

        import_tensorrt()  # a clear error before any export work when TensorRT is missing
        return TrtRunner(kind, cached_onnx(kind, model, model_dir), model.config, device,
                         engine_cache=engine_cache)
    raise UsageError(f"unknown backend {backend!r} (known: {', '.join(BACKENDS)})")
