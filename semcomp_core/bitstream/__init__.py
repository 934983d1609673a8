"""Bitstream container (format spec in :mod:`semcomp_core.bitstream.container`)."""
from .container import (MAGIC, MAX_LAYERS, MAX_SIDE, READABLE_VERSIONS, VERSION, Container, bits_per_pixel,
                        decode_varint, encode_varint, layer_ends, pack, truncate, unpack)
from .ids import CodecId, LayerId

__all__ = ["MAGIC", "MAX_LAYERS", "MAX_SIDE", "READABLE_VERSIONS", "VERSION", "Container", "CodecId", "LayerId",
           "bits_per_pixel", "decode_varint", "encode_varint", "layer_ends", "pack", "truncate", "unpack"]
