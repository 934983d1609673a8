"""Metrics for the benchmark and the ROS nodes.

* rate: :func:`bits_per_pixel` (8 x container bytes / pixels)
* fidelity: :func:`psnr`, :func:`ms_ssim` (torch imported lazily); identical frames count at
  :data:`PSNR_CAP_DB` in means (:func:`psnr_for_mean`)
* semantics: :func:`confusion_matrix`, :func:`iou_per_class`, :func:`mean_iou`,
  :func:`pixel_accuracy`, :class:`ConfusionAccumulator`,
  :class:`SemanticPreservation` (segmenter on original vs reconstruction)
* structure: :func:`edge_f_score` (fixed Canny detector, matches within 2 px: how much of the
  original's edges -- lane markings, kerbs, outlines -- a reconstruction keeps)
* texture (no reference): :func:`texture` (mean |Laplacian| of the luma: fine detail, sharpness)
* perception (optional, offline only): :func:`lpips_available`, :func:`lpips_distance`

Importing this package imports neither torch nor any model.
"""
from ..bitstream.container import bits_per_pixel
from .edges import EdgeScore, edge_f_score, edge_map
from .image_quality import PSNR_CAP_DB, ms_ssim, psnr, psnr_for_mean
from .lpips_metric import lpips_available, lpips_distance
from .texture import texture
from .segmentation import (
    ConfusionAccumulator,
    SegmentationCache,
    SemanticPreservation,
    confusion_matrix,
    iou_per_class,
    mean_iou,
    pixel_accuracy,
)

__all__ = [
    "texture",
    "EdgeScore",
    "edge_f_score",
    "edge_map",
    "bits_per_pixel",
    "psnr",
    "psnr_for_mean",
    "PSNR_CAP_DB",
    "ms_ssim",
    "confusion_matrix",
    "iou_per_class",
    "mean_iou",
    "pixel_accuracy",
    "ConfusionAccumulator",
    "SegmentationCache",
    "SemanticPreservation",
    "lpips_available",
    "lpips_distance",
]
