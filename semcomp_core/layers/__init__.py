"""Semantic layers behind one registry (names -> Layer classes, fixed layer ids)."""
from .base import LAYERS, Layer, register_layer
from .clip import ClipLayer
from .colormap import ColorMapLayer
from .colormap_delta import ColorMapDeltaLayer
from .decoder_params import DecoderParams, DecoderParamsLayer, label_table_id
from .enhance_params import EnhanceParams, EnhanceParamsLayer
from .frame_info import FrameHeader, FrameInfoLayer
from .latent import LatentLayer
from .scale import downscale_labels, map_shape, thumbnail, upscale_labels, upscale_thumbnail
from .roi import RoiData, RoiLayer, RoiMaskRule
from .segmap import SegMapLayer
from .segmap_inter import SegMapInterLayer
from .structure import StructureLayer

__all__ = [
    "LAYERS", "Layer", "register_layer", "ClipLayer", "EnhanceParams", "EnhanceParamsLayer", "LatentLayer",
    "ColorMapLayer", "ColorMapDeltaLayer", "FrameHeader",
    "FrameInfoLayer", "SegMapInterLayer", "StructureLayer", "RoiData", "RoiLayer", "RoiMaskRule",
    "DecoderParams", "DecoderParamsLayer", "SegMapLayer", "label_table_id", "downscale_labels", "map_shape",
    "thumbnail", "upscale_labels", "upscale_thumbnail"
]
