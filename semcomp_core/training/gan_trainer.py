"""Training the conditional GAN decoder (``semcomp train decoder``).

Each sample picks a random quality level of the codec, so one generator
serves all levels: the label map is reduced to that level's seg-map scale
(majority pooling of ground truth, or the frozen segmenter's predictions with
``--labels predicted``), the colour thumbnail goes through the real colour-map
layer (quantised exactly as on the link), both are upsampled as the decoder
does, and an 8-aligned crop is taken.

Losses (SPADE / pix2pixHD recipe): hinge GAN with a multi-scale spectral-norm
discriminator, feature matching, a reconstruction term (L1 at 1/4 plus light
full-resolution L1) and a semantic-consistency term (cross-entropy of the
frozen segmenter on the generated frame). Adam (0, 0.9) with TTUR; an EMA copy
of the generator is what gets saved. Resumable (``OUT/checkpoint``), logged as
JSON lines (``OUT/log.jsonl``).
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import UsageError


@dataclass
class GanTrainConfig:
    train: str
    out: str
    segmenter: str | None = None
    labels: str = "gt"            # "gt" or "predicted"
    steps: int = 20000
    batch: int = 4
    crop: int = 192
    lr_g: float = 1e-4
    lr_d: float = 4e-4
    w_fm: float = 10.0
    w_rec: float = 10.0
    w_sem: float = 1.0
    w_edge: float = 0.0                # structure consistency (luma gradients where a structure layer is given)
    edge_reach: int = 0                # ... only within this many pixels of its lines (0: the whole crop)
    ema: float = 0.999
    channels: tuple = (96, 48, 24, 12)
    hidden: tuple = (48, 32, 16, 12)
    d_width: int = 32
    device: str = "cpu"
    seed: int = 0
    resume: bool = False
    threads: int | None = None
    channels_last: bool = True    # NHWC: ~20% faster steps on CPU (oneDNN)
    tiny: bool = False
    save_every: int = 200
    log_every: int = 20
    init: str | None = None            # start from this decoder folder (fine-tuning)
    optional_layers: tuple = ()        # optional conditioning layers to train (models.generator.OPTIONAL_LAYERS)
    layer_dropout: float = 0.5         # probability that an optional layer is absent from a training sample


#: classes a sampled ROI class rule draws from (when the label table has them)
ROI_CLASSES = ("Pedestrian", "Bicyclist", "SignSymbol", "Car", "Pole", "person", "rider", "traffic sign",
               "car", "pole", "bicycle")


class ConditionSampler:
    """Builds (image, one-hot, colour, labels, optional layers) crops exactly as the codec would see them.

    Optional layers (``optional_layers``) are present in a sample with probability 1 - ``layer_dropout``
    (layer dropout: one generator learns to render with and without each). The ``roi`` layer: a cell mask
    on the level's grid -- a class rule over a random subset of :data:`ROI_CLASSES`, or 1-4 random
    rectangles (as low-confidence and user masks look) -- dilated by one cell; its pixels degraded as a
    low-rate intra codec would (random 1-4x downscale, JPEG quality 15-60) inside the coded region, and
    its presence = the receiver's blending weight (``roi.masks.alpha``). The ``structure`` layer: the
    frame's edge map at a random structure level (``structure.extract_structure``), as the receiver
    feeds it (``structure.structure_input``)."""

    def __init__(self, images, labels, num_classes, levels, seed=0, class_names=None,
                 optional_layers=(), layer_dropout: float = 0.5):
        from ..layers import ColorMapLayer, thumbnail

        self.images, self.labels, self.k = images, labels, num_classes
        self.levels = levels
        self.rng = np.random.default_rng(seed)
        self.optional_layers = [n for n in optional_layers]
        self.layer_dropout = float(layer_dropout)
        names = list(class_names or [])
        self.roi_ids = [names.index(c) for c in ROI_CLASSES if c in names] or list(range(num_classes))
        self.thumbs = {}
        for li, lv in enumerate(levels):
            layer = ColorMapLayer(lv.color_qi)
            tw, th = lv.thumb
            self.thumbs[li] = [layer.decode(layer.encode(thumbnail(im, tw, th))) for im in images]

    def sample(self, batch: int, crop: int):
        import torch

        from ..codecs.semantic import conditioning
        from ..layers import downscale_labels

        xs, ohs, cols, labs, lays = [], [], [], [], []
        n, H, W = self.labels.shape
        self.last_index, self.last_flip = np.zeros(batch, np.int64), np.zeros(batch, bool)
        for j in range(batch):
            i = int(self.rng.integers(n))
            self.last_index[j] = i
            li = int(self.rng.integers(len(self.levels)))
            f = self.levels[li].map_factor
            small = downscale_labels(self.labels[i], f)
            onehot, color = conditioning(small, f, self.thumbs[li][i], H, W, self.k)
            top = 8 * int(self.rng.integers(0, (H - crop) // 8 + 1))
            left = 8 * int(self.rng.integers(0, (W - crop) // 8 + 1))
            sl = (slice(top, top + crop), slice(left, left + crop))
            img = torch.from_numpy(self.images[i][sl]).permute(2, 0, 1).float() / 127.5 - 1
            oh = onehot[0][:, sl[0], sl[1]]
            col = color[0][:, sl[0], sl[1]]
            lab = onehot[0].argmax(0)
            lab[onehot[0].sum(0) == 0] = 255
            lab = lab[sl]
            if self.optional_layers:
                lay = self._layers(i, small, f, H, W)[0][:, sl[0], sl[1]]
            else:
                lay = torch.zeros(1, crop, crop)
            if self.rng.random() < 0.5:
                self.last_flip[j] = True
                img, oh, col, lab, lay = img.flip(-1), oh.flip(-1), col.flip(-1), lab.flip(-1), lay.flip(-1)
            xs.append(img)
            ohs.append(oh)
            cols.append(col)
            labs.append(lab)
            lays.append(lay)
        return torch.stack(xs), torch.stack(ohs), torch.stack(cols), torch.stack(labs), torch.stack(lays)

    def _layers(self, i: int, small: np.ndarray, f: int, H: int, W: int):
        """The optional-layer input (1, C, Hp, Wp) of frame ``i`` with map ``small`` at factor ``f``."""
        from ..codecs.semantic import optional_layer_input, padded_size

        given = {}
        if "roi" in self.optional_layers and self.rng.random() >= self.layer_dropout:
            given["roi"] = self._roi(i, small, f, H, W)
        if "structure" in self.optional_layers and self.rng.random() >= self.layer_dropout:
            from ..structure import STRUCTURE_LEVELS, extract_structure, structure_input

            level = list(STRUCTURE_LEVELS)[int(self.rng.integers(len(STRUCTURE_LEVELS)))]
            given["structure"] = structure_input(extract_structure(self.images[i], level), H, W)
        return optional_layer_input({"optional_layers": self.optional_layers}, *padded_size(H, W), given)

    def _roi(self, i: int, small: np.ndarray, f: int, H: int, W: int):
        import cv2

        from ..roi import masks

        rng = self.rng
        h, w = small.shape
        cells = np.zeros((h, w), bool)
        if rng.random() < 0.5:
            ids = [c for c in self.roi_ids if rng.random() < 0.6] or [int(rng.choice(self.roi_ids))]
            cells = np.isin(small, ids)
        if not cells.any():
            for _ in range(int(rng.integers(1, 5))):
                bh, bw = int(rng.integers(1, max(2, h // 3))), int(rng.integers(1, max(2, w // 3)))
                y, x = int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1))
                cells[y:y + bh, x:x + bw] = True
        cells = masks.dilate(cells, 1)
        weight = masks.alpha(cells, f, H, W)
        img = self.images[i]
        s = int(rng.choice([1, 2, 4]))
        if s > 1:
            small_img = cv2.resize(img, (max(1, W // s), max(1, H // s)), interpolation=cv2.INTER_AREA)
            img = cv2.resize(small_img, (W, H), interpolation=cv2.INTER_CUBIC)
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(img[:, :, ::-1]),
                               [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(15, 61))])
        if ok:
            img = cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1]
        return np.ascontiguousarray(img), weight


def _predicted_labels(segmenter, images, device, batch=4):
    import torch
    import torch.nn.functional as F

    out = np.zeros(images.shape[:3], np.uint8)
    with torch.inference_mode():
        for i in range(0, len(images), batch):
            x = torch.from_numpy(images[i:i + batch]).permute(0, 3, 1, 2).float().to(device)
            logits = F.interpolate(segmenter(x), size=x.shape[-2:], mode="bilinear", align_corners=False)
            out[i:i + batch] = logits.argmax(1).cpu().numpy().astype(np.uint8)
    return out


def train_decoder(cfg: GanTrainConfig, progress: bool = True) -> dict:
    import torch

    from ..codecs.semantic_levels import LEVELS
    from ..models.discriminator import MultiScaleDiscriminator
    from ..models.generator import SPADEGenerator
    from ..models.io import load_model, save_model
    from . import distributed, losses
    from .checkpoint import load_checkpoint, save_checkpoint
    from .data import load_pack
    from .loop import ema_update, train_run

    from ..models.generator import OPTIONAL_LAYERS

    unknown = [n for n in cfg.optional_layers if n not in OPTIONAL_LAYERS]
    if unknown:
        raise UsageError(f"unknown optional layer(s) {unknown} (known: {', '.join(OPTIONAL_LAYERS)})")
    if not 0.0 <= cfg.layer_dropout <= 1.0:
        raise UsageError(f"layer dropout {cfg.layer_dropout} outside 0..1")
    info, device, out = distributed.start_run(cfg.device, cfg.threads, cfg.seed, cfg.out)
    data = load_pack(Path(cfg.train))
    classes = data["meta"]["classes"]
    k = len(classes)
    seg = None
    if cfg.segmenter:
        seg = load_model(cfg.segmenter, device)
        for p in seg.parameters():
            p.requires_grad_(False)
        if seg.num_classes != k:
            raise UsageError(f"segmenter has {seg.num_classes} classes, data has {k}")
    labels = data["labels"]
    if cfg.labels == "predicted":
        if seg is None:
            raise UsageError("--labels predicted needs --segmenter")
        labels = _predicted_labels(seg, data["images"], device)
    elif cfg.labels != "gt":
        raise UsageError("--labels must be gt or predicted")
    sampler = ConditionSampler(data["images"], labels, k, LEVELS, seed=cfg.seed + 17 * info.rank,
                               class_names=classes, optional_layers=cfg.optional_layers,
                               layer_dropout=cfg.layer_dropout)

    if cfg.init:
        gen = load_model(cfg.init, device)
        if gen.num_classes != k:
            raise UsageError(f"--init decoder has {gen.num_classes} classes, the data {k}")
        gen.train()
        disc = MultiScaleDiscriminator.tiny(k) if cfg.tiny else MultiScaleDiscriminator(k, scales=2, width=cfg.d_width,
                                                                                        layers=4)
    elif cfg.tiny:
        gen, disc = SPADEGenerator.tiny(k, class_names=classes), MultiScaleDiscriminator.tiny(k)
    else:
        gen = SPADEGenerator(k, channels=tuple(cfg.channels), hidden=tuple(cfg.hidden), class_names=classes)
        disc = MultiScaleDiscriminator(k, scales=2, width=cfg.d_width, layers=4)
    if cfg.optional_layers:
        from ..models.generator import with_optional_layers

        gen = with_optional_layers(gen, list(cfg.optional_layers))
        sampler.optional_layers = gen.optional_layers
    for p in gen.parameters():
        p.requires_grad_(True)
    mf = torch.channels_last if cfg.channels_last else torch.contiguous_format
    gen.to(device, memory_format=mf)
    disc.to(device, memory_format=mf)
    if seg is not None:
        seg.to(memory_format=mf)
    ema = copy.deepcopy(gen).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    g_ddp, d_ddp = distributed.wrap(gen, info, device), distributed.wrap(disc, info, device)
    opt_g = torch.optim.Adam(gen.parameters(), lr=cfg.lr_g, betas=(0.0, 0.9))
    opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.lr_d, betas=(0.0, 0.9))
    step = 0
    ckpt = out / "checkpoint"
    if cfg.resume and (ckpt / "trainer.json").exists():
        step = load_checkpoint(ckpt, {"gen": gen, "disc": disc, "ema": ema}, {"g": opt_g, "d": opt_d},
                               device)["step"]
        if info.main:
            print(f"resumed from {ckpt} at step {step}")
    def save(at: int) -> None:
        save_checkpoint(ckpt, {"gen": gen, "disc": disc, "ema": ema}, {"g": opt_g, "d": opt_d}, {"step": at})
        save_model(ema, out / "model", card=_card(cfg, at, classes, ema), extra={"train": asdict(cfg), "step": at})

    def train_step(_: int) -> dict:
        real, onehot, color, lab, layers = (t.to(device) for t in sampler.sample(cfg.batch, cfg.crop))
        real, onehot, color, layers = (t.contiguous(memory_format=mf) for t in (real, onehot, color, layers))
        cond = torch.cat([onehot, color], 1)
        noise = torch.randn(real.shape[0], gen.noise_channels, real.shape[2] // 8, real.shape[3] // 8,
                            device=device)
        fake = g_ddp(onehot, color, noise, layers if gen.layer_channels else None)
        d_loss, g_adv, fm = losses.adversarial_terms(d_ddp, opt_d, real, fake, cond)
        terms = {"g_adv": g_adv, "fm": cfg.w_fm * fm,
                 "rec": cfg.w_rec * losses.reconstruction(fake, real)}
        if seg is not None and cfg.w_sem > 0:
            terms["sem"] = cfg.w_sem * losses.semantic_consistency(seg, fake, lab)
        if cfg.w_edge > 0 and "structure" in gen.optional_layers:
            at = gen.layer_offset("structure")             # its line channel, then its presence
            terms["edge"] = cfg.w_edge * losses.structure_consistency(
                fake, real, layers[:, at + 1:at + 2], layers[:, at:at + 1], cfg.edge_reach)
        g_loss = sum(terms.values())
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        ema_update(ema, gen, cfg.ema)
        return {"d": float(d_loss), **{n: float(v.detach()) for n, v in terms.items()}}

    return train_run(cfg, info, out, step, train_step, save, "decoder", progress)


def _card(cfg, step, classes, model) -> str:
    params = sum(p.numel() for p in model.parameters())
    return (f"# semcomp decoder (SPADE-style generator)\n\n"
            f"- Data: {cfg.train}; labels: {cfg.labels}; classes: {', '.join(classes)}.\n"
            f"- Steps: {step} of batch {cfg.batch}, {cfg.crop}x{cfg.crop} crops, all quality levels mixed.\n"
            f"- Losses: hinge GAN (2-scale PatchGAN, width {cfg.d_width}), feature matching x{cfg.w_fm}, "
            f"reconstruction x{cfg.w_rec}, semantic consistency x{cfg.w_sem}, structure consistency x{cfg.w_edge} "
            f"(reach {cfg.edge_reach or 'whole crop'}) "
            f"({'segmenter ' + str(cfg.segmenter) if cfg.segmenter else 'off'}).\n"
            f"- Start: {'fine-tuned from ' + str(cfg.init) if cfg.init else 'from scratch'}; optional layers "
            f"{list(model.config.get('optional_layers') or []) or 'none'} (layer dropout {cfg.layer_dropout}).\n"
            f"- Generator: channels {list(model.config['channels'])}, SPADE hidden {list(model.config['hidden'])}, "
            f"{params / 1e6:.2f} M parameters; EMA {cfg.ema} weights.\n"
            f"- Metrics: see BENCHMARKS.md (semcomp bench on CamVid val).\n")
