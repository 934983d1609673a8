"""The ``bpg`` baseline: BPG (HEVC intra) through bpgenc, or an x265 equivalent.

Two implementations, chosen by ``impl``:

* ``bpgenc`` -- the real ``bpgenc``/``bpgdec`` programs, found on PATH or
  given by the environment variables ``SEMCOMP_BPGENC`` / ``SEMCOMP_BPGDEC``.
  The container's codec id is ``BPG_FILE`` and its IMAGE layer is the .bpg
  file, byte for byte.
* ``x265`` -- HEVC intra coding with the x265 encoder that ships inside
  pillow-heif (libheif), set up like bpgenc: one intra picture, 8 bits,
  4:2:0 by default, constant QP equal to ``q`` (x265 ``qp=q`` with
  ``ipratio=1`` so the I slice really gets QP ``q``; no adaptive
  quantisation, no psycho-visual tuning, as in the HM encoder bpgenc uses by
  default), and the x265 preset that bpgenc's own x265 back end picks for
  ``-m`` (``-m 8``, the default, is ``placebo``). The container's codec id
  is ``HEVC_INTRA``.
  Only the HEVC NAL units are sent, not the HEIF file libheif wraps them in;
  the decoder rebuilds a minimal HEIF file (its boxes are implied, not sent)
  and decodes it with libheif + libde265.

``impl=auto`` (the default) uses bpgenc when it is configured or on PATH and
x265 otherwise. A container of either codec id decodes with a default
``bpg`` codec, whatever ``impl`` wrote it.

HEVC_INTRA payload (the IMAGE layer), byte by byte -- there is no header of
its own, everything the decoder needs is in the SPS::

    repeat until the payload ends:
      1-3  n: length of the next NAL unit in bytes, unsigned LEB128 varint
           (as in the container: minimal, at most 3 bytes), n >= 3
      n    one HEVC NAL unit (H.265 7.3.1): 2-byte NAL unit header, then the
           RBSP with its emulation-prevention bytes; no start code

    NAL units, in this order:
      VPS (type 32), SPS (type 33), PPS (type 34), one each, then one or more
      units that are each an intra slice segment (types 16..21, x265 writes
      20 = IDR_N_LP) or an SEI message (39, 40), at least one slice.
      All have nuh_layer_id 0 and TemporalId 0.

    The SPS must say: chroma_format_idc 1 (4:2:0) or 3 (4:4:4), no separate
    colour planes, 8-bit luma and chroma; its conformance window crops only
    at the right and bottom, by fewer than 64 luma samples, to exactly the
    container's width x height rounded up to the chroma grid (to even sizes
    for 4:2:0). The decoder drops that last odd column/row. (libheif pads
    the picture to even sizes of at least 64 and crops with a HEIF ``clap``
    box; the encoder moves that crop into the SPS instead.)

    Colour (fixed, not sent): RGB <-> Y'CbCr with the BT.601 matrix at full
    range, as bpgenc does by default, and libheif's sRGB defaults for the
    rest -- nclx (primaries 1, transfer 13, matrix 6, full range).

The sample 480x360 CamVid frame at q=51: 1+24 (VPS) + 1+44 (SPS) + 1+6 (PPS)
+ 2+500 (slice) = 579 payload bytes, 595 with the container's framing; the
HEIF file libheif wrote for it was 882 bytes.

Decoding checks the NAL structure and the SPS size against the container
header before anything is decoded, and turns every failure of libheif or of
bpgdec into :class:`~semcomp_core.errors.BitstreamError`.
"""
from __future__ import annotations

import functools
import io
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from ..bitstream import CodecId, Container, LayerId
from ..errors import BitstreamError, UsageError
from . import hevc_nal, register_codec
from .base import Codec, Param

#: nclx colour description (primaries, transfer, matrix, full range) used both ways
NCLX = (1, 13, 6, 1)
#: x265 presets by index, as bpgenc's x265_glue.c maps ``-m`` onto them
X265_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
                "veryslow", "placebo")
#: the transform quadtree depth of the slow x265 presets (1 for the others)
X265_TU_DEPTH = {"slower": 2, "veryslow": 3, "placebo": 4}
#: seconds a bpgenc/bpgdec run may take
TOOL_TIMEOUT_S = 300
ENV_BPGENC = "SEMCOMP_BPGENC"
ENV_BPGDEC = "SEMCOMP_BPGDEC"
BPG_MAGIC = b"BPG\xfb"


# -- external tools (bpgenc / bpgdec) --------------------------------------------------------

def find_tool(name: str, env_var: str) -> tuple[str | None, str]:
    """Locate a tool: ``$env_var`` if set, else ``name`` on PATH.

    Returns ``(path, "")`` or ``(None, why)``; a set but unusable variable is
    reported, never silently skipped.
    """
    configured = os.environ.get(env_var, "").strip()
    if configured:
        path = shutil.which(configured)
        if path is None:
            return None, f"{env_var}={configured!r} is not an executable file"
        return path, ""
    path = shutil.which(name)
    if path is None:
        return None, f"{name} not found on PATH (install libbpg or set {env_var})"
    return path, ""


def run_tool(args: list[str], error: type[Exception], what: str) -> None:
    """Run a tool (no shell); raise ``error`` naming it on a start failure, timeout or exit status."""
    try:
        proc = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=TOOL_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise error(f"{what}: {args[0]} did not finish within {TOOL_TIMEOUT_S} s") from None
    except OSError as exc:
        raise error(f"{what}: cannot run {args[0]}: {exc}") from None
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).decode("utf-8", "replace").strip()[-500:]
        raise error(f"{what}: {args[0]} failed with exit status {proc.returncode}"
                    + (f": {detail}" if detail else ""))


@functools.lru_cache(maxsize=8)
def bpgenc_version(path: str) -> str:
    """The version ``bpgenc -h`` prints (it exits with status 1), or "?"."""
    try:
        proc = subprocess.run([path, "-h"], stdin=subprocess.DEVNULL, capture_output=True, timeout=10,
                              check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    match = re.search(rb"version\s+([0-9][\w.]*)", proc.stdout + proc.stderr)
    return match.group(1).decode() if match else "?"


def _read_ue7(data: bytes, pos: int, what: str) -> tuple[int, int]:
    """BPG's ue7(32): big-endian base-128 integer, high bit = more bytes follow."""
    value = 0
    for i in range(5):
        if pos + i >= len(data):
            raise BitstreamError(f"truncated BPG header: {what}")
        byte = data[pos + i]
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            if value >= 1 << 32:
                raise BitstreamError(f"BPG header: {what} does not fit 32 bits")
            return value, pos + i + 1
    raise BitstreamError(f"BPG header: {what} longer than 5 bytes")


def bpg_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a .bpg file header; BitstreamError if it is not one."""
    if data[:4] != BPG_MAGIC:
        raise BitstreamError("not a BPG file (wrong magic)")
    if len(data) < 6:
        raise BitstreamError("truncated BPG header")
    width, pos = _read_ue7(data, 6, "picture_width")
    height, _ = _read_ue7(data, pos, "picture_height")
    if width < 1 or height < 1:
        raise BitstreamError(f"BPG header: empty picture {width}x{height}")
    return width, height


def bpgenc_encode(tool: str, image: np.ndarray, q: int, chroma: str, level: int) -> bytes:
    """Encode with bpgenc (8 bits, given -q, -f and -m); UsageError when it fails."""
    with tempfile.TemporaryDirectory(prefix="semcomp-bpg-") as tmp:
        src, dst = Path(tmp) / "in.png", Path(tmp) / "out.bpg"
        Image.fromarray(image).save(src, format="PNG", compress_level=1)
        run_tool([tool, "-q", str(q), "-f", chroma, "-m", str(level), "-b", "8", "-o", str(dst), str(src)],
                 UsageError, "bpg encode")
        if not dst.is_file():
            raise UsageError(f"bpg encode: {tool} exited 0 but wrote no {dst.name}")
        data = dst.read_bytes()
    try:
        size = bpg_size(data)
    except BitstreamError as exc:
        raise UsageError(f"bpg encode: {tool} wrote an unreadable file: {exc}") from None
    if size != (image.shape[1], image.shape[0]):
        raise UsageError(f"bpg encode: {tool} wrote a {size[0]}x{size[1]} picture for a "
                         f"{image.shape[1]}x{image.shape[0]} image")
    return data


def bpgdec_decode(payload: bytes, height: int, width: int) -> np.ndarray:
    """Decode a .bpg payload with bpgdec after checking its size; BitstreamError on failure."""
    size = bpg_size(payload)
    if size != (width, height):
        raise BitstreamError(f"BPG picture is {size[0]}x{size[1]}, header says {width}x{height}")
    tool, why = find_tool("bpgdec", ENV_BPGDEC)
    if tool is None:
        raise BitstreamError(f"cannot decode codec id {int(CodecId.BPG_FILE)} (BPG file): {why}")
    with tempfile.TemporaryDirectory(prefix="semcomp-bpg-") as tmp:
        src, dst = Path(tmp) / "in.bpg", Path(tmp) / "out.ppm"
        src.write_bytes(payload)
        run_tool([tool, "-o", str(dst), str(src)], BitstreamError, "bpg decode")
        try:
            with Image.open(dst, formats=["PPM"]) as im:
                if im.size != (width, height):
                    raise BitstreamError(
                        f"bpgdec wrote {im.size[0]}x{im.size[1]}, header says {width}x{height}")
                return np.array(im.convert("RGB"), dtype=np.uint8)
        except BitstreamError:
            raise
        except Exception as exc:
            raise BitstreamError(
                f"bpg decode: unreadable bpgdec output: {type(exc).__name__}: {exc}") from None


# -- x265 through pillow-heif ------------------------------------------------------------------

def x265_preset(level: int) -> str:
    """The x265 preset bpgenc uses for ``-m level`` (8 and 9: placebo)."""
    return X265_PRESETS[9 if level >= 8 else max(level, 1) + 1]


def x265_params(q: int, chroma: str, level: int, width: int, height: int) -> dict[str, str]:
    """libheif encoder parameters for constant-QP intra coding like bpgenc.

    libheif overrides the preset's intra transform depth with its own default
    (2), so the preset's value is set again; pictures under 32 pixels get
    16x16 CTUs from libheif, where x265 allows a transform depth of 3 at most.
    """
    preset = x265_preset(level)
    tu_depth = min(X265_TU_DEPTH.get(preset, 1), 3 if min(width, height) < 32 else 4)
    return {
        "preset": preset,
        "chroma": chroma,
        "tu-intra-depth": str(tu_depth),
        "x265:tu-inter-depth": str(tu_depth),
        "x265:qp": str(q),          # constant QP rate control (x265 switches to CQP)
        "x265:ipratio": "1",        # ... and no I-frame QP offset: the slice QP is q
        "x265:aq-mode": "0",        # the same QP in every coding unit
        "x265:psy-rd": "0",
        "x265:psy-rdoq": "0",
    }


def _pillow_heif():
    try:
        import pillow_heif
    except ImportError as exc:  # pragma: no cover - pillow-heif is a dependency
        raise UsageError(f"bpg with impl=x265 needs pillow-heif: {exc}") from None
    return pillow_heif


def x265_version() -> str:
    """The x265 version inside pillow-heif's libheif; UsageError if x265 is not its HEVC encoder."""
    pillow_heif = _pillow_heif()
    info = pillow_heif.libheif_info()
    name = pillow_heif.options.PREFERRED_ENCODER.get("HEIF") or ""
    description = info.get("encoders", {}).get("x265", "")
    if not description or name not in ("", "x265") or not info.get("HEIF", "").startswith("x265"):
        raise UsageError(f"bpg impl=x265: libheif {info.get('libheif')} has no x265 HEVC encoder in use "
                         f"(HEIF encoder: {info.get('HEIF')!r})")
    match = re.search(r"\((\d+(?:\.\d+)*)", description)
    return match.group(1) if match else description


def x265_encode_heif(image: np.ndarray, q: int, chroma: str, level: int) -> bytes:
    """The HEIF file pillow-heif writes for ``image`` with :func:`x265_params`."""
    pillow_heif = _pillow_heif()
    x265_version()
    height, width = image.shape[:2]
    buf = io.BytesIO()
    primaries, transfer, matrix, full_range = NCLX
    try:
        heif = pillow_heif.from_bytes("RGB", (width, height), image.tobytes())
        heif.save(buf, quality=50, enc_params=x265_params(q, chroma, level, width, height), tile_size=0,
                  save_nclx_profile=True, color_primaries=primaries, transfer_characteristics=transfer,
                  matrix_coefficients=matrix, full_range_flag=full_range, exif=None, xmp=None)
    except Exception as exc:
        raise UsageError(f"bpg impl=x265: encoding a {width}x{height} image failed: {exc}") from None
    return buf.getvalue()


def heif_to_payload(heif: bytes, height: int, width: int) -> bytes:
    """The HEVC_INTRA payload for a HEIF file libheif wrote for a width x height image.

    Takes the parameter sets from hvcC and the slices from the item data,
    moves libheif's padding crop into the SPS conformance window, and checks
    the result as the decoder will. RuntimeError if libheif wrote something
    unexpected.
    """
    try:
        item = hevc_nal.extract_heif_hevc(heif)
        unexpected = set(item.properties) - {b"hvcC", b"ispe", b"colr", b"pixi", b"clap"}
        if unexpected:
            raise BitstreamError(f"unexpected item properties {sorted(unexpected)}")
        if item.nclx not in (None, NCLX):
            raise BitstreamError(f"colour description {item.nclx}, expected {NCLX}")
        params, length_size = hevc_nal.hvcc_nal_units(item.hvcc)
        nals = params + hevc_nal.split_length_prefixed(item.data, length_size)
        nals = _crop_sps_to(nals, height, width)
        payload = hevc_nal.pack_nals(nals)
        check_payload(payload, height, width)
    except BitstreamError as exc:
        raise RuntimeError(f"bpg impl=x265: cannot use libheif's output: {exc}") from None
    return payload


def _crop_sps_to(nals: list[bytes], height: int, width: int) -> list[bytes]:
    """Replace the SPS by one whose conformance window crops to the image size."""
    out = []
    for nal in nals:
        if hevc_nal.nal_type(nal) == hevc_nal.NAL_SPS:
            sps = hevc_nal.parse_sps(nal)
            want_w, want_h = hevc_nal.output_size(width, height, sps.chroma_format_idc)
            sub_w, sub_h = sps.sub_width_height
            if sps.conf_window[0] or sps.conf_window[2] or sps.pic_width < want_w or sps.pic_height < want_h:
                raise BitstreamError(f"cannot crop a {sps.pic_width}x{sps.pic_height} SPS with window "
                                     f"{sps.conf_window} to {want_w}x{want_h}")
            nal = hevc_nal.set_conformance_window(nal, (sps.pic_width - want_w) // sub_w,
                                                  (sps.pic_height - want_h) // sub_h)
        out.append(nal)
    return out


def check_payload(payload: bytes, height: int, width: int) -> tuple[list[bytes], hevc_nal.SpsInfo]:
    """Parse a HEVC_INTRA payload strictly; return its NAL units and SPS.

    BitstreamError unless the NAL sequence is well formed and the SPS is
    8-bit 4:2:0 or 4:4:4 and describes exactly a width x height image.
    """
    nals = hevc_nal.unpack_nals(payload)
    sps = hevc_nal.parse_sps(nals[1])
    if sps.chroma_format_idc not in (1, 3):
        raise BitstreamError(f"SPS: chroma_format_idc {sps.chroma_format_idc}, need 1 (4:2:0) or 3 (4:4:4)")
    if (sps.bit_depth_luma, sps.bit_depth_chroma) != (8, 8):
        raise BitstreamError(f"SPS: bit depth {sps.bit_depth_luma}/{sps.bit_depth_chroma}, need 8")
    hevc_nal.check_sps_size(sps, width, height)
    return nals, sps


def x265_decode(payload: bytes, height: int, width: int) -> np.ndarray:
    """Decode a HEVC_INTRA payload through a rebuilt HEIF file; BitstreamError on any failure."""
    nals, sps = check_payload(payload, height, width)
    heif = hevc_nal.build_heif(nals, sps, NCLX)
    try:
        pillow_heif = _pillow_heif()
        heif_file = pillow_heif.open_heif(io.BytesIO(heif), convert_hdr_to_8bit=True)
        if heif_file.size != (sps.width, sps.height) or heif_file.mode != "RGB":
            raise BitstreamError(f"libheif reports a {heif_file.mode} image of {heif_file.size}, "
                                 f"the SPS says {sps.width}x{sps.height}")
        arr = np.asarray(heif_file)
        if arr.shape != (sps.height, sps.width, 3) or arr.dtype != np.uint8:
            raise BitstreamError(f"libheif decoded an array of shape {arr.shape}, dtype {arr.dtype}")
        return np.ascontiguousarray(arr[:height, :width])
    except BitstreamError:
        raise
    except Exception as exc:  # libheif/libde265 errors arrive as several Python types
        raise BitstreamError(f"corrupt HEVC payload: {type(exc).__name__}: {exc}") from None


# -- the codec ---------------------------------------------------------------------------------

@register_codec
class BpgCodec(Codec):
    name = "bpg"
    summary = "BPG (HEVC intra): bpgenc/bpgdec if installed, else x265 in pillow-heif, NAL units counted"
    codec_ids = (CodecId.BPG_FILE, CodecId.HEVC_INTRA)
    quality_param = "q"
    params = {
        "q": Param(int, 51, "quantiser 0..51 (bpgenc -q, the HEVC QP); higher = smaller", low=0, high=51),
        "impl": Param(str, "auto", "bpgenc, x265 (pillow-heif), or auto: bpgenc if found",
                      choices=("auto", "bpgenc", "x265")),
        "chroma": Param(str, "420", "chroma format (bpgenc -f)", choices=("420", "444")),
        "m": Param(int, 8, "compression effort 1..9 (bpgenc -m; x265 preset as bpgenc picks it)",
                   low=1, high=9),
    }

    def _bpgenc(self) -> str | None:
        """The bpgenc path to use, or None for x265; UsageError if bpgenc is required but unusable."""
        impl = self.config["impl"]
        if impl == "x265":
            return None
        tool, why = find_tool("bpgenc", ENV_BPGENC)
        if tool is None and (impl == "bpgenc" or os.environ.get(ENV_BPGENC, "").strip()):
            raise UsageError(f"bpg impl={impl}: {why}")
        return tool

    @property
    def implementation(self) -> str:
        try:
            tool = self._bpgenc()
            if tool is not None:
                return f"bpgenc {bpgenc_version(tool)} ({tool})"
            pillow_heif = _pillow_heif()
            return (f"x265 {x265_version()} via libheif {pillow_heif.libheif_version()} "
                    f"(pillow-heif {pillow_heif.__version__}), HEVC payload counted")
        except UsageError as exc:
            return f"unavailable: {exc}"

    def encode_layers(self, image: np.ndarray) -> tuple[int, list[tuple[int, bytes]]]:
        q, chroma, level = self.config["q"], self.config["chroma"], self.config["m"]
        tool = self._bpgenc()
        if tool is not None:
            return CodecId.BPG_FILE, [(LayerId.IMAGE, bpgenc_encode(tool, image, q, chroma, level))]
        heif = x265_encode_heif(image, q, chroma, level)
        payload = heif_to_payload(heif, image.shape[0], image.shape[1])
        return CodecId.HEVC_INTRA, [(LayerId.IMAGE, payload)]

    def decode_container(self, container: Container) -> np.ndarray:
        payload = container.layer(LayerId.IMAGE)
        if container.codec_id == CodecId.BPG_FILE:
            return bpgdec_decode(payload, container.height, container.width)
        return x265_decode(payload, container.height, container.width)
