"""The latent-diffusion renderer (SSGC-style): semantic layers -> frame by DDIM in a small VAE's latent space.

Start (SDEdit): the VAE-encoded *start picture* -- the upsampled colour map (``sdedit_from=colormap``,
SSGC) or the GAN renderer's frame (``sdedit_from=gan``: refine it) -- is noised to ``strength`` x T
and denoised with ``steps`` DDIM steps (diffusers ``DDIMScheduler``, eta 0). As in diffusers'
img2img, the run starts at ``timesteps[steps - int(steps * strength)]``, so strength 0.7 with 20
steps runs 14 UNet calls. Noise comes from a CPU ``torch.Generator`` seeded with the container's
seed: the same container and seed give the same frame on any device.

Detail (``detail=start``, the default): the frame is the start picture plus the diffusion's edit,
``start + D(z) - D(z0)`` (``D`` the VAE decoder, ``z0`` the start's latent, ``z`` the denoised one): what
the VAE round trip alone would lose of the start picture (its fine texture) is restored, and what the
denoiser changed is kept (:func:`apply_edit`). ``detail=vae`` returns ``D(z)`` itself (one VAE decode
less). Colour: the output then keeps the start picture's low-frequency chroma (:func:`keep_colour`).

Conditioning: the seg map (class fractions per latent cell) and colour map with their presence, the
optional layers, and the CLIP embedding by cross-attention (``models.ldm``); ``guidance`` > 1 adds
classifier-free guidance on the seg map (a second UNet call per step without it, extrapolated away).

The four networks run through the inference interface (``vae-encoder``, ``ldm-unet``,
``vae-decoder``; torch, onnxruntime or TensorRT backends).

A renderer folder holds ``vae/`` and ``unet/`` (and ``clip/``, the CLIP tower whose embedding the UNet
was trained on).
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from ..errors import UsageError

#: SDEdit start pictures, and the strength each starts at by default (SSGC: 70% of T from the colour map;
#: refining the GAN's frame at 0.5 with guidance 8 keeps more semantics than the GAN and redraws objects, BENCHMARKS.md)
SDEDIT_FROM = ("colormap", "gan")
DEFAULT_STRENGTH = {"colormap": 0.7, "gan": 0.5}
MAX_STEPS = 50
#: colour consistency: the output's chroma below this scale (Gaussian sigma, pixels) comes from the start picture
CHROMA_SIGMA = 2.0
#: where the output's fine detail comes from: the start picture plus the diffusion's edit, or the VAE's decode
DETAILS = ("start", "vae")


def to_uint8(rgb: np.ndarray, H: int, W: int) -> np.ndarray:
    """A VAE decoder output (1, 3, >=H, >=W) in [-1, 1] as an (H, W, 3) uint8 frame."""
    rgb = np.clip(rgb[0, :, :H, :W], -1.0, 1.0)
    return np.ascontiguousarray(np.rint((rgb + 1.0) * 127.5).astype(np.uint8).transpose(1, 2, 0))


def apply_edit(start: np.ndarray, edited: np.ndarray, recon: np.ndarray) -> np.ndarray:
    """``start + (edited - recon)``: the diffusion's edit (its decoded result minus the VAE's decode of the
    un-noised start latent) applied to the start picture, uint8 in and out. Where the denoiser changed
    nothing the start's pixels come back exactly, texture included, instead of the VAE's softer
    reconstruction of them."""
    out = start.astype(np.int16) + edited.astype(np.int16) - recon.astype(np.int16)
    return np.clip(out, 0, 255).astype(np.uint8)


def keep_colour(out: np.ndarray, start: np.ndarray, sigma: float = CHROMA_SIGMA) -> np.ndarray:
    """``out`` with its low-frequency chroma (YCrCb, Gaussian ``sigma``) replaced by ``start``'s: the colours
    the container sent (colour map, or the GAN's frame drawn from it) with the renderer's luma and
    fine chroma. The shipped VAE codes chroma in faint latent patterns that the denoiser's small latent
    errors wash out (its frames come out nearly grey without this); the colour map is the transmitted
    truth about colour, as the GAN's colour skip also assumes."""
    import cv2

    o = cv2.cvtColor(out, cv2.COLOR_RGB2YCrCb).astype(np.float32)
    r = cv2.cvtColor(np.ascontiguousarray(start), cv2.COLOR_RGB2YCrCb).astype(np.float32)
    def low(a):
        return cv2.GaussianBlur(a, (0, 0), sigma)
    o[..., 1:] = low(r[..., 1:]) + (o[..., 1:] - low(o[..., 1:]))
    return cv2.cvtColor(np.clip(np.rint(o), 0, 255).astype(np.uint8), cv2.COLOR_YCrCb2RGB)


@functools.lru_cache(maxsize=4)
def load_parts(folder: str, device: str) -> dict:
    """``{"vae", "unet", "clip"?}`` models of a renderer folder (UsageError when a part is missing)."""
    from ..models.io import load_model

    root = Path(folder)
    for part in ("vae", "unet"):
        if not (root / part / "config.json").exists():
            raise UsageError(f"no diffusion renderer at {folder}: missing {part}/ (train it with `semcomp train "
                             f"{'vae' if part == 'vae' else 'ldm'}`)")
    parts = {"vae": load_model(root / "vae", device), "unet": load_model(root / "unet", device)}
    if (root / "clip" / "config.json").exists():
        parts["clip"] = load_model(root / "clip", device)
    if parts["unet"].config["latent_channels"] != parts["vae"].latent_channels:
        raise UsageError(f"renderer {folder}: the UNet's latent channels do not match the VAE's")
    return parts


class LdmRenderer:
    """Renders frames from conditioning tensors; ``runner(kind)`` gives the inference runner of a network."""

    def __init__(self, folder: str, device: str = "cpu", backend: str = "torch") -> None:
        self.folder, self.device, self.backend = str(folder), device, backend
        self.parts = load_parts(self.folder, device)
        self._runners: dict = {}
        self._schedulers: dict = {}

    @property
    def unet(self):
        return self.parts["unet"]

    @property
    def vae(self):
        return self.parts["vae"]

    @property
    def clip(self):
        return self.parts.get("clip")

    @property
    def num_classes(self) -> int:
        return self.unet.num_classes

    def runner(self, kind: str):
        if kind not in self._runners:
            from ..inference import make_runner
            from ..models.ldm import VaeEncoder

            model, sub = {"vae-encoder": (VaeEncoder(self.vae), "vae"), "vae-decoder": (self.vae, "vae"),
                          "ldm-unet": (self.unet, "unet")}[kind]
            self._runners[kind] = make_runner(kind, model, self.backend, self.device,
                                              model_dir=str(Path(self.folder) / sub))
        return self._runners[kind]

    def networks(self) -> dict:
        from ..models.ldm import VaeEncoder

        root = Path(self.folder)
        return {"vae-encoder": (VaeEncoder(self.vae), str(root / "vae")), "vae-decoder": (self.vae, str(root / "vae")),
                "ldm-unet": (self.unet, str(root / "unet"))}

    def check(self, steps: int, strength: float, guidance: float) -> None:
        top = float(self.unet.config.get("max_strength", 1.0))
        if not 1 <= steps <= MAX_STEPS:
            raise UsageError(f"steps={steps} outside 1..{MAX_STEPS}")
        if not 0.0 < strength <= top:
            raise UsageError(f"strength={strength} outside (0, {top}] (this UNet was trained up to {top} T)")
        if not 1.0 <= guidance <= 20.0:
            raise UsageError(f"guidance={guidance} outside 1..20")

    def scheduler(self, steps: int):
        """The DDIM scheduler of the UNet's schedule set to ``steps`` (made once per step count: DDIM's step()
        keeps no state between calls, so one serves every frame)."""
        if steps not in self._schedulers:
            from diffusers import DDIMScheduler

            cfg = self.unet.config
            s = DDIMScheduler(**cfg["schedule"], prediction_type=cfg["prediction_type"], clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1, timestep_spacing="leading")
            s.set_timesteps(steps)
            self._schedulers[steps] = s
        return self._schedulers[steps]

    def timesteps(self, steps: int, strength: float):
        """The DDIM timesteps a run at ``strength`` goes through (diffusers img2img's ``get_timesteps``)."""
        s = self.scheduler(steps)
        init = min(int(steps * strength), steps)
        return s, s.timesteps[steps - init:]

    def render(self, onehot, color, layers, embed, start: np.ndarray, H: int, W: int, seed: int, *,
               steps: int = 20, strength: float = 0.7, guidance: float = 1.0, eta: float = 0.0,
               detail: str = "start") -> np.ndarray:
        """A frame (H, W, 3) uint8. ``onehot`` (1,K,Hp,Wp) / ``color`` (1,3,Hp,Wp) / ``layers``: the GAN's
        conditioning tensors at the 8-padded size (``onehot`` or ``color`` None = that layer absent);
        ``embed``: (dim,) CLIP embedding or None; ``start``: the SDEdit start picture (H, W, 3) uint8."""
        if detail not in DETAILS:
            raise UsageError(f"detail={detail!r}: expected one of {', '.join(DETAILS)}")
        return self._run(onehot, color, layers, embed, start, H, W, seed, steps, strength, guidance, eta=eta,
                         detail=detail)

    def real_feeds(self, onehot, color, layers, embed, start: np.ndarray, H: int, W: int, seed: int,
                   steps: int = 20, strength: float = 0.7) -> dict:
        """The inputs each network gets on the first step of a real render (for export parity checks)."""
        return self._run(onehot, color, layers, embed, start, H, W, seed, steps, strength, 1.0, feeds_only=True)

    def _run(self, onehot, color, layers, embed, start, H, W, seed, steps, strength, guidance, feeds_only=False,
             eta: float = 0.0, detail: str = "start"):
        import torch
        import torch.nn.functional as F

        from ..models.ldm import VAE_FACTOR, latent_conditioning

        self.check(steps, strength, guidance)
        unet = self.unet
        k = unet.num_classes
        if onehot is not None and onehot.shape[1] != k:
            raise UsageError(f"the diffusion renderer has {k} classes, the seg map {onehot.shape[1]}")
        if embed is not None and not unet.embed_dim:
            raise UsageError(f"the diffusion renderer at {self.folder} has no CLIP conditioning: it cannot render "
                             f"a CLIP layer")
        m = VAE_FACTOR * unet.multiple
        Hq, Wq = m * -(-H // m), m * -(-W // m)

        def pad(x):
            if x is None:
                return None
            x = x[..., :H, :W]
            return F.pad(x, (0, Wq - W, 0, Hq - H), mode="replicate")
        cond = latent_conditioning(pad(onehot), pad(color), pad(layers), k, unet.optional_layers)
        pic = torch.from_numpy(np.array(start, np.uint8)).permute(2, 0, 1)[None].float() / 127.5 - 1
        z0 = torch.from_numpy(self.runner("vae-encoder")(image=pad(pic)))
        sched, ts = self.timesteps(steps, strength)
        g = torch.Generator().manual_seed(int(seed))
        noise = torch.randn(z0.shape, generator=g)
        z = sched.add_noise(z0, noise, ts[:1]) if len(ts) else z0
        e = np.zeros((1, max(1, unet.embed_dim), 1, 1), np.float32)
        ep = np.zeros((1, 1, 1, 1), np.float32)
        if embed is not None:
            e[0, :, 0, 0], ep[:] = np.asarray(embed, np.float32), 1.0
        if feeds_only:
            return {"vae-encoder": {"image": pad(pic).numpy()}, "vae-decoder": {"latent": z0.numpy()},
                    "ldm-unet": {"latent": z.numpy(), "t": np.full((1, 1, 1, 1), float(ts[0]), np.float32),
                                 "cond": cond.numpy(), "embed": e, "embed_presence": ep}}
        run = self.runner("ldm-unet")
        uncond = None
        if guidance > 1.0 and onehot is not None:
            uncond = cond.clone()
            uncond[:, :k + 1] = 0
        for t in ts:
            tt = np.full((1, 1, 1, 1), float(t), np.float32)
            out = torch.from_numpy(run(latent=z, t=tt, cond=cond, embed=e, embed_presence=ep))
            if uncond is not None:
                base = torch.from_numpy(run(latent=z, t=tt, cond=uncond, embed=e, embed_presence=ep))
                out = base + guidance * (out - base)
            z = sched.step(out, t, z, eta=eta, generator=g).prev_sample
        decode = self.runner("vae-decoder")
        out = to_uint8(decode(latent=z), H, W)
        if detail == "start":
            out = apply_edit(start, out, to_uint8(decode(latent=z0), H, W))
        return keep_colour(out, start)
