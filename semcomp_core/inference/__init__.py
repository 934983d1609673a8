"""One inference interface for every network semcomp runs (segmenters, generators, later diffusion).

A :class:`Runner` takes numpy feeds by input name and returns numpy outputs; the
backend behind it is chosen by name:

* ``torch`` -- the PyTorch module itself (channels-last on CPU/GPU);
* ``onnxruntime`` -- the network exported to ONNX (:mod:`semcomp_core.inference.export`,
  cached under ``SEMCOMP_CACHE`` / ``~/.cache/semcomp``), run by onnxruntime with
  the CPU or CUDA execution provider; the provider that really runs is checked
  and reported (no silent fall-back from CUDA to CPU).

* ``tensorrt`` -- engines built from the same exported ONNX with the TensorRT Python
  API (:mod:`semcomp_core.inference.trt_backend`: engine cache keyed by ONNX sha256,
  TensorRT version, GPU and compute capability, precision and profile); needs
  TensorRT and a CUDA GPU, refused with a clear message where they are missing.

Which inputs a network takes is declared once, in :data:`NETWORKS`, and used by
the export, the parity check and every backend, so adding a network or a backend
touches one place.
"""
from __future__ import annotations

from .base import BACKENDS, NETWORKS, NetworkSpec, Runner, make_runner

__all__ = ["BACKENDS", "NETWORKS", "NetworkSpec", "Runner", "make_runner"]
