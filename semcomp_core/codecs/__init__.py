"""Codecs behind one contract and one registry of names.

* :data:`CODECS` -- name -> Codec class (duplicates rejected)
* :func:`create` -- build a codec from a name or ``NAME:K=V`` spec
* :func:`build` -- the same with a separate quality value and ``K=V`` options
  (what the CLI's ``--codec/--quality`` and ``encoder_node``'s parameters use)
* :func:`decoder_for` / :func:`decode` -- the receiver: decode any container,
  dispatching on its codec id, with the receiver's own options
  (``decoder=DIR``, ...). ``semcomp decode``, ``decoder_node`` and the
  benchmark all decode through :func:`decoder_for`, so what the benchmark
  scores is what a receiver renders.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..bitstream import Container, unpack
from ..devices import check_device
from ..errors import BitstreamError, RegistryError, UsageError
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


def quality_value(quality: Any) -> int | None:
    """A quality setting as an integer, or None for "the codec's default" (None, empty, negative)."""
    if quality is None or str(quality).strip() == "":
        return None
    try:
        q = int(quality)
    except (TypeError, ValueError):
        raise UsageError(f"quality must be an integer, got {quality!r}") from None
    return None if q < 0 else q


def resolve(spec: str | CodecSpec, quality: Any = None, device: str = "cpu",
            options: str = "") -> tuple[type[Codec], dict[str, Any]]:
    """Check codec settings without building (or loading) anything: ``(codec class, coerced parameters)``.

    ``spec`` is ``NAME[:K=V...]``; ``options`` extra ``K=V[:K=V]`` that win over the spec; ``quality``
    (see :func:`quality_value`) sets the codec's quality knob (``quality`` for jpeg/webp, ``q`` for
    bpg, ``level`` for semantic-gan) and wins over both. Unknown codecs or keys, values out of range
    and bad devices raise UsageError naming the problem (e.g. ``parameter q=90 outside [0, 51]``)."""
    if isinstance(spec, str):
        (spec,) = parse_spec(spec)
    cls = CODECS.get(spec.name)
    params = dict(spec.params)
    opts = str(options or "").strip().strip(":")
    if opts:
        (extra,) = parse_spec("x:" + opts)
        params.update(extra.params)
    q = quality_value(quality)
    if q is not None:
        if cls.quality_param is None:
            raise UsageError(f"codec {spec.name!r} has no quality parameter")
        params[cls.quality_param] = q
    unknown = sorted(set(params) - set(cls.params))
    if unknown:
        known = ", ".join(sorted(cls.params)) or "none"
        raise UsageError(f"codec {cls.name!r} has no parameter {unknown[0]!r} (parameters: {known})")
    check_device(device)
    return cls, {k: cls.params[k].coerce(k, v) for k, v in params.items()}


def build(spec: str | CodecSpec, quality: Any = None, device: str = "cpu", options: str = "") -> Codec:
    """Build a codec from the settings :func:`resolve` checks (what the CLI's ``--codec/--quality`` and
    ``encoder_node``'s parameters use)."""
    cls, params = resolve(spec, quality, device, options)
    return cls(device=device, **params)


def parse_receiver_options(options: str | dict | None) -> dict[str, str]:
    """``K=V[:K=V]`` receiver options as a dict; UsageError for a key that is no codec's receiver-side parameter."""
    if not options:
        return {}
    if isinstance(options, dict):
        opts = dict(options)
    else:
        text = str(options).strip().strip(":")
        if not text:
            return {}
        (spec,) = parse_spec("x:" + text)
        opts = dict(spec.params)
    known = {k for _, cls in CODECS.items() for k, p in cls.params.items() if p.side == "receiver"}
    for k in opts:
        if k not in known:
            raise UsageError(f"{k!r} is not a receiver option (receiver options: {', '.join(sorted(known)) or 'none'})")
    return opts


def codec_class_for_id(codec_id: int) -> type[Codec]:
    try:
        return _BY_ID[codec_id]
    except KeyError:
        raise BitstreamError(f"no codec in this build decodes codec id {codec_id}") from None


_DECODER_CACHE: dict[tuple, Codec] = {}


def decoder_for(data: bytes | Container, device: str = "cpu", receiver: str | dict | None = None) -> Codec:
    """The (cached) codec instance a receiver decodes ``data`` (bytes or a parsed container) with.

    The codec comes from the header's codec id; ``receiver`` holds the receiver's own options
    (``K=V[:K=V]`` text or a dict, e.g. ``decoder=/models/gan``): each codec takes the ones it declares
    as receiver-side parameters and ignores the others. Everything the encoder chose travels in the
    container, so no encoder parameter is needed here."""
    opts = parse_receiver_options(receiver)
    container = data if isinstance(data, Container) else unpack(data)
    return receiver_instance(codec_class_for_id(container.codec_id), device, opts)


def receiver_instance(cls: type[Codec], device: str = "cpu", receiver: str | dict | None = None) -> Codec:
    """The (cached) receiver instance of codec class ``cls`` -- what :func:`decoder_for` returns for its
    containers; used directly to warm a receiver up before its first frame."""
    opts = parse_receiver_options(receiver)
    mine = {k: v for k, v in opts.items() if k in cls.params and cls.params[k].side == "receiver"}
    key = (cls, device, tuple(sorted((k, str(v)) for k, v in mine.items())))
    if key not in _DECODER_CACHE:
        _DECODER_CACHE[key] = cls(device=device, **mine)
    return _DECODER_CACHE[key]


def decode(data: bytes, device: str = "cpu", receiver: str | dict | None = None) -> np.ndarray:
    """Decode any semcomp container (parsed once) as a receiver would; BitstreamError on bad data."""
    opts = parse_receiver_options(receiver)
    container = unpack(data)
    return decoder_for(container, device, opts).reconstruct(container)


def available() -> list[str]:
    return CODECS.names()


# Built-in codecs register themselves on import.
from . import bpg, bpg_se, classic, clip, gc, semantic, video  # noqa: E402,F401

__all__ = ["CODECS", "Codec", "CodecSpec", "Param", "available", "build", "codec_class_for_id", "create",
           "decode", "decoder_for", "parse_receiver_options", "quality_value", "receiver_instance", "resolve", "parse_spec", "parse_spec_list", "register_codec"]
