"""Classic baselines through Pillow: ``jpeg`` and ``webp``.

Their files travel as the IMAGE layer of a container, so ``decode`` needs
only the container header. Decoding checks the embedded image size against
the container header before any pixel buffer is allocated.
"""
from __future__ import annotations

import io
import warnings

import numpy as np
import PIL
from PIL import Image

from ..bitstream import CodecId, Container, LayerId
from ..errors import BitstreamError
from . import register_codec
from .base import Codec, Param


def decode_pillow_payload(payload: bytes, height: int, width: int, fmt: str) -> np.ndarray:
    """Decode an image file held in ``payload``; BitstreamError on anything wrong."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(payload), formats=[fmt]) as im:
                if im.size != (width, height):
                    raise BitstreamError(
                        f"{fmt} payload is {im.size[0]}x{im.size[1]}, header says {width}x{height}")
                im.load()
                arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except BitstreamError:
        raise
    except Exception as exc:  # Pillow raises many types on corrupt data
        raise BitstreamError(f"corrupt {fmt} payload: {type(exc).__name__}: {exc}") from None
    return np.ascontiguousarray(arr)


class _PillowCodec(Codec):
    fmt = ""
    codec_id = 0
    quality_param = "quality"

    @property
    def implementation(self) -> str:
        return f"{self.name} (Pillow {PIL.__version__})"

    def _save_kwargs(self) -> dict:
        raise NotImplementedError

    def encode_layers(self, image):
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, format=self.fmt, **self._save_kwargs())
        return self.codec_id, [(LayerId.IMAGE, buf.getvalue())]

    def decode_container(self, container: Container) -> np.ndarray:
        payload = container.layer(LayerId.IMAGE)
        return decode_pillow_payload(payload, container.height, container.width, self.fmt)


@register_codec
class JpegCodec(_PillowCodec):
    name = "jpeg"
    summary = "baseline JPEG (libjpeg via Pillow), 4:2:0, optimised Huffman tables"
    codec_ids = (CodecId.JPEG,)
    codec_id = CodecId.JPEG
    fmt = "JPEG"
    params = {
        "quality": Param(int, 10, "JPEG quality 1..95", low=1, high=95),
    }

    def _save_kwargs(self):
        return {"quality": self.config["quality"], "optimize": True, "subsampling": 2}


@register_codec
class WebpCodec(_PillowCodec):
    name = "webp"
    summary = "lossy WebP (libwebp via Pillow), method 6"
    codec_ids = (CodecId.WEBP,)
    codec_id = CodecId.WEBP
    fmt = "WEBP"
    params = {
        "quality": Param(int, 5, "WebP quality 0..100", low=0, high=100),
    }

    def _save_kwargs(self):
        return {"quality": self.config["quality"], "method": 6, "exif": b"", "icc_profile": None}
