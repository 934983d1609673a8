"""Neural models: constructor arguments are the config (saved as JSON beside safetensors weights).

Registry names: ``ddrnet-seg`` (segmentation encoder), ``unet-seg`` (independent
evaluation segmenter), ``spade-generator``
(conditional GAN decoder), ``multiscale-discriminator`` (training only), ``bpg-se-enhancer``
(bpg-se's enhancement network), ``gc-encoder`` / ``gc-decoder`` (gc's learned codec).
Each has a ``tiny()`` configuration that builds in milliseconds for tests.
Importing this package imports torch.
"""
from .discriminator import MultiScaleDiscriminator
from .enhancer import Enhancer
from .gc import GcDecoder, GcEncoder
from .generator import SPADEGenerator, remove_spectral_norm
from .clip_tower import ClipTower
from .ldm import LatentUnet, LatentVae
from .io import MODELS, load_model, read_config, register_model, save_model
from .segmenter import DDRNetSeg
from .unet_seg import UNetSeg

__all__ = ["MODELS", "ClipTower", "DDRNetSeg", "Enhancer", "GcDecoder", "GcEncoder", "LatentUnet", "LatentVae", "MultiScaleDiscriminator", "UNetSeg", "SPADEGenerator", "load_model", "read_config",
           "register_model", "remove_spectral_norm", "save_model"]
