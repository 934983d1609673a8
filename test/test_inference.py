"""One inference interface: torch and onnxruntime backends, ONNX export with sidecar and parity, the cache."""
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from semcomp_core import codecs  # noqa: E402
from semcomp_core.errors import UsageError  # noqa: E402
from semcomp_core.inference import NETWORKS, make_runner  # noqa: E402
from semcomp_core.inference import export as ex  # noqa: E402
from semcomp_core.metrics import psnr  # noqa: E402
from semcomp_core.models import DDRNetSeg, SPADEGenerator, save_model  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("inf")
    torch.manual_seed(0)
    seg, gen = DDRNetSeg.tiny(num_classes=11).eval(), SPADEGenerator.tiny(num_classes=11).eval()
    save_model(seg, root / "seg")
    save_model(gen, root / "gen")
    return root, seg, gen


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SEMCOMP_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.parametrize("kind", ["segmenter", "generator"])
def test_export_writes_onnx_and_a_sidecar_with_parity(tiny, tmp_path, kind):
    _, seg, gen = tiny
    model = seg if kind == "segmenter" else gen
    side = ex.export_onnx(kind, model, tmp_path / f"{kind}.onnx")
    assert json.loads((tmp_path / f"{kind}.json").read_text()) == json.loads(json.dumps(side))
    assert side["opset"] == ex.OPSET and side["sha256"] == ex._sha256(tmp_path / f"{kind}.onnx")
    assert [i["name"] for i in side["inputs"]] == list(NETWORKS[kind].inputs)
    assert all(i["dtype"] == "float32" for i in side["inputs"])
    assert isinstance(side["inputs"][0]["shape"][2], str)          # dynamic height
    assert side["config"]["num_classes"] == 11 and side["torch"] == torch.__version__
    for entry in side["parity"].values():
        assert entry["max_abs_error"] <= ex.TOLERANCE[kind]
        assert entry.get("label_agreement", 1.0) >= ex.MIN_LABEL_AGREEMENT


def test_export_fails_loudly_when_parity_is_off(tiny, tmp_path, monkeypatch):
    monkeypatch.setitem(ex.TOLERANCE, "generator", -1.0)
    with pytest.raises(ex.ExportError, match="does not match"):
        ex.export_onnx("generator", tiny[2], tmp_path / "g.onnx")
    assert not list(tmp_path.glob("*.onnx")) and not list(tmp_path.glob("*.json"))


def test_backends_agree_at_a_size_the_export_never_saw(tiny):
    root, seg, gen = tiny
    rng = np.random.default_rng(1)
    for kind, model, folder in (("segmenter", seg, "seg"), ("generator", gen, "gen")):
        feeds = NETWORKS[kind].example(model, 120, 200, rng)
        a = make_runner(kind, model, "torch")(**feeds)
        runner = make_runner(kind, model, "onnxruntime", model_dir=root / folder)
        assert "CPUExecutionProvider" in runner.provider
        np.testing.assert_allclose(runner(**feeds), a, atol=1e-3)


def test_cache_is_keyed_by_weights_and_rebuilt_when_damaged(tiny, cache):
    root, seg, _ = tiny
    p1 = ex.cached_onnx("segmenter", seg, root / "seg")
    assert p1.parent.parent == cache / "onnx" and ex.cached_onnx("segmenter", seg, root / "seg") == p1
    p1.write_bytes(b"garbage")                       # damaged: sha256 no longer matches the sidecar
    assert ex.cached_onnx("segmenter", seg, root / "seg") == p1 and p1.stat().st_size > 1000
    torch.manual_seed(5)
    other = DDRNetSeg.tiny(num_classes=11).eval()     # other weights: another key
    assert ex.cached_onnx("segmenter", other) != p1


def test_codec_round_trip_with_onnxruntime_matches_torch(tiny, sample_image):
    root = tiny[0]
    models = f"segmenter={root / 'seg'}:decoder={root / 'gen'}:roi=none"
    img = sample_image[:96, :128]
    data_t = codecs.create(f"semantic-gan:{models}").encode(img)
    data_o = codecs.create(f"semantic-gan:backend=onnxruntime:{models}").encode(img)
    from semcomp_core.bitstream import LayerId, unpack
    from semcomp_core.layers import SegMapLayer
    lt = SegMapLayer().decode(unpack(data_t).layer(LayerId.SEGMAP))
    lo = SegMapLayer().decode(unpack(data_o).layer(LayerId.SEGMAP))
    assert (lt == lo).mean() >= 0.995
    rec_t = codecs.decode(data_t, receiver=f"decoder={root / 'gen'}")
    rec_o = codecs.decode(data_t, receiver=f"decoder={root / 'gen'}:backend=onnxruntime")
    assert psnr(rec_t, rec_o) >= 40.0
    assert "onnxruntime" in codecs.decoder_for(data_t, receiver=f"decoder={root / 'gen'}:backend=onnxruntime"
                                               ).implementation


def _have_tensorrt() -> bool:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False
    return torch.cuda.is_available()


@pytest.mark.skipif(_have_tensorrt(), reason="TensorRT is installed here: the missing-TensorRT message cannot show")
def test_tensorrt_missing_is_one_clear_error(tiny, tmp_path, capsys):
    from semcomp_core.cli.main import main

    with pytest.raises(UsageError, match="needs NVIDIA TensorRT"):
        codecs.create("semantic-gan:backend=tensorrt")
    with pytest.raises(UsageError, match="needs NVIDIA TensorRT"):
        make_runner("generator", tiny[2], "tensorrt", "cuda")
    assert main(["export", "--format", "tensorrt", "--out", str(tmp_path / "y")]) == 2
    assert "needs NVIDIA TensorRT" in capsys.readouterr().err and not (tmp_path / "y").exists()


def test_tensorrt_engine_key_covers_everything_that_invalidates_an_engine():
    from semcomp_core.inference.trt_backend import engine_key, input_shapes

    prof = {"image": ((1, 3, 64, 64), (1, 3, 360, 480), (1, 3, 1024, 2048))}
    base = ("a" * 64, "10.3.0", "Orin", (8, 7), "fp16", prof)
    key = engine_key(*base)
    changed = [("b" * 64,) + base[1:], base[:1] + ("10.7.0",) + base[2:], base[:2] + ("RTX 4090",) + base[3:],
               base[:3] + ((8, 9),) + base[4:], base[:4] + ("fp32",) + base[5:],
               base[:5] + ({"image": ((1, 3, 64, 64), (1, 3, 512, 1024), (1, 3, 1024, 2048))},)]
    assert len({key} | {engine_key(*c) for c in changed}) == 7
    assert engine_key(*base) == key
    shapes = input_shapes("generator", {"num_classes": 11, "noise_channels": 8}, (360, 481))
    assert shapes == {"onehot": (1, 11, 360, 488), "color": (1, 3, 360, 488), "noise": (1, 8, 45, 61),
                      "layers": (1, 1, 360, 488)}
    roi = input_shapes("generator", {"num_classes": 11, "noise_channels": 8, "optional_layers": ["roi"]}, (360, 481))
    assert roi["layers"] == (1, 4, 360, 488)


@pytest.mark.skipif(not _have_tensorrt(), reason="needs TensorRT and a CUDA GPU (not installable on the CI machines)")
def test_tensorrt_engine_builds_caches_and_matches_torch(tiny, tmp_path):
    from semcomp_core.inference.trt_backend import TrtRunner

    root, _, gen = tiny
    onnx = ex.cached_onnx("generator", gen, root / "gen")
    feeds = NETWORKS["generator"].example(gen, 96, 128, np.random.default_rng(0))
    a = TrtRunner("generator", onnx, gen.config, "cuda", engine_cache=tmp_path)
    np.testing.assert_allclose(a(**feeds), make_runner("generator", gen, "torch")(**feeds), atol=1e-3)
    b = TrtRunner("generator", onnx, gen.config, "cuda", engine_cache=tmp_path)   # from the cache
    assert b.plan_path == a.plan_path and len(list(tmp_path.glob("*.plan"))) == 1
    meta = json.loads(a.plan_path.with_suffix(".json").read_text())
    meta["tensorrt"] = "0.0"                                                        # foreign: rebuilt
    a.plan_path.with_suffix(".json").write_text(json.dumps(meta))
    c = TrtRunner("generator", onnx, gen.config, "cuda", engine_cache=tmp_path)
    assert json.loads(c.plan_path.with_suffix(".json").read_text())["tensorrt"] != "0.0"


def test_bad_backends_are_clear_errors(tiny, tmp_path):
    with pytest.raises(UsageError, match="not one of"):
        codecs.create("semantic-gan:backend=tflite")
    with pytest.raises(UsageError, match="unknown backend"):
        make_runner("generator", tiny[2], "tflite")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    from semcomp_core.inference.ort_backend import OrtRunner
    with pytest.raises(UsageError, match="cannot load"):
        OrtRunner("generator", bad)
    import onnxruntime as ort
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(UsageError, match="no CUDAExecutionProvider"):
            OrtRunner("generator", bad, device="cuda")


def test_cli_export_writes_every_network_with_codec_sidecars(tiny, tmp_path, capsys):
    from semcomp_core.cli.main import main

    root = tiny[0]
    spec = f"semantic-gan:segmenter={root / 'seg'}:decoder={root / 'gen'}:roi=none"
    assert main(["export", "--codec", spec, "--sizes", "72x104", "--out", str(tmp_path / "x")]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    assert [x["network"] for x in lines] == ["segmenter", "generator"]
    for x in lines:
        side = json.loads((tmp_path / "x" / f"{x['network']}.json").read_text())
        assert side["sha256"] == x["sha256"] and "72x104" in side["parity"] and "bundled_frame" in side["parity"]
        cfg = side["codec_config"]
        assert cfg["codec"] == "semantic-gan" and cfg["num_classes"] == 11 and len(cfg["levels"]) == 5
        assert cfg["label_table"].startswith("0x") and str(root) not in side["codec_spec"]
    assert main(["export", "--codec", "jpeg", "--out", str(tmp_path / "z")]) == 2
    assert "runs no networks" in capsys.readouterr().err


def test_cli_backend_option_round_trips(tiny, tmp_path, sample_paths, capsys):
    from semcomp_core.cli.main import main
    from semcomp_core.imageio import load_image

    root = tiny[0]
    spec = f"semantic-gan:segmenter={root / 'seg'}:decoder={root / 'gen'}:roi=none"
    smc = tmp_path / "f.smc"
    assert main(["encode", str(sample_paths[0]), "-o", str(smc), "--codec", spec, "--backend", "onnxruntime"]) == 0
    outs = {}
    for backend in ("torch", "onnxruntime"):
        png = tmp_path / f"{backend}.png"
        assert main(["decode", str(smc), "-o", str(png), "--decoder-options", f"decoder={root / 'gen'}",
                     "--backend", backend]) == 0
        info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert backend in info["implementation"] or backend == "torch"
        outs[backend] = load_image(png)
    assert psnr(outs["torch"], outs["onnxruntime"]) >= 40.0
    assert main(["encode", str(sample_paths[0]), "-o", str(smc), "--codec", "jpeg", "--backend", "onnxruntime"]) == 2


def test_decoder_stage_backend_and_warm_up(tiny):
    from semcomp_core.pipeline import DecoderStage

    root = tiny[0]
    stage = DecoderStage(decoder_options=f"decoder={root / 'gen'}", backend="onnxruntime")
    ran = [r for r in stage.warm_up() if r.startswith("semantic-gan")]
    assert len(ran) == 1 and "generator on onnxruntime" in ran[0]
    assert stage.diagnostics().values["backend"] == "onnxruntime"
    stage.configure(decoder_options=f"decoder={root / 'gen'}:backend=torch")   # options win over the param
    assert any("generator on torch" in r for r in stage.warm_up())
    with pytest.raises(UsageError, match="backend must be one of"):
        stage.configure(backend="tflite")
    assert stage._receiver["backend"] == "torch"                                # nothing changed


def test_every_shipped_network_exports_with_parity(tmp_path, capsys):
    """CI keeps the deployment path of the shipped weights working: `semcomp export` (ONNX, parity on
    random sizes and on a bundled frame) must pass for every network the default codec runs."""
    from semcomp_core.cli.main import main
    from semcomp_core.paths import WEIGHTS_DIR

    if not (WEIGHTS_DIR / "decoder" / "config.json").exists():
        pytest.skip("no shipped weights in this checkout")
    assert main(["export", "--out", str(tmp_path)]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    assert {r["network"] for r in rows} == {"segmenter", "generator"}
    for r in rows:
        side = json.loads((tmp_path / f"{r['network']}.json").read_text())
        assert side["codec_config"]["label_table"] and side["source"] == "shipped"
        assert r["max_abs_error"] <= ex.TOLERANCE[r["network"]] and "bundled_frame" in r["checked"]
    assert next(r for r in rows if r["network"] == "segmenter")["label_agreement"] >= ex.MIN_LABEL_AGREEMENT


@pytest.mark.gpu
def test_onnxruntime_cuda_binds_torch_cuda_tensors(tmp_path):
    """CUDA provider: inputs bound with IOBinding (torch CUDA tensors in place) give the torch output."""
    torch = pytest.importorskip("torch")
    ort = pytest.importorskip("onnxruntime")
    if not torch.cuda.is_available() or "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("needs a CUDA GPU and onnxruntime-gpu")
    from semcomp_core.inference.export import export_onnx
    from semcomp_core.inference.ort_backend import OrtRunner
    from semcomp_core.models import DDRNetSeg

    model = DDRNetSeg.tiny(num_classes=11).eval()
    path = tmp_path / "segmenter.onnx"
    export_onnx("segmenter", model, path)
    runner = OrtRunner("segmenter", path, "cuda")
    assert runner.cuda_index == 0 and "CUDAExecutionProvider" in runner.provider
    x = torch.rand(1, 3, 64, 96) * 255
    with torch.no_grad():
        ref = model(x).numpy()
    got = runner(image=x.cuda())
    assert np.abs(got - ref).max() < 1e-2
    assert np.abs(runner(image=x.numpy()) - ref).max() < 1e-2


def test_onnxruntime_cpu_runs_without_io_binding(tmp_path):
    torch = pytest.importorskip("torch")
    from semcomp_core.inference.export import export_onnx
    from semcomp_core.inference.ort_backend import OrtRunner
    from semcomp_core.models import DDRNetSeg

    model = DDRNetSeg.tiny(num_classes=11).eval()
    path = tmp_path / "segmenter.onnx"
    export_onnx("segmenter", model, path)
    runner = OrtRunner("segmenter", path, "cpu")
    assert runner.cuda_index is None
    x = torch.rand(1, 3, 64, 96) * 255
    with torch.no_grad():
        assert np.abs(runner(image=x) - model(x).numpy()).max() < 1e-2


@pytest.mark.parametrize("codec,kinds", [("bpg-se", {"enhancer"}), ("gc", {"gc-encoder", "gc-decoder"})])
def test_other_shipped_codecs_export_with_parity(tmp_path, capsys, codec, kinds):
    """bpg-se's and gc's networks go through the same export path (ONNX, parity on a real frame)."""
    from semcomp_core.cli.main import main
    from semcomp_core.paths import WEIGHTS_DIR

    if not (WEIGHTS_DIR / "bpg_se" / "config.json").exists():
        pytest.skip("no shipped weights in this checkout")
    assert main(["export", "--codec", codec, "--out", str(tmp_path)]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    assert {r["network"] for r in rows} == kinds
    for r in rows:
        side = json.loads((tmp_path / f"{r['network']}.json").read_text())
        assert side["codec_config"]["codec"] == codec and side["source"] == "shipped"
        assert r["max_abs_error"] <= ex.TOLERANCE[r["network"]] and "bundled_frame" in r["checked"]
