"""The one Codec contract every method implements, classic baselines included.

``encode(image) -> bytes`` returns a whole container (semcomp_core.bitstream),
``decode(bytes) -> image`` reads one. Images are (H, W, 3) uint8 RGB.

A codec declares its tunable parameters as :class:`Param` objects; the CLI's
``--quality`` sets the parameter named by ``quality_param``. Each parameter
belongs to one side of the link:

* ``side="encoder"`` (the default): the sender's choice. Whatever of it the
  decoder needs travels in the bitstream (e.g. semantic-gan's ``seed``), so a
  receiver never needs the encoder's parameters.
* ``side="receiver"``: the receiver's own configuration (which weights it runs;
  later the renderer and the inference backend). It never changes the bytes;
  ``semcomp decode --decoder-options``, ``decoder_node``'s ``decoder_options``
  and the benchmark (which decodes through exactly the receiver's path,
  :func:`semcomp_core.codecs.decoder_for`) pass it.

``local=True`` marks a value that names a file on this machine: it is never
published (:meth:`Codec.wire_label`, the ``CompressedImage.format`` string).
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
    #: "encoder" (the sender's choice) or "receiver" (the receiver's own configuration)
    side: str = "encoder"
    #: the value names a local file or folder: never published in wire labels
    local: bool = False

    def __post_init__(self) -> None:
        if self.side not in ("encoder", "receiver"):
            raise ValueError(f"Param side must be 'encoder' or 'receiver', got {self.side!r}")

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
        """Name, quality and non-default parameters, e.g. ``bpg:q=45`` (parseable by ``create``).

        Local to this machine (benchmark rows and folders); see :meth:`wire_label` for what is published."""
        keys = [k for k in self.params if k == self.quality_param or self.config[k] != self.params[k].default]
        return self.name + "".join(f":{k}={self.config[k]}" for k in keys)

    def wire_label(self) -> str:
        """What a receiver may be told about the stream: name, quality and the non-default encoder-side
        parameters that are not local paths, e.g. ``semantic-gan:level=2:seed=5``."""
        keys = [k for k, p in self.params.items() if p.side == "encoder" and not p.local
                and (k == self.quality_param or self.config[k] != p.default)]
        return self.name + "".join(f":{k}={self.config[k]}" for k in keys)

    def warm_up_receiver(self) -> None:
        """Load and run whatever the decoder runs once (a tiny dummy frame), so a receiver's first real
        frame has no loading spike. Codecs without networks have nothing to do."""

    def receiver_config(self) -> dict[str, Any]:
        """The receiver-side parameters of this instance (what :func:`codecs.decoder_for` takes)."""
        return {k: self.config[k] for k, p in self.params.items() if p.side == "receiver"}

    # -- streams (semcomp_core.stream) ----------------------------------------------------
    def open_encoder(self, fps: float | None = None):
        """A sender's stream session (:class:`semcomp_core.stream.EncoderSession`) over this instance.

        Default: every frame a key frame, exactly :meth:`encode`. Codecs with inter coding override it."""
        from ..stream import IntraEncoderSession

        return IntraEncoderSession(self, fps)

    def open_decoder(self):
        """A receiver's stream session (:class:`semcomp_core.stream.DecoderSession`); call it on the
        receiver's instance (:func:`semcomp_core.codecs.receiver_instance`)."""
        from ..stream import IntraDecoderSession

        return IntraDecoderSession(self)

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
