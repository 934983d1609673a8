"""What a container holds, for people: ``semcomp inspect FILE.smc [--json]``.

:func:`describe` parses a container strictly (BitstreamError on anything bad)
and returns its header, framing overhead and layer table -- id, name, bytes,
share of the whole container -- plus what each layer's own header says
(:meth:`semcomp_core.layers.Layer.describe`: seg-map size and alphabet,
colour-map size and quantiser, the decoder parameters). Nothing is decoded
beyond those headers, so it is instant for any codec.
"""
from __future__ import annotations

from .container import Container, bits_per_pixel, unpack
from .ids import CodecId, LayerId


def _name(enum, value: int) -> str:
    try:
        return enum(value).name.lower().replace("_", "-")
    except ValueError:
        return f"id-{value}"


def describe(data: bytes) -> dict:
    """A JSON-ready description of the container in ``data``; BitstreamError if it is not a valid one."""
    from ..codecs import codec_class_for_id
    from ..layers import LAYERS

    c: Container = unpack(data)
    by_id = {cls.layer_id: cls for _, cls in LAYERS.items()}
    total = len(data)
    payload = sum(len(p) for _, p in c.layers)
    layers = []
    for lid, p in c.layers:
        cls = by_id.get(lid)
        layers.append({"id": int(lid), "name": _layer_name(by_id, lid), "bytes": len(p),
                       "share": len(p) / total, **({"header": cls.describe(p)} if cls else {})})
    return {
        "format_version": c.version, "codec_id": c.codec_id, "codec_id_name": _name(CodecId, c.codec_id),
        "codec": codec_class_for_id(c.codec_id).name, "height": c.height, "width": c.width,
        "bytes": total, "bpp": bits_per_pixel(total, c.height, c.width),
        "framing_bytes": total - payload, "check": data[-4:].hex() if c.version < 4 else data[-2:].hex(),
        "truncated": c.truncated, "declared_layers": [_layer_name(by_id, lid) for lid in c.declared or ()],
        "layers": layers,
    }


def _layer_name(by_id: dict, lid: int) -> str:
    cls = by_id.get(lid)
    return cls.name if cls else _name(LayerId, lid)


def format_description(d: dict) -> str:
    """The plain-text form printed by ``semcomp inspect``."""
    lines = [f"semcomp container v{d['format_version']}: codec {d['codec']} (id {d['codec_id']}, "
             f"{d['codec_id_name']}), {d['width']}x{d['height']}",
             f"{d['bytes']} bytes = {d['bpp']:.5f} bpp; framing (magic, version, ids, sizes, layer table, "
             f"checks, last {d['check']}): {d['framing_bytes']} bytes "
             f"({100 * d['framing_bytes'] / d['bytes']:.1f}%)",
             f"{'id':>3}  {'layer':<15} {'bytes':>7} {'share':>7}  header"]
    for layer in d["layers"]:
        header = ", ".join(f"{k}={v}" for k, v in layer.get("header", {}).items()) or "-"
        lines.append(f"{layer['id']:>3}  {layer['name']:<15} {layer['bytes']:>7} {100 * layer['share']:>6.1f}%  "
                     f"{header}")
    if d["truncated"]:
        lost = d["declared_layers"][len(d["layers"]):]
        lines.append(f"truncated: cut after {len(d['layers'])} of {len(d['declared_layers'])} layers; lost: "
                     f"{', '.join(lost)} (decodes from the layers above)")
    return "\n".join(lines)
