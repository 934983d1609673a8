"""Renderers: what draws a frame from a semantic bitstream family's decoded layers (the receiver's choice).

The container names the bitstream family (its codec id: ``semantic-gan`` = seg map + colour map,
``clip`` = CLIP embedding + colour map [+ seg map]); it never names a renderer. A receiver picks one
with the codec's ``renderer=`` parameter (``semcomp decode --renderer``, the decoder node's
``renderer`` parameter):

* ``gan``: the SPADE conditional GAN (``models.generator``), one network call, the default;
* ``ldm``: the latent-diffusion renderer (:mod:`.ldm`, SSGC-style SDEdit + DDIM, diffusers).
"""
RENDERERS = ("gan", "ldm")

__all__ = ["RENDERERS"]
