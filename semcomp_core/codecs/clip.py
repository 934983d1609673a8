"""``clip``: a CLIP image embedding + a tiny colour map (CoCliCo), rendered by the diffusion renderer.

Encoder (vehicle): the CLIP image tower (``clip=``: an open_clip tower folder; default the one shipped
with the diffusion renderer) embeds the frame, the product quantiser codes it in ``bytes`` bytes
(CLIP layer, id 3), the colour map of the level goes into the COLORMAP layer; ``segmap=on`` adds the
level's seg map (embedding + seg map + colour map). DECODER_PARAMS carries the seed (and the label
table when a seg map is sent).

Receiver: the codes are dequantised with the receiver's copy of the codebooks (its tower folder; a
container quantised with other codebooks raises ModelMismatchError), and the diffusion renderer
(``renderer=ldm``, the default here) draws the frame with the embedding by cross-attention and the
colour map (and seg map) as channels. ``renderer=gan`` renders only containers that carry a seg map
(ignoring the embedding); a container without one is refused with a clear error.

What the shipped tower can show: it was trained from scratch on CamVid jointly with the renderer, so
its embedding is a learned global code of the frame (scene layout, light, colour statistics), not
CLIP's open-vocabulary semantics -- see the README's CLIP section.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..bitstream import CodecId, Container, LayerId
from ..errors import BitstreamError, UsageError
from ..layers import ColorMapLayer, DecoderParams, DecoderParamsLayer, SegMapLayer, thumbnail
from ..layers.clip import ClipLayer
from ..layers.colormap import dequantise
from . import register_codec
from .base import Param
from .semantic import (SemanticGanCodec, _load, ldm_dir, map_factor_from_shape, MAX_RENDER_PIXELS,
                       no_semantics_frame)
from .semantic_levels import grid_factor


def _clip_dir(value: str) -> str:
    from pathlib import Path

    path = Path(ldm_dir("default", check=False)) / "clip" if value == "default" else Path(value)
    if not (path / "config.json").exists():
        raise UsageError(f"CLIP tower not found at {path} (train one with `semcomp train ldm`, or pass clip=PATH)")
    return str(path)


_OWN = {
    "bytes": Param(int, 64, "size of the quantised CLIP embedding on the link, in bytes (one of the tower's "
                   "product quantisers: 32, 64 or 128 for the shipped tower)", low=1, high=255),
    "segmap": Param(str, "off", "on: also send the level's seg map (embedding + seg map + colour map)",
                    choices=("off", "on")),
    "clip": Param(str, "default", "CLIP tower folder (open_clip image tower + product quantisers), or 'default' for "
                  "the one shipped with the diffusion renderer", local=True),
}


@register_codec
class ClipCodec(SemanticGanCodec):
    name = "clip"
    summary = "CLIP image embedding + colour map (CoCliCo) [+ seg map], rendered by latent diffusion"
    codec_ids = (CodecId.CLIP,)
    quality_param = "level"
    #: every receiver builds this codec (DecoderStage's warm-up) but only CLIP containers need the diffusion
    #: weights: they are checked when one arrives (decode_container), not at construction
    check_renderer_at_init = False
    params = {**{k: v for k, v in SemanticGanCodec.params.items()
                 if k not in ("gop", "scenecut", "stick", "kbps", "fps", "max_bytes", "temporal")},
              **_OWN}
    params["renderer"] = replace(SemanticGanCodec.params["renderer"], default="ldm")
    params["level"] = replace(SemanticGanCodec.params["level"],
                              description="colour-map (and seg-map) size: a semantic-gan level 0..4 or xs/s/m/l/xl")
    # kept so the shared machinery finds them; only 'none' is accepted (no ROI or structure layer here)
    params["roi"] = Param(str, "none", "not available in the clip codec (always none)", choices=("none",))
    params["structure"] = Param(str, "none", "not available in the clip codec (always none)", choices=("none",))

    def __init__(self, device: str = "cpu", **params) -> None:
        super().__init__(device, **params)
        self._clip = None

    @property
    def _clip_path(self) -> str:
        """The sender's tower folder (resolved on first use: a receiver never needs it)."""
        if self._clip is None:
            self._clip = _clip_dir(self.config["clip"])
        return self._clip

    @property
    def tower(self):
        """The sender's CLIP tower (``clip=``)."""
        return _load(self._clip_path, self.device)

    def receiver_tower(self):
        """The receiver's tower (its codebooks): the diffusion renderer's clip/ folder."""
        tower = self.ldm.clip
        if tower is None:
            raise UsageError(f"the diffusion renderer at {self._ldm_path} has no clip/ tower: it cannot decode "
                             f"CLIP containers")
        return tower

    def embed(self, image: np.ndarray) -> np.ndarray:
        """The tower's embedding (dim,) of a frame."""
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None].float().to(self.device)
            return self.tower(x)[0].float().cpu().numpy()

    def encode_layers(self, image):
        import torch

        h, w = image.shape[:2]
        nbytes = self.config["bytes"]
        tower = self.tower
        if nbytes not in tower.pq_bytes:
            raise UsageError(f"bytes={nbytes}: the CLIP tower at {self._clip_path} quantises to "
                             f"{list(tower.pq_bytes)} bytes")
        codes = tower.quantise(torch.from_numpy(self.embed(image))[None].to(self.device), nbytes)[0].cpu().numpy()
        layers = [(LayerId.CLIP, ClipLayer(tower.quantiser_tags()).encode(codes))]
        table = 0
        if self.config["segmap"] == "on":
            factor = grid_factor(self.level.map_factor, h, w)
            labels, _ = self.grid_labels(self.segment_logits(image), (-(-h // factor), -(-w // factor)))
            layers.append((LayerId.SEGMAP, SegMapLayer(num_classes=self.segmenter.num_classes).encode(labels)))
            table = self.label_table(self.segmenter)
        tw, th = self.level.thumb
        layers.append((LayerId.COLORMAP, self.colormap_layer.encode(thumbnail(image, min(tw, w), min(th, h)))))
        params = DecoderParamsLayer().encode(DecoderParams(table, self.config["seed"]))
        return CodecId.CLIP, [(LayerId.DECODER_PARAMS, params)] + layers

    def decode_container(self, container: Container) -> np.ndarray:
        import torch

        if self.config["renderer"] == "ldm":
            ldm_dir(self.config["ldm"])              # UsageError naming the missing diffusion weights

        H, W = container.height, container.width
        if H * W > MAX_RENDER_PIXELS:
            raise BitstreamError(f"frame {W}x{H} larger than this decoder renders ({MAX_RENDER_PIXELS} pixels)")
        ids = container.layer_ids
        for lid in set(ids):
            if ids.count(lid) > 1:
                raise BitstreamError(f"more than one layer {lid} in a CLIP container")
        unknown = [lid for lid in ids if lid not in (LayerId.DECODER_PARAMS, LayerId.CLIP, LayerId.SEGMAP,
                                                     LayerId.COLORMAP)]
        if unknown:
            raise BitstreamError(f"layers {unknown} do not belong in a CLIP container")
        params = DecoderParamsLayer().decode(container.layer(LayerId.DECODER_PARAMS))
        has_seg = container.find(LayerId.SEGMAP) is not None
        if self.config["renderer"] == "gan" and not has_seg:
            raise UsageError("renderer gan cannot render this CLIP container: it carries no seg map (layers "
                             f"{[int(i) for i in ids]}); decode with renderer=ldm")
        embed = None
        payload = container.find(LayerId.CLIP)
        if payload is not None and self.config["renderer"] == "ldm":
            tower = self.receiver_tower()
            codes = ClipLayer(tower.quantiser_tags()).decode(payload)
            embed = tower.dequantise(torch.from_numpy(codes)[None], codes.size)[0].float().cpu().numpy()
        elif payload is None and not container.truncated:
            raise BitstreamError("CLIP container without its CLIP layer")
        labels, factor = None, 64
        if has_seg:
            model = self.decoder_model
            if params.label_table != self.label_table(model):
                from ..errors import ModelMismatchError

                raise ModelMismatchError(f"container's label table {params.label_table:#06x} is not the renderer's "
                                         f"({self.label_table(model):#06x})")
            seg = container.layer(LayerId.SEGMAP)
            factor = map_factor_from_shape(*SegMapLayer.peek_shape(seg), H, W)
            labels = self.segmap_layer.decode(seg, max_shape=(H, W))
            if int(labels.max()) >= model.num_classes:
                raise BitstreamError(f"seg-map label {int(labels.max())} outside the renderer's classes")
        col = container.find(LayerId.COLORMAP)
        if col is None:
            if not container.truncated:
                raise BitstreamError("CLIP container without its colour map")
            if labels is None and embed is None:
                return no_semantics_frame(H, W)
            thumb = np.full((2, 2, 3), 128, np.uint8)
        else:
            thumb = dequantise(*ColorMapLayer.decode_quantised(col))
        return self.render(labels, factor, thumb, H, W, params.seed, embed=embed)

    def warm_up_receiver(self) -> None:
        """Run the diffusion renderer once when this receiver has one (a receiver without diffusion weights
        still starts: CLIP containers then fail per frame with a clear error, and are counted)."""
        from pathlib import Path

        if self.config["renderer"] == "ldm" and not (Path(self._ldm_path) / "unet" / "config.json").exists():
            return
        self.render(None, 64, np.full((2, 2, 3), 128, np.uint8), 64, 64, embed=None)

    def warm_up_sender(self, frame: np.ndarray) -> None:
        self.embed(frame)

    def networks(self) -> dict:
        nets = {"clip-tower": (self.tower, self._clip_path)}
        if self.config["segmap"] == "on":
            nets["segmenter"] = (self.segmenter, self._seg_path)
        if self.config["renderer"] == "ldm":
            nets.update(self.ldm.networks())
        return nets

    def real_feeds(self, image: np.ndarray) -> dict:
        """Network inputs made from a real frame (export parity checks)."""
        import torch

        from ..bitstream import unpack

        c = unpack(self.encode(image))
        thumb = dequantise(*ColorMapLayer.decode_quantised(c.layer(LayerId.COLORMAP)))
        frame = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None]
        out = {"clip-tower": {"image": self.tower.prepare(frame).numpy()},
               "segmenter": {"image": np.ascontiguousarray(image.transpose(2, 0, 1)[None], dtype=np.float32)}}
        if self.config["renderer"] == "ldm":
            codes = ClipLayer(self.tower.quantiser_tags()).decode(c.layer(LayerId.CLIP))
            embed = self.tower.dequantise(torch.from_numpy(codes)[None], codes.size)[0].float().cpu().numpy()
            out.update(self.ldm_feeds(None, 64, thumb, c.height, c.width, 0, embed))
        return out

    def export_info(self) -> dict:
        return {"codec": self.name, "codec_id": int(CodecId.CLIP), "bytes": self.config["bytes"],
                "clip": self.tower.config}

    @property
    def implementation(self) -> str:
        return super().implementation.replace("semantic-gan (", "clip (", 1) + (
            f"; clip tower {self._clip}" if self._clip else "")

    def open_encoder(self, fps: float | None = None):
        from ..stream import IntraEncoderSession

        return IntraEncoderSession(self, fps)

    def open_decoder(self):
        from ..stream import IntraDecoderSession

        return IntraDecoderSession(self)
