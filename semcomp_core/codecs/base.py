"""The one Codec contract every method implements, classic baselines included.

``encode(image) -> bytes`` returns a whole container (semcomp_core.bitstream),
``decode(bytes) -> image`` reads one. Images are (H, W, 3) uint8 RGB.

A codec declares its tunable parameters as :class:`Param` objects; the CLI's
``--quality`` sets the parameter named by ``quality_param``. Anything the
decoder needs travels in the bitstream, so ``decode`` works on a codec built
with default parameters (see :func:`semcomp_core.codecs.decode`).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

import numpy as np

from ..bitstream import Container, pack, unpack
from ..devices import check_device
from ..errors import BitstreamError, UsageError
from ..imageio import as_rgb


@dataclass(frozen=True)
class Param:
    """A codec parameter: type, default, allowed range or values, description."""

    type: type
    default: Any
    description: str
    low: float | None = None
    high: float | None = None
    choices: Sequence[Any] | None = None

    def coerce(self, name: str, value: Any) -> Any:
        try:
            if self.type is bool and isinstance(value, str):
                if value.lower() not in ("1", "0", "true", "false", "yes", "no"):
                    raise ValueError(value)
                v = value.lower() in ("1", "true", "yes")
            else:
                v = self.type(value)
        except (TypeError, ValueError):
            raise UsageError(f"parameter {name}={value!r} is not a valid {self.type.__name__}") from None
        if self.choices is not None and v not in self.choices:
            raise UsageError(f"parameter {name}={v!r} not one of {list(self.choices)}")
        if self.low is not None and v < self.low or self.high is not None and v > self.high:
            raise UsageError(f"parameter {name}={v!r} outside [{self.low}, {self.high}]")
        return v


class Codec(ABC):
    """Base class: subclasses set the class attributes and implement two methods."""

    #: registry name, e.g. "jpeg"
    name: ClassVar[str] = ""
    #: codec ids this class decodes (first one is what it normally writes)
    codec_ids: ClassVar[tuple[int, ...]] = ()
    #: declared parameters
    params: ClassVar[dict[str, Param]] = {}
    #: which parameter ``--quality`` sets (None: the codec has no quality knob)
    quality_param: ClassVar[str | None] = None
    #: one-line description for ``semcomp codecs --verbose``
    summary: ClassVar[str] = ""

    def __init__(self, device: str = "cpu", **params: Any) -> None:
        self.device = check_device(device)
        unknown = sorted(set(params) - set(self.params))
        if unknown:
            known = ", ".join(sorted(self.params)) or "none"
            raise UsageError(f"codec {self.name!r} has no parameter {unknown[0]!r} (parameters: {known})")
        self.config = {k: p.default for k, p in self.params.items()}
        for k, v in params.items():
            self.config[k] = self.params[k].coerce(k, v)

    # -- what subclasses implement -------------------------------------------------
    @abstractmethod
    def encode_layers(self, image: np.ndarray) -> tuple[int, list[tuple[int, bytes]]]:
        """Return ``(codec id, [(layer id, payload), ...])`` for an RGB image."""

    @abstractmethod
    def decode_container(self, container: Container) -> np.ndarray:
        """Reconstruct the RGB image from a parsed container.

        Must raise only BitstreamError on bad payloads and return an array of
        exactly (container.height, container.width, 3) uint8.
        """

    # -- the contract ----------------------------------------------------------------
    @property
    def implementation(self) -> str:
        """Which implementation runs (library and version), for reports."""
        return self.name

    def label(self) -> str:
        """Name, quality and non-default parameters, e.g. ``bpg:q=45`` (parseable by ``create``)."""
        keys = [k for k in self.params if k == self.quality_param or self.config[k] != self.params[k].default]
        return self.name + "".join(f":{k}={self.config[k]}" for k in keys)

    def encode(self, image: np.ndarray) -> bytes:
        rgb = as_rgb(image)
        codec_id, layers = self.encode_layers(rgb)
        return pack(codec_id, rgb.shape[0], rgb.shape[1], layers)

    def decode(self, data: bytes) -> np.ndarray:
        return self.reconstruct(unpack(data))

    def reconstruct(self, container: Container) -> np.ndarray:
        """Decode an already parsed container (callers that parsed it once need not parse it again)."""
        if container.codec_id not in self.codec_ids:
            raise BitstreamError(
                f"codec id {container.codec_id} cannot be decoded by codec {self.name!r}")
        out = self.decode_container(container)
        if out.shape != (container.height, container.width, 3) or out.dtype != np.uint8:
            raise BitstreamError(
                f"decoded image has shape {out.shape}, header says {container.height}x{container.width}")
        return out
