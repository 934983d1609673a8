"""``semcomp train pack|segmenter|decoder|gc|bpg-se|vae|ldm|ship``.

Typical CamVid run::

    semcomp train pack --dataset camvid --data ../shared/data/camvid --split train -o runs/camvid_train.npz
    semcomp train pack --dataset camvid --data ../shared/data/camvid --split val -o runs/camvid_val.npz
    semcomp train segmenter --train runs/camvid_train.npz --val runs/camvid_val.npz --out runs/seg
    semcomp train decoder --train runs/camvid_train.npz --segmenter runs/seg/model --out runs/gan

Deploy a trained model (fp16 safetensors + config + card; e.g. into the package's weights)::

    semcomp train ship runs/gan/model --out semcomp_core/data/weights/decoder

Multi-GPU: the same commands under ``torchrun --nproc_per_node N -m semcomp_core train ...``
(or ``accelerate launch``). Interrupted runs continue with ``--resume``.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import UsageError


def add_train_parser(sub) -> None:
    p = sub.add_parser("train", help="pack data and train the segmenter / GAN decoder")
    tsub = p.add_subparsers(dest="train_command", metavar="WHAT", parser_class=type(p))
    tsub.required = True

    pk = tsub.add_parser("pack", help="pack a dataset split into one .npz (resized arrays) for training")
    pk.add_argument("--dataset", required=True, help="camvid, cityscapes, ade20k, cocostuff")
    pk.add_argument("--data", type=Path, required=True, help="dataset root")
    pk.add_argument("--split", default="train")
    pk.add_argument("-o", "--output", type=Path, required=True)
    pk.add_argument("--size", help="resize every frame to HEIGHTxWIDTH (e.g. 512x1024 for Cityscapes)")
    pk.add_argument("--limit", type=int)

    sh = tsub.add_parser("ship", help="write a trained model as fp16 safetensors + config.json + card")
    sh.add_argument("model", type=Path, help="model folder (config.json + model.safetensors)")
    sh.add_argument("--out", type=Path, required=True, help="destination folder (replaced)")
    sh.add_argument("--fp32", action="store_true", help="keep fp32 weights")

    def common(q):
        q.add_argument("--train", type=Path, required=True, help="packed training data (.npz from `train pack`)")
        q.add_argument("--out", type=Path, required=True, help="run folder (model/, checkpoint/, log.jsonl)")
        q.add_argument("--device", default="cpu")
        q.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint")
        q.add_argument("--threads", type=int, help="CPU threads for torch")
        q.add_argument("--seed", type=int, default=0)
        q.add_argument("--batch", type=int)
        q.add_argument("--tiny", action="store_true", help="tiny model configuration (smoke tests)")
        q.add_argument("--quiet", action="store_true")

    s = tsub.add_parser("segmenter", help="train the segmentation encoder")
    common(s)
    s.add_argument("--val", type=Path, help="packed validation data (mIoU every epoch)")
    s.add_argument("--epochs", type=int, default=60)
    s.add_argument("--crop", type=int, default=320)
    s.add_argument("--lr", type=float, default=2e-3)
    s.add_argument("--arch", choices=["ddrnet", "unet"], default="ddrnet",
                   help="ddrnet: the codec's encoder; unet: an independent evaluation segmenter")
    s.add_argument("--width", type=int, default=32, help="ddrnet width")
    s.add_argument("--input-scale", type=float, default=1.0)
    s.add_argument("--max-steps-per-epoch", type=int)
    s.add_argument("--augment", choices=["standard", "strong"], default="standard",
                   help="strong: camera augmentation (rescale 0.5-2x, aspect, colour, gamma, white balance, "
                        "blur, noise, JPEG, vignetting)")
    s.add_argument("--init", type=Path, help="start from this model folder (fine-tuning)")

    d = tsub.add_parser("decoder", help="train the conditional GAN decoder")
    common(d)
    d.add_argument("--segmenter", type=Path, help="frozen segmenter for the semantic-consistency term")
    d.add_argument("--labels", choices=["gt", "predicted"], default="gt")
    d.add_argument("--steps", type=int, default=20000)
    d.add_argument("--crop", type=int, default=192)
    d.add_argument("--w-sem", type=float, default=1.0)
    d.add_argument("--w-edge", type=float, default=0.0, help="structure consistency: L1 of luma gradients where a "
                   "structure layer is given (trains the generator to draw the sent lines)")
    d.add_argument("--edge-reach", type=int, default=0, help="restrict --w-edge to this many pixels around the "
                   "sent lines (0: the whole crop, as the shipped decoder was trained)")
    d.add_argument("--save-every", type=int, default=200)
    d.add_argument("--init", type=Path, help="start from this decoder folder (fine-tuning)")
    d.add_argument("--optional-layers", default="", help="comma-separated optional conditioning layers to "
                   "train, each as channels + a presence mask (known: roi, structure)")
    d.add_argument("--layer-dropout", type=float, default=0.5,
                   help="probability that an optional layer is absent from a training sample")
    d.add_argument("--lr-g", type=float, default=1e-4)

    g = tsub.add_parser("gc", help="train gc: learned encoder + factorised prior + GAN decoder (no semantics)")
    common(g)
    g.add_argument("--segmenter", type=Path, help="frozen segmenter for the semantic perceptual term (the codec's "
                   "encoder; never the independent evaluation segmenter)")
    g.add_argument("--steps", type=int, default=6000)
    g.add_argument("--crop", type=int, default=160)
    g.add_argument("--lr", type=float, default=2e-4)
    g.add_argument("--target-bpp", type=float, default=0.05, help="rate of the full latent (all channels)")
    g.add_argument("--latent-channels", type=int, default=12)
    g.add_argument("--min-channels", type=int, default=1, help="nested channel dropout keeps at least this many")
    g.add_argument("--gan-start", type=int, default=2000, help="adversarial terms from this step on")
    g.add_argument("--w-sem", type=float, default=0.3)
    g.add_argument("--w-adv", type=float, default=0.05)
    g.add_argument("--save-every", type=int, default=200)

    v = tsub.add_parser("vae", help="train the diffusion renderer's autoencoder (diffusers AutoencoderKL, f=4)")
    common(v)
    v.add_argument("--steps", type=int, default=4000)
    v.add_argument("--crop", type=int, default=128)
    v.add_argument("--lr", type=float, default=4e-4)
    v.add_argument("--gan-start", type=int, default=2500, help="adversarial terms from this step on")
    v.add_argument("--w-adv", type=float, default=0.02)
    v.add_argument("--mixed-precision", default="no", choices=["no", "fp16", "bf16"])
    v.add_argument("--decoder-only", action="store_true", help="fine-tune the decoder alone (with --resume: e.g. a "
                   "GAN phase for texture): the encoder, the latent space and a UNet trained on it stay valid")
    v.add_argument("--save-every", type=int, default=200)

    m = tsub.add_parser("ldm", help="train the diffusion renderer's UNet (and its CLIP image tower) on a trained VAE")
    common(m)
    m.add_argument("--vae", type=Path, required=True, help="the VAE model folder (`semcomp train vae`)")
    m.add_argument("--segmenter", help="condition on this segmenter's predicted labels, as the receiver "
                   "gets them ('default': the shipped encoder segmenter); without it: ground truth")
    m.add_argument("--steps", type=int, default=8000)
    m.add_argument("--crop", type=int, default=128)
    m.add_argument("--lr", type=float, default=3e-4)
    m.add_argument("--prediction", default="v_prediction", choices=["v_prediction", "epsilon", "sample"])
    m.add_argument("--max-strength", type=float, default=1.0, help="train timesteps below this share of T "
                   "(the renderer refuses SDEdit strengths above it)")
    m.add_argument("--no-clip", action="store_true", help="no CLIP tower / cross-attention conditioning")
    m.add_argument("--clip-dim", type=int, default=128, help="CLIP embedding size (a multiple of 128)")
    m.add_argument("--w-contrast", type=float, default=0.1, help="InfoNCE between two views of each frame in the CLIP "
                   "tower's training (keeps a from-scratch tower from collapsing; 0 = off)")
    m.add_argument("--drop-segmap", type=float, default=0.2)
    m.add_argument("--drop-colormap", type=float, default=0.1)
    m.add_argument("--drop-clip", type=float, default=0.5)
    m.add_argument("--mixed-precision", default="no", choices=["no", "fp16", "bf16"])
    m.add_argument("--save-every", type=int, default=200)

    b = tsub.add_parser("bpg-se", help="train bpg-se's enhancement network (BPG picture + seg map -> better picture)")
    common(b)
    b.add_argument("--segmenter", default="default", help="the encoder's segmenter (its labels are what the "
                   "receiver gets); default: the shipped one")
    b.add_argument("--qs", default="35..51", help="base-layer quantisers to train on: a..b or a,b,c")
    b.add_argument("--factors", default="16,8", help="seg-map grid factors to train on")
    b.add_argument("--steps", type=int, default=6000)
    b.add_argument("--crop", type=int, default=128)
    b.add_argument("--lr", type=float, default=5e-4)
    b.add_argument("--perception-start", type=int, default=4000, help="phase 2 (adversarial terms) from this step")
    b.add_argument("--w-adv", type=float, default=0.002)
    b.add_argument("--w-sem", type=float, default=0.002)
    b.add_argument("--limit", type=int, help="first N frames only")
    b.add_argument("--save-every", type=int, default=200)


def run_train(args) -> int:
    import json

    if args.train_command == "pack":
        from ..datasets import open_dataset
        from ..training.data import pack_dataset, parse_size

        ds = open_dataset(args.dataset, args.data, split=args.split, limit=args.limit)
        out = pack_dataset(ds, args.output, parse_size(args.size))
        print(json.dumps({"output": str(out), "frames": len(ds), "classes": len(ds.classes)}))
        return 0
    if args.train_command == "ship":
        return ship_model(args.model, args.out, fp16=not args.fp32)
    if not Path(args.train).is_file():
        raise UsageError(f"no packed data at {args.train} (make it with `semcomp train pack`)")
    if args.train_command == "segmenter":
        from ..training.seg_trainer import SegTrainConfig, train_segmenter

        cfg = SegTrainConfig(train=str(args.train), val=str(args.val) if args.val else None, out=str(args.out),
                             epochs=args.epochs, batch=args.batch or 8, crop=(args.crop, args.crop), lr=args.lr,
                             arch=args.arch, width=args.width, input_scale=args.input_scale, device=args.device, seed=args.seed,
                             resume=args.resume, threads=args.threads, tiny=args.tiny,
                             max_steps_per_epoch=args.max_steps_per_epoch, augment=args.augment,
                             init=str(args.init) if args.init else None)
        result = train_segmenter(cfg, progress=not args.quiet)
    elif args.train_command == "gc":
        from ..training.gc_trainer import GcTrainConfig, train_gc

        cfg = GcTrainConfig(train=str(args.train), out=str(args.out),
                            segmenter=str(args.segmenter) if args.segmenter else None, steps=args.steps,
                            batch=args.batch or 8, crop=args.crop, lr=args.lr, target_bpp=args.target_bpp,
                            latent_channels=args.latent_channels, min_channels=args.min_channels, gan_start=args.gan_start, w_sem=args.w_sem,
                            w_adv=args.w_adv, device=args.device, seed=args.seed, resume=args.resume,
                            threads=args.threads, tiny=args.tiny, save_every=args.save_every)
        result = train_gc(cfg, progress=not args.quiet)
    elif args.train_command == "vae":
        from ..training.vae_trainer import VaeTrainConfig, train_vae

        cfg = VaeTrainConfig(train=str(args.train), out=str(args.out), steps=args.steps, batch=args.batch or 8,
                             crop=args.crop, lr=args.lr, gan_start=args.gan_start, w_adv=args.w_adv,
                             mixed_precision=args.mixed_precision, decoder_only=args.decoder_only,
                             device=args.device, seed=args.seed,
                             resume=args.resume, threads=args.threads, tiny=args.tiny, save_every=args.save_every)
        result = train_vae(cfg, progress=not args.quiet)
    elif args.train_command == "ldm":
        from ..training.ldm_trainer import LdmTrainConfig, train_ldm

        seg = args.segmenter
        if seg == "default":
            from ..paths import WEIGHTS_DIR

            seg = str(WEIGHTS_DIR / "segmenter")
        cfg = LdmTrainConfig(train=str(args.train), out=str(args.out), vae=str(args.vae), segmenter=seg,
                             steps=args.steps, batch=args.batch or 8, crop=args.crop, lr=args.lr,
                             prediction=args.prediction, max_strength=args.max_strength, clip=not args.no_clip,
                             clip_dim=args.clip_dim, w_contrast=args.w_contrast, drop_segmap=args.drop_segmap, drop_colormap=args.drop_colormap,
                             drop_clip=args.drop_clip, mixed_precision=args.mixed_precision, device=args.device,
                             seed=args.seed, resume=args.resume, threads=args.threads, tiny=args.tiny,
                             save_every=args.save_every)
        result = train_ldm(cfg, progress=not args.quiet)
    elif args.train_command == "bpg-se":
        from ..training.bpg_se_trainer import BpgSeTrainConfig, train_bpg_se

        cfg = BpgSeTrainConfig(train=str(args.train), out=str(args.out), segmenter=str(args.segmenter),
                               qs=_int_list(args.qs, "--qs"), factors=_int_list(args.factors, "--factors"),
                               steps=args.steps, batch=args.batch or 16, crop=args.crop, lr=args.lr,
                               perception_start=args.perception_start, w_adv=args.w_adv, w_sem=args.w_sem,
                               device=args.device, seed=args.seed, resume=args.resume, threads=args.threads,
                               tiny=args.tiny, save_every=args.save_every, limit=args.limit)
        result = train_bpg_se(cfg, progress=not args.quiet)
    else:
        from ..training.gan_trainer import GanTrainConfig, train_decoder

        cfg = GanTrainConfig(train=str(args.train), out=str(args.out),
                             segmenter=str(args.segmenter) if args.segmenter else None, labels=args.labels,
                             steps=args.steps, batch=args.batch or 4, crop=args.crop, w_sem=args.w_sem,
                             w_edge=args.w_edge, edge_reach=args.edge_reach, device=args.device, seed=args.seed, resume=args.resume, threads=args.threads,
                             tiny=args.tiny, save_every=args.save_every, lr_g=args.lr_g,
                             init=str(args.init) if args.init else None,
                             optional_layers=tuple(n.strip() for n in args.optional_layers.split(",") if n.strip()),
                             layer_dropout=args.layer_dropout)
        result = train_decoder(cfg, progress=not args.quiet)
    print(json.dumps({k: v for k, v in result.items() if k != "val_iou_per_class"}))
    return 0


def _int_list(text: str, what: str) -> tuple:
    """``a..b`` (inclusive) or ``a,b,c`` -> tuple of ints."""
    try:
        if ".." in text:
            a, b = (int(v) for v in text.split(".."))
            return tuple(range(a, b + 1))
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise UsageError(f"{what} must look like 35..51 or 39,45,51 (got {text!r})") from None


def ship_model(src: Path, dest: Path, fp16: bool = True) -> int:
    """Copy a model folder as (fp16) safetensors, keeping its config extras and card; atomic replace."""
    import json
    import shutil

    from ..models.io import load_model, read_config, save_model

    doc = read_config(src)
    model = load_model(src)
    card_path = Path(src) / "MODEL_CARD.md"
    card = card_path.read_text() if card_path.exists() else f"# {doc['model']}\n"
    if fp16:
        card = card.rstrip("\n") + "\n- Shipped as fp16 safetensors (`semcomp train ship`).\n"
    dest = Path(dest)
    tmp = dest.with_name(dest.name + ".shipping")
    shutil.rmtree(tmp, ignore_errors=True)
    save_model(model, tmp, fp16=fp16, card=card, extra=doc.get("extra"))
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    size = (dest / "model.safetensors").stat().st_size
    print(json.dumps({"model": doc["model"], "out": str(dest), "bytes": size, "fp16": fp16}))
    return 0
