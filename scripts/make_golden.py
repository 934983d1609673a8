#!/usr/bin/env python3
"""Write the golden bitstreams that test/test_golden_bitstreams.py checks (test/data/golden/).

Run it only after a *deliberate* wire-format change, and bump ``VERSION`` in
semcomp_core/bitstream/container.py first: the script refuses to overwrite
goldens of the current version with different bytes unless --same-version is
given (an encoder change that keeps the version would make old receivers
misread new streams). Keep the goldens of older versions that this build still
reads (``v1/``, ``v2/``, ``v3/``). ``stream/`` holds a two-frame stream (key, inter) whose
reference decodes come from a stream decoder.

    .venv/bin/python scripts/make_golden.py [--same-version]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from semcomp_core import codecs  # noqa: E402
from semcomp_core.bitstream import VERSION, unpack  # noqa: E402
from semcomp_core.datasets.camvid import CamVid  # noqa: E402
from semcomp_core.imageio import load_image, load_label, save_png  # noqa: E402
from semcomp_core.layers import (ColorMapDeltaLayer, ColorMapLayer, DecoderParams, DecoderParamsLayer,  # noqa: E402
                                 FrameHeader, FrameInfoLayer, SegMapInterLayer, SegMapLayer, StructureLayer,
                                 downscale_labels, label_table_id, thumbnail)
from semcomp_core.layers.colormap import quantise  # noqa: E402
from semcomp_core.layers.colormap_delta import delta_quantise  # noqa: E402
from semcomp_core.paths import SAMPLES_DIR  # noqa: E402

OUT = REPO / "test" / "data" / "golden"
FRAME = "0016E5_07959.png"
#: codec spec -> golden file stem
CONTAINERS = {
    "jpeg:quality=10": "jpeg_q10",
    "webp:quality=5": "webp_q5",
    "bpg:q=45:impl=x265": "bpg_q45",
    "semantic-gan:level=m:roi=none": "semantic-gan_m",
    # format version 4: the structure layer
    "semantic-gan:level=m:roi=none:structure=m": "semantic-gan_m_structure",
    "semantic-gan:level=xs:seed=7": "semantic-gan_xs_seed7",
    # selective coding: an explicit-mask ROI layer, and a classic full-frame fallback frame
    "semantic-gan:level=m:roi=user:roi_boxes=160,120,320,300:budget=700": "semantic-gan_roi",
    "semantic-gan:roi=uncertain:roi_conf=1:fallback=0.5:budget=450": "semantic-gan_fallback",
}


def fixed_inputs() -> dict:
    """The fixed inputs of the layer encoders (the test rebuilds them the same way)."""
    image = load_image(SAMPLES_DIR / "images" / FRAME)
    labels = CamVid.lut[load_label(SAMPLES_DIR / "labels" / FRAME)]
    labels = np.where(labels == 255, 0, labels).astype(np.uint8)   # void -> Sky: the layer codes 0..10
    map4 = downscale_labels(labels, 4)
    edges4 = np.zeros(map4.shape, bool)
    edges4[:, 1:] |= map4[:, 1:] != map4[:, :-1]
    edges4[1:, :] |= map4[1:, :] != map4[:-1, :]
    return {"image": image, "map8": downscale_labels(labels, 8), "map16": downscale_labels(labels, 16),
            "thumb16": thumbnail(image, 16, 12), "thumb32": thumbnail(image, 32, 24), "edges4": edges4}


def layer_payloads(inp: dict) -> dict[str, bytes]:
    from semcomp_core.datasets.camvid import CLASSES

    return {
        "segmap_1of8_camvid_prior": SegMapLayer(num_classes=11).encode(inp["map8"]),
        "segmap_1of16_no_prior": SegMapLayer(num_classes=11, prior_id=0).encode(inp["map16"]),
        "colormap_16x12_q20": ColorMapLayer(20).encode(inp["thumb16"]),
        "colormap_32x24_q5": ColorMapLayer(5).encode(inp["thumb32"]),
        "decoder_params_camvid_seed300": DecoderParamsLayer().encode(
            DecoderParams(label_table_id(CLASSES, 11), 300)),
        # format version 3: the stream layers
        "frame_info_inter_tag90_seq300": FrameInfoLayer().encode(FrameHeader(False, 90, 300, 1)),
        "frame_info_key_tag7_seq0": FrameInfoLayer().encode(FrameHeader(True, 7, 0)),
        "segmap_inter_1of8_shift": SegMapInterLayer(11).encode(
            (inp["map8"], np.roll(inp["map8"], 1, axis=1), (0, -1))),
        "segmap_inter_1of8_vs_1of16": SegMapInterLayer(11).encode((inp["map8"], inp["map16"], (0, 0))),
        "colormap_delta_16x12_q20": ColorMapDeltaLayer().encode(
            (delta_quantise(np.clip(inp["thumb16"].astype(int) + 9, 0, 255).astype(np.uint8),
                            quantise(inp["thumb16"], 20), 20), quantise(inp["thumb16"], 20), 20)),
        # format version 4: the structure layer, with and without the prior, on a fixed edge map (the
        # class boundaries of the 1/4 label map: no image library between the input and the coder)
        "structure_boundaries_camvid_prior": StructureLayer().encode(inp["edges4"]),
        "structure_boundaries_no_prior": StructureLayer(prior_id=0).encode(inp["edges4"]),
    }


#: a two-frame stream (key + inter frame) of the default codec with gop=30, on two bundled frames
STREAM_SPEC = "semantic-gan:gop=30"
STREAM_FRAMES = ("0016E5_07959.png", "0016E5_08007.png")


def stream_containers() -> list[bytes]:
    enc = codecs.create(STREAM_SPEC).open_encoder(fps=10)
    return [enc.encode(load_image(SAMPLES_DIR / "images" / f)) for f in STREAM_FRAMES]


def as_version(data: bytes, version: int) -> bytes:
    """The same semantic container as format ``version`` (1..3) wrote it: one CRC-32 at the end, and no
    decoder-params layer in version 1."""
    import zlib

    from semcomp_core.bitstream import LayerId
    from semcomp_core.bitstream.container import encode_varint

    c = unpack(data)
    layers = [(lid, p) for lid, p in c.layers if version > 1 or lid != LayerId.DECODER_PARAMS]
    out = bytearray(b"SC") + bytes([version, c.codec_id]) + encode_varint(c.height) + encode_varint(c.width)
    out.append(len(layers))
    for lid, p in layers:
        out += bytes([lid]) + encode_varint(len(p))
    for _, p in layers:
        out += p
    return bytes(out + zlib.crc32(out).to_bytes(4, "big"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--same-version", action="store_true",
                    help="overwrite goldens of the current format version even if bytes change")
    args = ap.parse_args()
    manifest_path = OUT / "manifest.json"
    old = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    inp = fixed_inputs()
    files: dict[str, bytes] = {f"{k}.bin": v for k, v in layer_payloads(inp).items()}
    decoded: dict[str, np.ndarray] = {}
    for spec, stem in CONTAINERS.items():
        data = codecs.create(spec).encode(inp["image"])
        files[f"{stem}.smc"] = data
        decoded[stem] = codecs.decode(data)
    for v in (1, 2, 3):
        files[f"v{v}/semantic-gan_m.smc"] = as_version(files["semantic-gan_m.smc"], v)
    dec = codecs.receiver_instance(codecs.CODECS.get("semantic-gan")).open_decoder()
    for i, data in enumerate(stream_containers()):
        files[f"stream/frame{i}.smc"] = data
        decoded[f"stream/frame{i}"] = dec.decode(data)
    sha = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    if old.get("format_version") == VERSION and not args.same_version:
        changed = [n for n in sha if n in old.get("sha256", {}) and old["sha256"][n] != sha[n]
                   and n.endswith(".bin")]
        if changed:
            print(f"make_golden: layer bytes changed at the same format version {VERSION}: {changed}; "
                  "bump VERSION in semcomp_core/bitstream/container.py (or pass --same-version)", file=sys.stderr)
            return 1
    for name, data in files.items():
        (OUT / name).parent.mkdir(parents=True, exist_ok=True)
        (OUT / name).write_bytes(data)
    for stem, img in decoded.items():
        save_png(OUT / f"{stem}.png", img)
    doc = {"format_version": VERSION, "frame": FRAME, "containers": CONTAINERS, "sha256": sha,
           "bytes": {n: len(d) for n, d in files.items()},
           "note": "written by scripts/make_golden.py; *.png are the reference decodes of *.smc "
                   "(semcomp decode of v1/semantic-gan_m.smc gives semantic-gan_m.png too)"}
    manifest_path.write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps(doc["bytes"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
