"""Layer contract: a layer turns one kind of semantic value into bytes and back.

Each layer class has a fixed ``layer_id`` (semcomp_core.bitstream.ids.LayerId)
and a registry name. ``decode`` raises only BitstreamError on bad payloads.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from ..registry import Registry


class Layer(ABC):
    layer_id: ClassVar[int]
    name: ClassVar[str]

    @abstractmethod
    def encode(self, value: Any) -> bytes:
        """Serialise ``value``; ValueError if it cannot be represented."""

    @abstractmethod
    def decode(self, payload: bytes) -> Any:
        """Parse a payload; BitstreamError on anything malformed."""

    @classmethod
    def describe(cls, payload: bytes) -> dict:
        """What the payload's own header says (for ``semcomp inspect``), without decoding the rest;
        BitstreamError if the header is malformed."""
        return {}


LAYERS: Registry[type[Layer]] = Registry("layer")


def register_layer(cls: type[Layer]) -> type[Layer]:
    return LAYERS.register(cls.name, cls)
