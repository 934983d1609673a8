"""``bpg-se``: BPG with semantic enhancement (after JPD-SE, Duan, Chen & Gu, TIP 2022).

Sender: the frame is coded as the ``bpg`` codec's x265 path codes it (HEVC intra at QP ``q``), and the
encoder's segmenter labels it on a 1/``scale`` grid (the grid follows the frame size as the semantic
levels' do). Receiver: the HEVC picture is decoded, then the enhancement network
(:mod:`semcomp_core.models.enhancer`) adds a residual predicted from the picture, the upsampled label
map and q.

Layers, in this order (every cut after a complete layer decodes)::

    IMAGE           the HEVC_INTRA payload of ``bpg`` (codecs.bpg): the base picture
    ENHANCE_PARAMS  label-table id + q (layers.enhance_params), 3 bytes
    SEGMAP          the label map (layers.segmap), map factor recovered from its size

A container cut after IMAGE decodes to the plain BPG picture; cut after ENHANCE_PARAMS, the network
enhances without labels (it was trained with label dropout). Every byte counts: ``bpp`` includes the
seg map and the container, so comparisons with ``bpg`` are at equal bytes. The base is always the
x265 path (the network was trained on x265 pictures; a bpgenc/HM picture has similar artefacts but is
not what it saw), whatever ``bpg``'s ``impl`` would pick.

Receiver-side: ``enhancer=`` (weights folder, default the shipped one) and ``backend=`` (torch,
onnxruntime, tensorrt through the one inference interface). Decoding is deterministic.
"""
from __future__ import annotations

import numpy as np

from ..bitstream import CodecId, Container, LayerId
from ..errors import BitstreamError, ModelMismatchError, UsageError
from ..inference.base import BACKENDS
from ..layers import EnhanceParams, EnhanceParamsLayer, SegMapLayer, label_table_id
from . import register_codec
from .base import Codec, Param
from .bpg import heif_to_payload, x265_decode, x265_encode_heif, x265_version
from .semantic import (MAX_RENDER_PIXELS, SemanticGanCodec, _load, _model_dir, _runner, map_factor_from_shape,
                       padded_size, upsampled_labels)
from .semantic_levels import grid_factor


@register_codec
class BpgSeCodec(Codec):
    name = "bpg-se"
    summary = "BPG (x265 HEVC intra) + seg map; the receiver's network enhances the picture with the labels"
    codec_ids = (CodecId.BPG_SE,)
    quality_param = "q"
    params = {
        "q": Param(int, 51, "base picture quantiser 0..51 (the HEVC QP; the shipped network knows 35..51)",
                   low=0, high=51),
        "scale": Param(int, 16, "seg-map grid: 1/scale of a 480x360 frame (larger frames: coarser, as the "
                       "semantic levels); 16 costs about 60 bytes, 8 about 150", choices=(8, 16)),
        "m": Param(int, 8, "compression effort 1..9 of the base picture (as bpg's m)", low=1, high=9),
        "segmenter": Param(str, "default", "segmenter model folder, or 'default' for the shipped weights",
                           local=True),
        "seg_pixels": Param(int, 480 * 360, "working resolution of the segmenter in pixels (as semantic-gan's)",
                            low=0, high=2**26),
        "enhancer": Param(str, "default", "enhancement network folder the receiver runs, or 'default' for the "
                          "shipped weights", side="receiver", local=True),
        "backend": Param(str, "torch", "where the networks run: torch, onnxruntime or tensorrt",
                         choices=BACKENDS, side="receiver", local=True),
    }

    def __init__(self, device: str = "cpu", **params) -> None:
        super().__init__(device, **params)
        self._sem = None

    @property
    def _enh_path(self) -> str:
        return _model_dir(self.config["enhancer"], "bpg_se", "enhancer")

    @property
    def sender(self) -> SemanticGanCodec:
        """The segmentation path of the sender (semantic-gan's, so both label frames the same way)."""
        if self._sem is None:
            self._sem = SemanticGanCodec(self.device, segmenter=self.config["segmenter"],
                                         seg_pixels=self.config["seg_pixels"], backend=self.config["backend"],
                                         roi="none")
        return self._sem

    @property
    def enhancer(self):
        return _load(self._enh_path, self.device)

    def runner(self, kind: str = "enhancer"):
        return _runner(self._enh_path, self.device, kind, self.config["backend"])

    def networks(self) -> dict:
        return {"enhancer": (self.enhancer, self._enh_path)}

    @property
    def implementation(self) -> str:
        try:
            base = f"x265 {x265_version()}"
        except UsageError as exc:
            base = f"unavailable ({exc})"
        which = "shipped" if self.config["enhancer"] == "default" else self.config["enhancer"]
        return f"bpg-se (base: {base}; enhancer: {which}; backend {self.config['backend']})"

    def warm_up_receiver(self) -> None:
        self.enhance(np.full((16, 16, 3), 128, np.uint8), None, 16, 51)

    # -- sender ---------------------------------------------------------------------------
    def encode_layers(self, image: np.ndarray) -> tuple[int, list[tuple[int, bytes]]]:
        h, w = image.shape[:2]
        q = self.config["q"]
        base = heif_to_payload(x265_encode_heif(image, q, "420", self.config["m"]), h, w)
        sender = self.sender
        labels = sender.segment(image, grid_factor(self.config["scale"], h, w))
        seg = sender.segmenter
        params = EnhanceParams(label_table_id(seg.config.get("class_names"), seg.num_classes), q)
        return CodecId.BPG_SE, [(LayerId.IMAGE, base), (LayerId.ENHANCE_PARAMS, EnhanceParamsLayer().encode(params)),
                                (LayerId.SEGMAP, SegMapLayer(num_classes=seg.num_classes).encode(labels))]

    # -- receiver ---------------------------------------------------------------------------
    def decode_container(self, container: Container) -> np.ndarray:
        H, W = container.height, container.width
        if H * W > MAX_RENDER_PIXELS:
            raise BitstreamError(f"frame {W}x{H} larger than this decoder enhances ({MAX_RENDER_PIXELS} pixels)")
        ids = container.layer_ids
        for lid in set(ids):
            if ids.count(lid) > 1:
                raise BitstreamError(f"layer {lid} appears {ids.count(lid)} times")
        unknown = set(ids) - {LayerId.IMAGE, LayerId.ENHANCE_PARAMS, LayerId.SEGMAP}
        if unknown:
            raise BitstreamError(f"bpg-se container with layers it does not define: {sorted(unknown)}")
        base = x265_decode(container.layer(LayerId.IMAGE), H, W)
        payload = container.find(LayerId.ENHANCE_PARAMS)
        if payload is None:
            if not container.truncated:
                raise BitstreamError("bpg-se container without its enhance-params layer")
            return base                                   # cut after the base picture: plain BPG
        params = EnhanceParamsLayer().decode(payload)
        enh = self.enhancer
        mine = label_table_id(enh.config.get("class_names"), enh.num_classes)
        if params.label_table != mine:
            raise ModelMismatchError(f"container's label table {params.label_table:#06x} is not the one enhancer "
                                     f"{self.config['enhancer']!r} was trained on ({mine:#06x})")
        seg_payload = container.find(LayerId.SEGMAP)
        if seg_payload is None:
            if not container.truncated:
                raise BitstreamError("bpg-se container without its seg-map layer")
            return self.enhance(base, None, 16, params.q)
        factor = map_factor_from_shape(*SegMapLayer.peek_shape(seg_payload), H, W)
        labels = SegMapLayer().decode(seg_payload, max_shape=(H, W))
        if int(labels.max()) >= enh.num_classes:
            raise BitstreamError(f"seg-map label {int(labels.max())} outside the enhancer's {enh.num_classes} classes")
        return self.enhance(base, labels, factor, params.q)

    def enhancer_feeds(self, base: np.ndarray, labels: np.ndarray | None, factor: int, q: int) -> dict:
        """The enhancer's inputs (torch tensors, padded to multiples of 8) for a decoded base (H, W, 3)
        uint8, a label map at 1/factor (None: none) and the base's q (clamped to the trained range)."""
        import torch

        from ..models.blocks import pad_to

        H, W = base.shape[:2]
        k = self.enhancer.num_classes
        Hp, Wp = padded_size(H, W)
        image = pad_to(torch.from_numpy(np.array(base)).permute(2, 0, 1)[None].float(), 8)
        if labels is None:
            onehot, presence = torch.zeros(1, k, Hp, Wp), torch.zeros(1, 1, Hp, Wp)
        else:
            idx = upsampled_labels(labels, factor, H, W, k)
            onehot = (idx[None, :, :, None] == torch.arange(k, dtype=idx.dtype)).float().permute(0, 3, 1, 2)
            presence = torch.ones(1, 1, Hp, Wp)
        lo, hi = self.enhancer.config["q_range"]
        return {"image": image, "onehot": onehot, "presence": presence,
                "q": torch.full((1, 1, 1, 1), float(min(max(q, lo), hi)))}

    def enhance(self, base: np.ndarray, labels: np.ndarray | None, factor: int, q: int) -> np.ndarray:
        """The network's picture (H, W, 3) uint8 (see :meth:`enhancer_feeds`)."""
        H, W = base.shape[:2]
        out = self.runner()(**self.enhancer_feeds(base, labels, factor, q))
        out = np.clip(out[0, :, :H, :W], 0.0, 255.0)
        return np.ascontiguousarray(np.rint(out).astype(np.uint8).transpose(1, 2, 0))

    # -- export -------------------------------------------------------------------------------
    def export_info(self) -> dict:
        enh = self.enhancer
        return {"codec": self.name, "codec_id": int(CodecId.BPG_SE), "num_classes": enh.num_classes,
                "class_names": enh.config.get("class_names"), "q_range": list(enh.config["q_range"]),
                "label_table": f"{label_table_id(enh.config.get('class_names'), enh.num_classes):#06x}"}

    def real_feeds(self, image: np.ndarray) -> dict:
        """The enhancer's inputs for a real frame coded by this instance (export parity checks)."""
        from ..bitstream import unpack

        c = unpack(self.encode(image))
        seg = c.layer(LayerId.SEGMAP)
        factor = map_factor_from_shape(*SegMapLayer.peek_shape(seg), c.height, c.width)
        feeds = self.enhancer_feeds(x265_decode(c.layer(LayerId.IMAGE), c.height, c.width),
                                    SegMapLayer().decode(seg), factor, self.config["q"])
        return {"enhancer": {k: v.contiguous().numpy() for k, v in feeds.items()}}
