"""``gc``: generative compression without semantics (after Agustsson et al., ICCV 2019).

Sender: the learned encoder (:mod:`semcomp_core.models.gc`) maps the frame (padded to multiples of 16)
to a latent at 1/16 with C channels; the first k channels (the quality ``level``) are quantised
(rounded around the prior's means) and range coded with the learned per-channel prior (constriction).
Receiver: the symbols are decoded with the same prior, dequantised, and the GAN decoder paints the
frame from them (absent channels zero, with their presence mask). No seg map, no colour map: all
the decoder knows is what the latent carries. Decoding is deterministic (no noise input).

Layers::

    LATENT   channels sent, model tag, range-coded symbols (layers.latent)

Bytes per 480x360 frame by level are measured by ``semcomp bench`` (BENCHMARKS.md); the level table
is :data:`LEVEL_CHANNELS`. Frames larger than :data:`CODE_PIXELS` (480x360) are coded at about that many
pixels (the networks' training scale, bounded cost) and the receiver upscales, as semantic-gan renders.
"""
from __future__ import annotations

import numpy as np

from ..bitstream import CodecId, Container, LayerId
from ..errors import BitstreamError, ModelMismatchError
from ..inference.base import BACKENDS
from ..layers import LatentLayer
from . import register_codec
from .base import Codec, Param
from .semantic import MAX_RENDER_PIXELS, _load, _model_dir, _runner, working_resolution, working_size

#: latent channels sent per quality level (0..4)
LEVEL_CHANNELS = (1, 2, 3, 5, 12)
#: frames larger than about this many pixels are coded at this size and upscaled by the receiver (the
#: networks' training scale and a bounded cost); a constant of the format: both sides derive the coded
#: size from the container's frame size
CODE_PIXELS = 480 * 360


@register_codec
class GcCodec(Codec):
    name = "gc"
    summary = "learned latent + learned prior (constriction), painted by a GAN decoder; no semantics sent"
    codec_ids = (CodecId.GC,)
    quality_param = "level"
    params = {
        "level": Param(int, 1, f"quality level 0..{len(LEVEL_CHANNELS) - 1}: latent channels "
                       f"{'/'.join(map(str, LEVEL_CHANNELS))} (about 0.01..0.05 bpp at 480x360)",
                       low=0, high=len(LEVEL_CHANNELS) - 1),
        "gc_encoder": Param(str, "default", "gc encoder model folder, or 'default' for the shipped weights",
                            local=True),
        "gc_decoder": Param(str, "default", "gc decoder model folder the receiver runs ('default': shipped; "
                            "a name of its own: receiver options apply to every codec that has them)",
                            side="receiver", local=True),
        "backend": Param(str, "torch", "where the networks run: torch, onnxruntime or tensorrt",
                         choices=BACKENDS, side="receiver", local=True),
    }

    def __init__(self, device: str = "cpu", **params) -> None:
        super().__init__(device, **params)

    # the sender needs only the encoder's folder, the receiver only the decoder's (resolved when used)
    @property
    def _enc_path(self) -> str:
        return _model_dir(self.config["gc_encoder"], "gc_encoder", "gc_encoder")

    @property
    def _dec_path(self) -> str:
        return _model_dir(self.config["gc_decoder"], "gc_decoder", "gc_decoder")

    @property
    def encoder(self):
        return _load(self._enc_path, self.device)

    @property
    def decoder(self):
        return _load(self._dec_path, self.device)

    def networks(self) -> dict:
        return {"gc-encoder": (self.encoder, self._enc_path), "gc-decoder": (self.decoder, self._dec_path)}

    @staticmethod
    def prior(model) -> tuple[np.ndarray, LatentLayer]:
        """(means float32 (C,), the latent layer with the model's coding scales) of a gc model's prior;
        made once per loaded model (the models are cached, their priors constant)."""
        cached = getattr(model, "_semcomp_prior", None)
        if cached is None:
            import torch

            with torch.no_grad():
                mean, scale = model.prior()
            cached = model._semcomp_prior = (mean.float().cpu().numpy(), LatentLayer(scale.double().cpu().numpy()))
        return cached

    @property
    def implementation(self) -> str:
        which = {k: ("shipped" if self.config["gc_" + k] == "default" else self.config["gc_" + k])
                 for k in ("encoder", "decoder")}
        return (f"gc (encoder: {which['encoder']}, decoder: {which['decoder']}; constriction range coder; "
                f"backend {self.config['backend']})")

    def warm_up_receiver(self) -> None:
        self.paint(np.zeros((self.decoder.latent_channels, 1, 1), np.int32), 16, 16)

    def export_info(self) -> dict:
        _, layer = self.prior(self.decoder)
        return {"codec": self.name, "codec_id": int(CodecId.GC), "latent_channels": self.decoder.latent_channels,
                "level_channels": list(LEVEL_CHANNELS), "model_tag": f"{layer.tag:#06x}",
                "coding_scales": [float(s) for s in layer.scales]}

    def real_feeds(self, image: np.ndarray) -> dict:
        """Both networks' inputs for a real frame (export parity checks)."""
        from ..bitstream import unpack
        from ..models.gc import FACTOR

        x = self.encoder_input(image)
        c = unpack(self.encode(image))
        h, w = self.coded_size(c.height, c.width)
        mean, layer = self.prior(self.decoder)
        symbols = layer.decode(c.layer(LayerId.LATENT), (-(-h // FACTOR), -(-w // FACTOR)))
        return {"gc-encoder": {"image": x.numpy()}, "gc-decoder": self.decoder_feeds(symbols, mean)}

    # -- sender ---------------------------------------------------------------------------
    def encoder_input(self, image: np.ndarray):
        """The encoder's input: the frame at the coding size, padded to multiples of 16, (1, 3, Hp, Wp)."""
        import torch

        from ..models.blocks import pad_to
        from ..models.gc import FACTOR

        work = working_resolution(image, CODE_PIXELS)
        return pad_to(torch.from_numpy(np.array(work)).permute(2, 0, 1)[None].float(), FACTOR)

    def encode_layers(self, image: np.ndarray) -> tuple[int, list[tuple[int, bytes]]]:
        from ..models.gc import FACTOR

        h, w = self.coded_size(*image.shape[:2])
        x = self.encoder_input(image)
        latent = _runner(self._enc_path, self.device, "gc-encoder", self.config["backend"])(image=x)
        mean, layer = self.prior(self.encoder)
        k = min(LEVEL_CHANNELS[self.config["level"]], latent.shape[1])
        symbols = np.rint(latent[0, :k] - mean[:k, None, None]).astype(np.int32)
        symbols = symbols[:, :-(-h // FACTOR), :-(-w // FACTOR)]
        return CodecId.GC, [(LayerId.LATENT, layer.encode(symbols))]

    # -- receiver ---------------------------------------------------------------------------
    def coded_size(self, H: int, W: int) -> tuple[int, int]:
        """The size the sender codes an H x W frame at (:data:`CODE_PIXELS`)."""
        return working_size(H, W, CODE_PIXELS)

    def decode_container(self, container: Container) -> np.ndarray:
        from ..models.gc import FACTOR

        H, W = container.height, container.width
        if H * W > MAX_RENDER_PIXELS:
            raise BitstreamError(f"frame {W}x{H} larger than this decoder paints ({MAX_RENDER_PIXELS} pixels)")
        ids = container.layer_ids
        if ids != [LayerId.LATENT]:
            raise BitstreamError(f"gc container must hold exactly one latent layer, has layers {ids}")
        payload = container.layer(LayerId.LATENT)
        mean, layer = self.prior(self.decoder)
        k, tag = LatentLayer.peek(payload)
        if tag != layer.tag:
            raise ModelMismatchError(f"container's latent model tag {tag:#06x} is not decoder "
                                     f"{self.config['gc_decoder']!r}'s ({layer.tag:#06x}): decode with the weights "
                                     f"of the sender's encoder")
        h, w = self.coded_size(H, W)
        symbols = layer.decode(payload, (-(-h // FACTOR), -(-w // FACTOR)))
        out = self.paint(symbols, h, w, mean)
        if (h, w) != (H, W):
            from PIL import Image

            out = np.asarray(Image.fromarray(out).resize((W, H), Image.Resampling.BICUBIC))
        return out

    def decoder_feeds(self, symbols: np.ndarray, mean: np.ndarray) -> dict:
        """The decoder's inputs for (k, h/16, w/16) symbols: dequantised latent (channels k.. zero) and
        the presence mask, float32 (1, C, h/16, w/16)."""
        c = self.decoder.latent_channels
        k, lh, lw = symbols.shape
        latent = np.zeros((1, c, lh, lw), np.float32)
        latent[0, :k] = symbols + mean[:k, None, None]
        present = np.zeros((1, c, lh, lw), np.float32)
        present[0, :k] = 1.0
        return {"latent": latent, "present": present}

    def paint(self, symbols: np.ndarray, h: int, w: int, mean: np.ndarray | None = None) -> np.ndarray:
        """The decoder's (h, w, 3) uint8 frame for (k, h/16, w/16) symbols (channels k.. absent)."""
        if mean is None:
            mean = self.prior(self.decoder)[0]
        out = _runner(self._dec_path, self.device, "gc-decoder", self.config["backend"])(
            **self.decoder_feeds(symbols, mean))
        out = np.clip(out[0, :, :h, :w], -1.0, 1.0)
        return np.ascontiguousarray(np.rint((out + 1.0) * 127.5).astype(np.uint8).transpose(1, 2, 0))
