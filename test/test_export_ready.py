"""The networks stay exportable: tiny models go through ONNX (opset 17) and match in onnxruntime.

(The export tooling itself, incl. TensorRT, lives in export/ and comes with its own issue; this guards
the forward passes against data-dependent control flow and unsupported ops meanwhile.)
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from semcomp_core.models import DDRNetSeg, SPADEGenerator  # noqa: E402


def _export(model, inputs, names, path):
    torch.onnx.export(model, inputs, str(path), input_names=names, output_names=["out"], opset_version=17,
                      dynamo=False, dynamic_axes={n: {2: f"h{i}", 3: f"w{i}"} for i, n in enumerate(names)})
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_segmenter_onnx_parity(tmp_path):
    torch.manual_seed(0)
    m = DDRNetSeg.tiny(num_classes=5).eval()
    x = torch.rand(1, 3, 64, 96) * 255
    sess = _export(m, (x,), ["image"], tmp_path / "seg.onnx")
    x2 = torch.rand(1, 3, 96, 128) * 255  # another size through the same graph
    for inp in (x, x2):
        ref = m(inp).detach().numpy()
        out = sess.run(None, {"image": inp.numpy()})[0]
        np.testing.assert_allclose(out, ref, atol=1e-4, rtol=1e-4)


def test_generator_onnx_parity(tmp_path):
    torch.manual_seed(0)
    g = SPADEGenerator.tiny(num_classes=4).eval()
    oh = torch.zeros(1, 4, 48, 64)
    oh[:, 2, :, 20:] = 1
    col = torch.rand(1, 3, 48, 64) * 2 - 1
    noise = torch.randn(1, 2, 6, 8)
    sess = _export(g, (oh, col, noise), ["onehot", "color", "noise"], tmp_path / "gen.onnx")
    out = sess.run(None, {"onehot": oh.numpy(), "color": col.numpy(), "noise": noise.numpy()})[0]
    np.testing.assert_allclose(out, g(oh, col, noise).detach().numpy(), atol=1e-5)
