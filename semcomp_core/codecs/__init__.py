"""Codecs behind one contract and one registry of names.

* :data:`CODECS` -- name -> Codec class (duplicates rejected)
* :func:`create` -- build a codec from a name or ``NAME:K=V`` spec
* :func:`decode` -- decode any container, dispatching on its codec id alone
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..bitstream import Container, unpack
from ..errors import BitstreamError, RegistryError
from ..registry import Registry
from .base import Codec, Param
from .spec import CodecSpec, parse_spec, parse_spec_list

CODECS: Registry[type[Codec]] = Registry("codec")
_BY_ID: dict[int, type[Codec]] = {}


def register_codec(cls: type[Codec]) -> type[Codec]:
    """Class decorator: add a codec to the registry and its ids to the decode table."""
    for cid in cls.codec_ids:
        if cid in _BY_ID:
            raise RegistryError(f"codec id {cid} of {cls.name!r} already belongs to {_BY_ID[cid].name!r}")
    CODECS.register(cls.name, cls)
    for cid in cls.codec_ids:
        _BY_ID[int(cid)] = cls
    return cls


def create(spec: str | CodecSpec, device: str = "cpu", **overrides: Any) -> Codec:
    """Instantiate a codec from ``"name"``, ``"name:k=v:..."`` or a CodecSpec."""
    if isinstance(spec, str):
        (spec,) = parse_spec(spec)
    cls = CODECS.get(spec.name)
    params = dict(spec.params)
    params.update(overrides)
    return cls(device=device, **params)


def codec_class_for_id(codec_id: int) -> type[Codec]:
    try:
        return _BY_ID[codec_id]
    except KeyError:
        raise BitstreamError(f"no codec in this build decodes codec id {codec_id}") from None


_DECODER_CACHE: dict[tuple[type[Codec], str], Codec] = {}


def decoder_for(data: bytes | Container, device: str = "cpu") -> Codec:
    """The (cached) codec instance able to decode ``data`` (bytes or a parsed container), from its header."""
    container = data if isinstance(data, Container) else unpack(data)
    cls = codec_class_for_id(container.codec_id)
    key = (cls, device)
    if key not in _DECODER_CACHE:
        _DECODER_CACHE[key] = cls(device=device)
    return _DECODER_CACHE[key]


def decode(data: bytes, device: str = "cpu") -> np.ndarray:
    """Decode any semcomp container (parsed once); BitstreamError on bad data."""
    container = unpack(data)
    return decoder_for(container, device).reconstruct(container)


def available() -> list[str]:
    return CODECS.names()


# Built-in codecs register themselves on import.
from . import bpg, classic, semantic  # noqa: E402,F401

__all__ = ["CODECS", "Codec", "CodecSpec", "Param", "available", "codec_class_for_id", "create",
           "decode", "decoder_for", "parse_spec", "parse_spec_list", "register_codec"]
