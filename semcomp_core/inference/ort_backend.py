"""The onnxruntime backend: CPU or CUDA execution provider, checked, never a silent fall-back."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import UsageError
from .base import Runner


def _threads() -> int:
    try:
        return int(os.environ.get("OMP_NUM_THREADS", "0"))
    except ValueError:
        return 0


class OrtRunner(Runner):
    backend = "onnxruntime"

    def __init__(self, kind: str, onnx_path: str | Path, device: str = "cpu") -> None:
        super().__init__(kind)
        try:
            import onnxruntime as ort
        except ImportError:
            raise UsageError("backend onnxruntime needs the onnxruntime package (pip install onnxruntime, "
                             "or onnxruntime-gpu for CUDA)") from None
        want = "CUDAExecutionProvider" if device.startswith("cuda") else "CPUExecutionProvider"
        if want not in ort.get_available_providers():
            raise UsageError(f"onnxruntime {ort.__version__} has no {want} here "
                             f"(available: {', '.join(ort.get_available_providers())})")
        options = ort.SessionOptions()
        options.intra_op_num_threads = _threads()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers: list = [want]
        if want == "CUDAExecutionProvider":
            index = int(device.split(":")[1]) if ":" in device else 0
            providers = [(want, {"device_id": index})]
        try:
            self.session = ort.InferenceSession(str(onnx_path), options, providers=providers)
        except Exception as exc:  # noqa: BLE001 -- a corrupt file or a provider that fails to load
            raise UsageError(f"onnxruntime cannot load {onnx_path}: {exc}") from None
        ran = self.session.get_providers()[0]
        if ran != want:  # onnxruntime falls back to CPU silently when a GPU provider fails to load
            raise UsageError(f"onnxruntime fell back to {ran} instead of {want} for {onnx_path}")
        self._version = ort.__version__
        self.path = Path(onnx_path)
        #: CUDA device index when running on the CUDA provider (inputs and outputs then go through IOBinding)
        self.cuda_index = (int(device.split(":")[1]) if ":" in device else 0) if ran == "CUDAExecutionProvider" \
            else None

    @property
    def provider(self) -> str:
        return f"onnxruntime {self._version} {self.session.get_providers()[0]}"

    def run(self, feeds: dict) -> np.ndarray:
        if self.cuda_index is not None:
            return self._run_bound(feeds)
        arrays = {n: np.ascontiguousarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v, dtype=np.float32)
                  for n, v in feeds.items()}
        return self.session.run([self.spec.output], arrays)[0]

    def _run_bound(self, feeds: dict) -> np.ndarray:
        """CUDA: IOBinding -- torch CUDA tensors are bound in place (no host round trip), numpy inputs
        are copied once, and the output is allocated on the GPU by onnxruntime."""
        binding = self.session.io_binding()
        keep = []                                   # tensors whose memory the binding points at
        for name, value in feeds.items():
            if hasattr(value, "is_cuda") and value.is_cuda:
                t = value.detach().float().contiguous()
                keep.append(t)
                binding.bind_input(name, "cuda", t.device.index or 0, np.float32, tuple(t.shape), t.data_ptr())
            else:
                arr = value.detach().cpu().numpy() if hasattr(value, "detach") else value
                binding.bind_cpu_input(name, np.ascontiguousarray(arr, dtype=np.float32))
        binding.bind_output(self.spec.output, "cuda", self.cuda_index)
        self.session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()[0]
