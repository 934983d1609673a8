"""Fixed numeric identifiers written into the bitstream.

These numbers are part of the file format: they are assigned by hand, never
derived from registration or import order, and never reused. Add new ids at
the end of a table; retire old ones by leaving them in place with a comment.
"""
from __future__ import annotations

from enum import IntEnum


class CodecId(IntEnum):
    """Which codec produced a container (one byte, 1..255; 0 is invalid)."""

    JPEG = 1            #: payload layer IMAGE holds a baseline JPEG file
    WEBP = 2            #: payload layer IMAGE holds a lossy WebP file
    BPG_FILE = 3        #: payload layer IMAGE holds a .bpg file written by bpgenc
    HEVC_INTRA = 4      #: payload layer IMAGE holds HEVC intra NAL units (x265, BPG equivalent)
    BPG_SE = 5          #: HEVC intra base picture + seg map, enhanced by a network at the receiver (codecs.bpg_se)
    GC = 6              #: learned latent, entropy coded with a learned prior, decoded by a GAN (codecs.gc)
    SEMANTIC_GAN = 16   #: seg-map + colour-map layers, decoded by a conditional GAN
    SEMANTIC_MAP = 17   #: seg-map + colour-map layers, decoded by painting class colours (no model)
    CLIP = 18           #: CLIP image embedding + colour map [+ seg map] (CoCliCo), rendered by diffusion (codecs.clip)


class LayerId(IntEnum):
    """Type of one layer in a container (one byte, 1..255; 0 is invalid)."""

    SEGMAP = 1          #: lossless label map at reduced scale (semcomp_core.layers.segmap)
    COLORMAP = 2        #: tiny quantised colour thumbnail (semcomp_core.layers.colormap)
    CLIP = 3            #: product-quantised CLIP image embedding + the quantiser's tag (layers.clip)
    STRUCTURE = 4       #: binary edge map on the structure grid, context-coded (layers.structure)
    ROI = 5             #: region of interest: cell mask + HEVC intra pixels, or the classic fallback (layers.roi)
    DECODER_PARAMS = 6  #: what the receiver must use: label-table id + generator seed (layers.decoder_params)
    FRAME_INFO = 7      #: stream frame header: key/inter, stream tag, sequence number, reference (layers.frame_info)
    SEGMAP_INTER = 8    #: label map coded against the reference frame's map (layers.segmap_inter)
    COLORMAP_DELTA = 9  #: colour map coded as a delta to the reference's (layers.colormap_delta)
    ENHANCE_PARAMS = 10  #: label-table id + base-layer quantiser for a receiver's enhancement (layers.enhance_params)
    LATENT = 11         #: learned latent: channels sent, model tag, range-coded symbols (layers.latent)
    IMAGE = 16          #: a classically coded image, format given by the codec id


KNOWN_CODEC_IDS = frozenset(int(c) for c in CodecId)
KNOWN_LAYER_IDS = frozenset(int(x) for x in LayerId)
