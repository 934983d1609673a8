"""``semcomp`` command line.

Subcommands: ``codecs``, ``encode``, ``decode``, ``inspect``, ``cut``, ``export``, ``bench`` (images, datasets,
``--sequence`` streams, ``--bag``), ``demo``, ``segmap-bench``, ``robustness``, ``calibrate``, ``train``,
``make-bag``, ``model-info``. Errors in user input or data print one line
``semcomp: error: ...`` on stderr and exit non-zero (2 usage, 1 bad data,
3 internal); set SEMCOMP_DEBUG=1 for a traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from ..errors import BitstreamError, ModelMismatchError, SemcompError, UsageError
from ..renderers.ldm import DEFAULT_STRENGTH

DEFAULT_CODEC = "semantic-gan"


class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of printing usage and exiting."""

    def error(self, message: str):  # noqa: D401
        raise UsageError(message)


def _add_device(p: argparse.ArgumentParser, backend: bool = True) -> None:
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (models only; classic codecs ignore it)")
    if backend:
        p.add_argument("--backend", choices=("torch", "onnxruntime", "tensorrt"),
                       help="where networks run (codecs with networks; default: the codec's, torch)")


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="semcomp", description="Semantic image compression for robots and vehicles.")
    sub = ap.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("codecs", help="list codec names, one a line")
    p.add_argument("--verbose", "-v", action="store_true", help="also show parameters and implementation")

    p = sub.add_parser("encode", help="compress an image into a .smc container")
    p.add_argument("image", type=Path)
    p.add_argument("-o", "--output", type=Path, required=True)
    p.add_argument("--codec", default=DEFAULT_CODEC, help="codec name or NAME:K=V[:K=V] (see `semcomp codecs -v`)")
    p.add_argument("--quality", help="value of the codec's quality parameter (bpg: q 0..51, jpeg/webp: quality)")
    p.add_argument("--roi-mask", type=Path, help="semantic codecs: a mask image of the frame's size whose nonzero "
                   "pixels are sent as pixels (region of interest; adds 'user' to the codec's roi sources)")
    p.add_argument("--roi-boxes", help="semantic codecs: boxes 'x0,y0,x1,y1;...' (frame pixels, end exclusive) "
                   "sent as pixels (adds 'user' to the codec's roi sources)")
    _add_device(p)

    p = sub.add_parser("decode", help="reconstruct an image from a .smc container")
    p.add_argument("input", type=Path)
    p.add_argument("-o", "--output", type=Path, required=True)
    p.add_argument("--decoder-options", default="",
                   help="the receiver's own options K=V[:K=V], e.g. decoder=DIR (semantic-gan weights); "
                        "everything the encoder chose (level, seed) comes from the container")
    p.add_argument("--renderer", choices=["gan", "ldm"], help="semantic codecs: what draws the frame (gan: the "
                   "conditional GAN; ldm: latent diffusion); default: the codec's (semantic-gan: gan, clip: ldm)")
    p.add_argument("--steps", type=int, help="renderer ldm: DDIM steps (1..50, default 20)")
    p.add_argument("--strength", type=float, help="renderer ldm: SDEdit strength (default: "
                   f"{DEFAULT_STRENGTH['gan']} from the GAN's frame, {DEFAULT_STRENGTH['colormap']} from the colour map)")
    p.add_argument("--sdedit-from", choices=["colormap", "gan"], help="renderer ldm: start picture (default gan: refine "
                   "the GAN's frame; colormap: SSGC)")
    p.add_argument("--eta", type=float, help="renderer ldm: DDIM eta 0..1 (default 0)")
    p.add_argument("--guidance", type=float, help="renderer ldm: classifier-free guidance on the seg map (1 = off; default 8)")
    p.add_argument("--detail", choices=["start", "vae"], help="renderer ldm: fine detail from the start picture plus "
                   "the diffusion's edit (start, default) or from the VAE decoder alone (vae)")
    _add_device(p)

    p = sub.add_parser("inspect", help="print a container's header and layer table (ids, names, bytes, share); "
                                       "for the video anchors' packets (h264, hevc, av1) their units")
    p.add_argument("input", type=Path)
    p.add_argument("--json", action="store_true", help="one JSON object instead of the table")

    p = sub.add_parser("cut", help="keep a container's first layers (what a link that drops the tail delivers): "
                                   "a valid, shorter container that still decodes")
    p.add_argument("input", type=Path)
    p.add_argument("-o", "--output", type=Path, required=True)
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--after", help="last layer to keep: a layer name (segmap, colormap, structure, ...) or a "
                                     "number of layers")
    how.add_argument("--max-bytes", type=int, help="keep whole layers up to this many bytes")

    p = sub.add_parser("bench", help="benchmark codecs on an image folder, a labelled dataset or a rosbag")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=Path, help="folder of images, or a dataset root with --dataset")
    src.add_argument("--bag", type=Path, help="rosbag2 folder or file (mcap or sqlite3)")
    p.add_argument("--dataset", help="read --data as a labelled dataset: camvid, cityscapes, ade20k, cocostuff")
    p.add_argument("--split", default="val", help="dataset split (default val)")
    p.add_argument("--topic", default="/camera/image_raw", help="image topic in --bag")
    p.add_argument("--storage", choices=["mcap", "sqlite3"], help="storage of the output bag (default: as input)")
    p.add_argument("--codecs", default="bpg,jpeg,webp",
                   help="comma-separated specs; sweeps like bpg:q=35..51/4 or jpeg:quality=5|10 (see docs/cli.md)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--limit", type=int, help="use at most N images/frames")
    p.add_argument("--sequence", action="store_true",
                   help="--data is one camera's frames, in file-name order: run the codecs as streams (inter "
                        "frames, gop=, kbps=; the summary gains kbps and flicker). --bag always runs as a stream")
    p.add_argument("--fps", type=float,
                   help="frame rate of the stream (--sequence: default 10; --bag: default from the stamps)")
    p.add_argument("--save-recon", action="store_true", help="write every reconstruction to OUT/<codec>/<stem>.png")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--segmenter", default="auto",
                   help="segmenter for semantic metrics: auto (shipped weights if present), none, or a model folder")
    p.add_argument("--eval-segmenter", default="auto",
                   help="independent segmenter scored into the eval_* columns (kept(ind)): auto (the shipped "
                        "evaluation U-Net if present), none, or a model folder")
    _add_device(p)

    p = sub.add_parser("demo", help="run the codecs on the bundled sample frames and print the table")
    p.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder (default out/demo)")
    p.add_argument("--quiet", action="store_true")
    _add_device(p)

    p = sub.add_parser("export", help="export a codec's networks to ONNX with sidecars and a parity check")
    p.add_argument("--codec", default=DEFAULT_CODEC, help="codec spec whose networks to export (default semantic-gan)")
    p.add_argument("--format", default="onnx", choices=("onnx", "tensorrt"),
                   help="onnx, or tensorrt: the ONNX files plus an engine per network built on this GPU")
    p.add_argument("--fp16", action="store_true", help="tensorrt: build fp16 engines (TensorRT 10.x)")
    p.add_argument("--device", default="cuda", help="tensorrt: the GPU to build for (cuda or cuda:N)")
    p.add_argument("--sizes", default="", help="extra frame sizes HxW for the parity check, e.g. 360x480,512x1024")
    p.add_argument("--out", type=Path, required=True, help="output folder (one .onnx + .json per network)")

    p = sub.add_parser("segmap-bench", help="seg-map layer vs optimised PNG on label maps")
    p.add_argument("--labels", type=Path, required=True, help="folder of label PNGs (e.g. camvid/valannot)")
    p.add_argument("--scale", type=int, default=8, help="downscale factor of the side (4..32, default 8)")
    p.add_argument("--limit", type=int)
    p.add_argument("--out", type=Path, help="write the JSON result here too")

    p = sub.add_parser("make-bag", help="build a rosbag2 camera bag from an image sequence or a video")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--images", type=Path, help="folder of frames (searched recursively, sorted)")
    src.add_argument("--video", type=Path, help="video file readable by OpenCV")
    p.add_argument("-o", "--output", type=Path, required=True, help="bag to create (must not exist)")
    p.add_argument("--rate", type=float, help="frame rate in Hz (default: the video's, 10 for images)")
    p.add_argument("--topic", default="/camera/image_raw")
    p.add_argument("--frame-id", default="camera")
    p.add_argument("--storage", choices=["mcap", "sqlite3"], default="mcap")
    p.add_argument("--limit", type=int, help="at most N frames")

    p = sub.add_parser("model-info", help="parameters and MACs of the segmenter and decoder")
    p.add_argument("--segmenter", default="default", help="model folder or 'default'")
    p.add_argument("--decoder", default="default", help="model folder or 'default'")
    p.add_argument("--eval-segmenter", default="default", help="model folder, 'default' or 'none'")
    p.add_argument("--sizes", default="360x480,512x1024", help="frame sizes HxW, comma-separated")

    from .train_cmd import add_train_parser
    add_train_parser(sub)
    from .robustness_cmd import add_robustness_parser
    add_robustness_parser(sub)
    from .calibrate_cmd import add_calibrate_parser
    add_calibrate_parser(sub)
    return ap


def _print_json(obj: dict) -> None:
    print(json.dumps(obj), flush=True)


def _read_input(path: Path) -> bytes:
    """The bytes of an input file; UsageError (exit 2) naming the problem."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise UsageError(f"no such file: {path}") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None


def _write_atomic(path: Path, data: bytes) -> None:
    path = Path(path)
    if path.parent and not path.parent.exists():
        raise UsageError(f"output folder does not exist: {path.parent}")
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None


# -- commands ---------------------------------------------------------------------------

def cmd_codecs(args) -> int:
    from .. import codecs

    for name in codecs.available():
        if args.verbose:
            cls = codecs.CODECS.get(name)
            params = ", ".join(f"{k}={p.default} ({'receiver-side, ' if p.side == 'receiver' else ''}{p.description})"
                               for k, p in cls.params.items())
            print(f"{name}\t{cls.summary}\tparams: {params or '-'}")
        else:
            print(name)
    return 0


def cmd_encode(args) -> int:
    from ..bitstream import bits_per_pixel
    from ..imageio import load_image

    from .. import codecs

    cls, params = codecs.resolve(args.codec, args.quality, args.device, _backend_option(args))
    if args.roi_mask or args.roi_boxes:
        from ..roi.masks import with_user_source

        params = with_user_source(cls, params, str(args.roi_mask or ""), args.roi_boxes or "")
    codec = cls(device=args.device, **params)
    image = load_image(args.image)
    t0 = time.perf_counter()
    data = codec.encode(image)
    ms = (time.perf_counter() - t0) * 1e3
    _write_atomic(args.output, data)
    h, w = image.shape[:2]
    report = {"codec": codec.label(), "implementation": codec.implementation, "bytes": len(data),
              "bpp": bits_per_pixel(len(data), h, w), "height": h, "width": w,
              "encode_ms": round(ms, 2), "output": str(args.output)}
    if data[:2] == b"SC":       # a container: bytes per layer, in the order a link would drop them (last first)
        from ..bitstream.inspect import describe

        d = describe(data)
        report["layers"] = {x["name"]: x["bytes"] for x in d["layers"]}
        report["framing_bytes"] = d["framing_bytes"]
    roi = getattr(codec, "last_roi", None)
    if roi is not None:         # selective coding: the byte split and what happened to the ROI
        report["roi"] = roi.as_dict()
    _print_json(report)
    return 0


def cmd_decode(args) -> int:
    from .. import codecs
    from ..bitstream import bits_per_pixel, unpack
    from ..imageio import save_png

    data = _read_input(args.input)
    container = unpack(data)
    receiver = codecs.parse_receiver_options(args.decoder_options)
    if args.backend:
        receiver["backend"] = args.backend
    ldm_opts = {"renderer": args.renderer, "steps": args.steps, "strength": args.strength,
                "sdedit_from": args.sdedit_from, "guidance": args.guidance, "eta": args.eta,
                "detail": args.detail}
    receiver.update({k: v for k, v in ldm_opts.items() if v is not None})
    cls = codecs.codec_class_for_id(container.codec_id)
    asked = [k for k, v in ldm_opts.items() if v is not None and k not in cls.params]
    if asked:
        raise UsageError(f"codec {cls.name!r} has no renderer choice: --{asked[0].replace('_', '-')} applies to the "
                         f"semantic codecs (semantic-gan, clip)")
    codec = codecs.decoder_for(container, args.device, receiver)
    t0 = time.perf_counter()
    image = codec.reconstruct(container)
    ms = (time.perf_counter() - t0) * 1e3
    tmp = Path(args.output).with_name(f".{Path(args.output).name}.tmp{os.getpid()}.png")
    save_png(tmp, image)
    os.replace(tmp, args.output)
    h, w = image.shape[:2]
    _print_json({"codec": codec.name, "implementation": codec.implementation, "bytes": len(data),
                 "bpp": bits_per_pixel(len(data), h, w), "height": h, "width": w,
                 "decode_ms": round(ms, 2), "output": str(args.output)})
    return 0


def _backend_option(args) -> str:
    """``--backend`` as a codec option (``backend=...``), or empty."""
    return f"backend={args.backend}" if getattr(args, "backend", None) else ""


def _parse_sizes(text: str) -> list[tuple[int, int]]:
    sizes = []
    for item in filter(None, (t.strip() for t in text.split(","))):
        h, sep, w = item.partition("x")
        if not sep or not h.isdigit() or not w.isdigit() or not (8 <= int(h) <= 4096 and 8 <= int(w) <= 4096):
            raise UsageError(f"bad size {item!r}: expected HxW with sides 8..4096, e.g. 360x480")
        sizes.append((int(h) // 8 * 8, int(w) // 8 * 8))
    return sizes


def cmd_export(args) -> int:
    from .. import codecs
    from ..imageio import list_images, load_image
    from ..inference.export import PARITY_SIZES, export_onnx
    from ..paths import SAMPLES_DIR, WEIGHTS_DIR

    if args.format == "tensorrt":
        from ..inference.trt_backend import import_tensorrt

        import_tensorrt()
    sizes = list(PARITY_SIZES) + _parse_sizes(args.sizes)
    codec = codecs.build(args.codec, device="cpu")
    if not hasattr(codec, "networks"):
        raise UsageError(f"codec {codec.name!r} runs no networks: nothing to export")
    frame = load_image(list_images(SAMPLES_DIR / "images")[0])
    real = codec.real_feeds(frame)
    args.out.mkdir(parents=True, exist_ok=True)
    for kind, (model, folder) in codec.networks().items():
        side = export_onnx(kind, model, args.out / f"{kind}.onnx", sizes=sizes,
                           real={"bundled_frame": real[kind]},
                           extra={"codec_spec": codec.wire_label(), "codec_config": codec.export_info(),
                                  "source": "shipped" if folder.startswith(str(WEIGHTS_DIR))
                                  else folder})
        worst = max(e["max_abs_error"] for e in side["parity"].values())
        agree = min((e["label_agreement"] for e in side["parity"].values() if "label_agreement" in e), default=None)
        row = {"network": kind, "onnx": str(args.out / f"{kind}.onnx"), "sidecar": str(args.out / f"{kind}.json"),
               "opset": side["opset"], "sha256": side["sha256"], "max_abs_error": worst,
               "label_agreement": agree, "checked": list(side["parity"])}
        if args.format == "tensorrt":  # build (or reuse) the engine for this GPU into OUT/engines
            from ..inference.trt_backend import TrtRunner

            runner = TrtRunner(kind, args.out / f"{kind}.onnx", model.config, args.device,
                               precision="fp16" if args.fp16 else "fp32", engine_cache=args.out / "engines")
            row.update(engine=str(runner.plan_path), engine_key=runner.key)
        _print_json(row)
    return 0


def cmd_inspect(args) -> int:
    from ..bitstream import MAGIC
    from ..bitstream.inspect import describe, format_description
    from ..bitstream.packets import describe_packet, format_packet, sniff

    data = _read_input(args.input)
    if data[:len(MAGIC)] != MAGIC and sniff(data):      # a video anchor's packet (h264, hevc, av1)
        d = describe_packet(data)
        _print_json(d) if args.json else print(format_packet(d))
        return 0
    d = describe(data)
    if args.json:
        _print_json(d)
    else:
        print(format_description(d))
    return 0


def cmd_cut(args) -> int:
    from ..bitstream import truncate, unpack
    from ..bitstream.inspect import describe

    data = _read_input(args.input)
    if args.max_bytes is not None:
        if args.max_bytes < 1:
            raise UsageError("--max-bytes must be positive")
        out = truncate(data, max_bytes=args.max_bytes)
    else:
        names = [x["name"] for x in describe(data)["layers"]]
        after = args.after.strip().lower()
        if after in names:
            keep = names.index(after) + 1
        elif after.isascii() and after.isdigit() and int(after) >= 1:
            keep = int(after)
        else:
            raise UsageError(f"--after {args.after!r}: not a layer of this container ({', '.join(names)}) "
                             f"nor a number of layers")
        out = truncate(data, keep_layers=keep)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(out)
    c = unpack(out)
    kept = [x["name"] for x in describe(out)["layers"]]
    print(f"{args.output}: {len(out)} of {len(data)} bytes, {len(c.layers)} of {len(c.declared)} layers "
          f"({', '.join(kept)})")
    return 0


def cmd_bench(args) -> int:
    from .bench_cmd import run_bench

    return run_bench(args)


def cmd_demo(args) -> int:
    from .bench_cmd import run_demo

    return run_demo(args)


def cmd_segmap_bench(args) -> int:
    from ..bench.segmap_bench import run_segmap_bench

    result = run_segmap_bench(args.labels, args.scale, args.limit)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    _print_json(result)
    return 0


def cmd_make_bag(args) -> int:
    from ..rosbag.make_bag import make_bag

    n = make_bag(args.output, images=args.images, video=args.video, rate=args.rate, topic=args.topic,
                 frame_id=args.frame_id, storage=args.storage, limit=args.limit)
    _print_json({"output": str(args.output), "messages": n, "topic": args.topic, "storage": args.storage})
    return 0


def cmd_model_info(args) -> int:
    from ..models.complexity import model_report

    for row in model_report(args.segmenter, args.decoder, args.sizes, args.eval_segmenter):
        _print_json(row)
    return 0


def cmd_train(args) -> int:
    from .train_cmd import run_train

    return run_train(args)


def cmd_robustness(args) -> int:
    from .robustness_cmd import run_robustness_cmd

    return run_robustness_cmd(args)


def cmd_calibrate(args) -> int:
    from .calibrate_cmd import run_calibrate_cmd

    return run_calibrate_cmd(args)


COMMANDS = {"export": cmd_export, "inspect": cmd_inspect, "cut": cmd_cut, "make-bag": cmd_make_bag, "model-info": cmd_model_info, "train": cmd_train, "codecs": cmd_codecs, "encode": cmd_encode, "decode": cmd_decode, "bench": cmd_bench,
            "demo": cmd_demo, "segmap-bench": cmd_segmap_bench, "robustness": cmd_robustness,
            "calibrate": cmd_calibrate}


def main(argv: list[str] | None = None) -> int:
    debug = os.environ.get("SEMCOMP_DEBUG") == "1"
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except UsageError as exc:
        print(f"semcomp: error: {exc}", file=sys.stderr)
        if debug:
            raise
        return 2
    except ModelMismatchError as exc:
        print(f"semcomp: error: model mismatch: {exc}", file=sys.stderr)
        if debug:
            raise
        return 1
    except BitstreamError as exc:
        print(f"semcomp: error: bad bitstream: {exc}", file=sys.stderr)
        if debug:
            raise
        return 1
    except SemcompError as exc:
        print(f"semcomp: error: {exc}", file=sys.stderr)
        if debug:
            raise
        return 1
    except KeyboardInterrupt:
        print("semcomp: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    except Exception as exc:  # last resort: still one line, non-zero
        if debug:
            raise
        print(f"semcomp: internal error: {type(exc).__name__}: {exc} (SEMCOMP_DEBUG=1 for a traceback)",
              file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
