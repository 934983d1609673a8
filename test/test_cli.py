"""The `semcomp` CLI contract: JSON lines, exact byte counts, exit codes, one-line errors."""
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from semcomp_core.cli.main import main


def run(*args, cwd=None):
    proc = subprocess.run([sys.executable, "-m", "semcomp_core", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


def test_codecs_lists_one_per_line(capsys):
    assert main(["codecs"]) == 0
    names = capsys.readouterr().out.split()
    assert {"bpg", "jpeg", "webp"} <= set(names)


@pytest.mark.parametrize("codec", ["bpg", "jpeg", "webp"])
def test_encode_decode_roundtrip(tmp_path, sample_paths, codec, capsys):
    src = sample_paths[1]
    smc, png = tmp_path / "f.smc", tmp_path / "f.png"
    assert main(["encode", str(src), "-o", str(smc), "--codec", codec]) == 0
    info = json.loads(capsys.readouterr().out.strip())
    assert info["bytes"] == smc.stat().st_size
    assert info["bytes"] == info["framing_bytes"] + sum(info["layers"].values()) and list(info["layers"]) == ["image"]
    assert info["bpp"] == pytest.approx(8 * info["bytes"] / (info["height"] * info["width"]))
    assert (info["height"], info["width"]) == (360, 480) and info["codec"].startswith(codec)
    assert main(["decode", str(smc), "-o", str(png)]) == 0
    assert json.loads(capsys.readouterr().out.strip())["height"] == 360
    with Image.open(png) as im:
        assert im.size == (480, 360)


def test_quality_option(tmp_path, sample_paths, capsys):
    sizes = []
    for q in ("51", "40"):
        assert main(["encode", str(sample_paths[0]), "-o", str(tmp_path / f"{q}.smc"), "--codec", "bpg",
                     "--quality", q]) == 0
        sizes.append(json.loads(capsys.readouterr().out)["bytes"])
    assert sizes[0] < sizes[1]


@pytest.mark.parametrize("args,needle,code", [
    (["encode", "missing.png", "-o", "x.smc"], "no such file", 2),
    (["encode", "{img}", "-o", "x.smc", "--codec", "nope"], "unknown codec", 2),
    (["encode", "{img}", "-o", "x.smc", "--codec", "jpeg", "--quality", "999"], "outside", 2),
    (["encode", "{img}", "-o", "x.smc", "--codec", "jpeg:foo=1"], "no parameter", 2),
    (["encode", "{txt}", "-o", "x.smc"], "cannot read image", 2),
    (["encode", "{img}", "-o", "nodir/x.smc", "--codec", "jpeg"], "output folder", 2),
    (["decode", "{corrupt}", "-o", "x.png"], "bad bitstream", 1),
    (["decode", "{txt}", "-o", "x.png"], "magic", 1),
    (["decode", "missing.smc", "-o", "x.png"], "no such file", 2),
    (["bench", "--data", "missing_dir", "--out", "o"], "folder", 2),
    (["bench", "--data", ".", "--out", "o", "--codecs", "bpg:q=99"], "outside", 2),
    (["frobnicate"], "invalid choice", 2),
])
def test_bad_input_one_line_nonzero(tmp_path, sample_paths, args, needle, code):
    (tmp_path / "t.txt").write_text("not an image")
    good = tmp_path / "g.smc"
    assert run("encode", sample_paths[0], "-o", good, "--codec", "jpeg")[0] == 0
    data = bytearray(good.read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "c.smc").write_bytes(bytes(data))
    subst = {"{img}": str(sample_paths[0]), "{txt}": str(tmp_path / "t.txt"), "{corrupt}": str(tmp_path / "c.smc")}
    rc, out, err = run(*[subst.get(a, a) for a in args], cwd=tmp_path)
    assert rc == code
    lines = err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], err
    assert "Traceback" not in err
    assert not (tmp_path / "x.smc").exists()


def test_bench_folder(tmp_path, sample_paths):
    data = tmp_path / "imgs"
    data.mkdir()
    for p in sample_paths[:2]:
        Image.open(p).crop((0, 0, 240, 180)).save(data / p.name)
    out = tmp_path / "out"
    rc = main(["bench", "--data", str(data), "--codecs", "jpeg:quality=5|30,webp", "--out", str(out),
               "--save-recon", "--quiet"])
    assert rc == 0
    for f in ("per_image.csv", "per_image.json", "summary.csv", "summary.json", "rate_distortion.png"):
        assert (out / f).stat().st_size > 0
    rows = json.loads((out / "per_image.json").read_text())
    assert len(rows) == 2 * 3
    summary = json.loads((out / "summary.json").read_text())["codecs"]
    q5, q30 = summary[0], summary[1]
    assert q5["codec"] == "jpeg:quality=5" and q5["bytes"] < q30["bytes"] and q5["psnr"] < q30["psnr"]
    assert (out / "jpeg_quality5" / f"{sample_paths[0].stem}.png").exists()
    assert (out / "webp_quality5" / f"{sample_paths[1].stem}.png").exists()


def test_bench_dataset_option(tmp_path, camvid_root):
    out = tmp_path / "o"
    rc = main(["bench", "--data", str(camvid_root), "--dataset", "camvid", "--split", "val", "--limit", "2",
               "--codecs", "jpeg", "--out", str(out), "--quiet"])
    assert rc == 0
    assert json.loads((out / "summary.json").read_text())["frames"] == 2


def test_segmap_bench_on_camvid(camvid_root, capsys):
    assert main(["segmap-bench", "--labels", str(camvid_root / "valannot"), "--scale", "8", "--limit", "20"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["maps"] == 20 and res["map_shape"] == [45, 60]
    assert res["reduction_vs_png"] >= 0.30


def test_demo_runs(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "bpg" in out and "PSNR" in out
    assert (tmp_path / "side_by_side.png").exists()
    with Image.open(tmp_path / "side_by_side.png") as im:
        # original | [semantic-gan | + structure | [ldm renderer | clip |] gc | bpg-se |] bpg
        assert im.size[0] in (480 * 2, 480 * 6, 480 * 8)
    assert "structure=l" in out and "structure" in out.splitlines()[1]    # the row and its byte column
    assert "gc:level=1" in out and "bpg-se:q=51" in out
    from semcomp_core.paths import WEIGHTS_DIR

    if (WEIGHTS_DIR / "ldm" / "unet" / "config.json").exists():
        assert "semantic-gan:level=1:renderer=ldm " in out and "renderer: ldm" in out and "\nclip:level=1 " in out


def test_decode_output_not_written_on_error(tmp_path):
    bad = tmp_path / "b.smc"
    bad.write_bytes(b"SC\x01garbage")
    target = tmp_path / "keep.png"
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(target)
    before = target.read_bytes()
    assert main(["decode", str(bad), "-o", str(target)]) == 1
    assert target.read_bytes() == before


def test_bench_semantic_metrics_with_segmenter(tmp_path, camvid_root):
    torch = pytest.importorskip("torch")
    from semcomp_core.models import DDRNetSeg, save_model

    torch.manual_seed(0)
    save_model(DDRNetSeg.tiny(num_classes=11).eval(), tmp_path / "seg")
    out = tmp_path / "o"
    assert main(["bench", "--data", str(camvid_root), "--dataset", "camvid", "--limit", "2", "--codecs",
                 "jpeg:quality=5|50", "--segmenter", str(tmp_path / "seg"), "--out", str(out), "--quiet"]) == 0
    rows = json.loads((out / "summary.json").read_text())["codecs"]
    for r in rows:
        assert 0.0 <= r["miou_recon_vs_gt"] <= 1.0 and 0.0 <= r["miou_recon_vs_orig"] <= 1.0
    assert rows[1]["miou_recon_vs_orig"] >= rows[0]["miou_recon_vs_orig"] - 0.05


def test_bench_independent_eval_segmenter_columns(tmp_path, camvid_root, capsys):
    torch = pytest.importorskip("torch")
    from semcomp_core.models import DDRNetSeg, UNetSeg, save_model

    torch.manual_seed(0)
    save_model(DDRNetSeg.tiny(num_classes=11).eval(), tmp_path / "seg")
    save_model(UNetSeg.tiny(num_classes=11).eval(), tmp_path / "ev")
    out = tmp_path / "o"
    args = ["bench", "--data", str(camvid_root), "--dataset", "camvid", "--limit", "2", "--codecs", "jpeg:quality=50",
            "--segmenter", str(tmp_path / "seg"), "--out", str(out), "--quiet"]
    assert main(args + ["--eval-segmenter", str(tmp_path / "ev")]) == 0
    assert "kept(ind)" in capsys.readouterr().out
    row = json.loads((out / "summary.json").read_text())["codecs"][0]
    assert 0.0 <= row["eval_miou_recon_vs_gt"] <= 1.0 and "eval_preservation" in row
    assert row["eval_miou_orig_vs_gt"] != row["miou_orig_vs_gt"]  # a different network judged
    per_image = (out / "per_image.csv").read_text().splitlines()[0]
    assert "eval_miou_recon_vs_gt" in per_image
    save_model(UNetSeg.tiny(num_classes=5).eval(), tmp_path / "ev5")
    assert main(args[:-3] + ["--out", str(tmp_path / "o2"), "--quiet", "--eval-segmenter", str(tmp_path / "ev5")]) == 2
    assert "classes" in capsys.readouterr().err


def test_make_bag_and_bench_bag_cli(tmp_path, sample_paths, capsys):
    from rosbags.highlevel import AnyReader

    frames = tmp_path / "seq"
    frames.mkdir()
    for p in sample_paths[:3]:
        Image.open(p).resize((96, 72)).save(frames / p.name)
    bag = tmp_path / "cam"
    assert main(["make-bag", "--images", str(frames), "-o", str(bag), "--rate", "5", "--storage", "sqlite3"]) == 0
    assert json.loads(capsys.readouterr().out)["messages"] == 3
    out = tmp_path / "out"
    assert main(["bench", "--bag", str(bag), "--codecs", "jpeg", "--out", str(out), "--quiet"]) == 0
    with AnyReader([out / "bag"]) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
    assert counts == {"/camera/image_raw/semcomp": 3, "/camera/image_raw/semcomp/reconstructed": 3}
    assert main(["make-bag", "--images", str(frames), "-o", str(bag)]) == 2  # exists: refused


def test_panel_grid_rows_and_scale(tmp_path):
    from semcomp_core.bench.report import panel_grid

    img = np.zeros((40, 60, 3), np.uint8)
    rows = [[("a", img), ("b", img + 200)], [("c", img), ("d", img)]]
    path = panel_grid(rows, tmp_path / "g" / "grid.png", scale=0.5)
    with Image.open(path) as im:
        assert im.size == (2 * 30, 2 * (20 + 16))
        assert im.getpixel((30 + 10, 16 + 10)) == (200, 200, 200)  # second panel of the first row, scaled


def test_any_codec_parameters_decode_identically_in_decode_bench_and_decoder_stage(tmp_path, sample_paths,
                                                                                   capsys):
    """The receiver renders what the benchmark scored: seed and level travel in the container."""
    from semcomp_core.imageio import load_image
    from semcomp_core.pipeline import DecoderStage

    data = tmp_path / "imgs"
    data.mkdir()
    Image.open(sample_paths[0]).crop((0, 0, 160, 120)).save(data / "f.png")
    spec = "semantic-gan:level=xs:seed=5"
    smc, png, out = tmp_path / "f.smc", tmp_path / "f_dec.png", tmp_path / "bench"
    assert main(["encode", str(data / "f.png"), "-o", str(smc), "--codec", spec]) == 0
    assert main(["decode", str(smc), "-o", str(png)]) == 0
    assert main(["bench", "--data", str(data), "--codecs", spec, "--out", str(out), "--save-recon", "--quiet",
                 "--segmenter", "none"]) == 0
    capsys.readouterr()
    via_cli = load_image(png)
    via_bench = load_image(out / "semantic-gan_level0_seed5" / "f.png")
    via_stage = DecoderStage().decode(smc.read_bytes(), None).image
    assert np.array_equal(via_cli, via_bench) and np.array_equal(via_cli, via_stage)
    seed0 = tmp_path / "s0.smc"
    assert main(["encode", str(data / "f.png"), "-o", str(seed0), "--codec", "semantic-gan:level=xs"]) == 0
    assert main(["decode", str(seed0), "-o", str(tmp_path / "s0.png")]) == 0
    assert not np.array_equal(load_image(tmp_path / "s0.png"), via_cli)   # the seed did travel


def test_decode_with_a_decoder_for_another_label_table_is_one_clear_error(tmp_path, sample_paths):
    import torch

    from semcomp_core.models import SPADEGenerator, save_model

    torch.manual_seed(0)
    cfg = dict(SPADEGenerator.tiny(num_classes=11).config, class_names=[f"c{i}" for i in range(11)])
    save_model(SPADEGenerator(**cfg).eval(), tmp_path / "gen")
    smc = tmp_path / "f.smc"
    assert main(["encode", str(sample_paths[0]), "-o", str(smc), "--codec", "semantic-gan:level=xs"]) == 0
    rc, _, err = run("decode", smc, "-o", tmp_path / "x.png", "--decoder-options", f"decoder={tmp_path / 'gen'}")
    assert rc == 1 and len(err.strip().splitlines()) == 1 and "model mismatch" in err and "label table" in err
    assert not (tmp_path / "x.png").exists()
    rc, _, err = run("decode", smc, "-o", tmp_path / "x.png", "--decoder-options", "seed=3")
    assert rc == 2 and "not a receiver option" in err
