"""What a video anchor's packet holds, for ``semcomp inspect``: the video codecs (h264, hevc, av1)
send their encoders' own packets, not semcomp containers (they are the stream anchors users compare
against, byte for byte). :func:`describe_packet` lists the units of such a packet -- Annex-B NAL
units of H.264 or HEVC, or AV1 OBUs (low-overhead format) -- with type, name, bytes and share.
Malformed packets raise BitstreamError.
"""
from __future__ import annotations

from ..errors import BitstreamError

H264_NAMES = {1: "slice", 5: "idr-slice", 6: "sei", 7: "sps", 8: "pps", 9: "aud", 12: "filler"}
HEVC_NAMES = {**{t: "slice" for t in range(10)}, 16: "bla-slice", 17: "bla-slice", 18: "bla-slice",
              19: "idr-slice", 20: "idr-slice", 21: "cra-slice", 32: "vps", 33: "sps", 34: "pps", 35: "aud",
              39: "prefix-sei", 40: "suffix-sei"}
AV1_NAMES = {1: "sequence-header", 2: "temporal-delimiter", 3: "frame-header", 4: "tile-group", 5: "metadata",
             6: "frame", 7: "redundant-frame-header", 8: "tile-list", 15: "padding"}


def annexb_units(data: bytes) -> list[tuple[int, int]]:
    """(start, end) byte ranges of the NAL units of an Annex-B byte stream, start codes excluded.

    BitstreamError when the data does not start with a start code."""
    if not (data.startswith(b"\x00\x00\x01") or data.startswith(b"\x00\x00\x00\x01")):
        raise BitstreamError("not an Annex-B byte stream (no start code at the start)")
    starts = []
    pos = data.find(b"\x00\x00\x01")
    while pos >= 0:
        starts.append(pos + 3)
        pos = data.find(b"\x00\x00\x01", pos + 3)
    units = []
    for i, start in enumerate(starts):
        end = starts[i + 1] - 3 if i + 1 < len(starts) else len(data)
        while i + 1 < len(starts) and end > start and data[end - 1] == 0:
            end -= 1  # the zero_byte of a 4-byte start code (and trailing_zero_8bits)
        units.append((start, end))
    return units


def read_leb128(data: bytes, pos: int) -> tuple[int, int]:
    """(value, new position) of the unsigned LEB128 at ``pos`` (AV1 OBU sizes, at most 8 bytes)."""
    value = 0
    for i in range(8):
        if pos + i >= len(data):
            raise BitstreamError("truncated OBU size")
        byte = data[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return value, pos + i + 1
    raise BitstreamError("OBU size longer than 8 bytes")


def av1_obus(data: bytes) -> list[tuple[int, int, int, int]]:
    """(OBU type, start, payload start, payload size) of every OBU of a low-overhead AV1 temporal unit
    (every OBU carries its size); BitstreamError on a forbidden bit, a missing size or a cut OBU."""
    out, pos = [], 0
    while pos < len(data):
        start, header = pos, data[pos]
        if header & 0x80:
            raise BitstreamError("OBU with forbidden bit set")
        if not header & 0x02:
            raise BitstreamError("OBU without a size field (not the low-overhead format)")
        pos += 2 if header & 0x04 else 1
        size, pos = read_leb128(data, pos)
        if pos + size > len(data):
            raise BitstreamError(f"truncated OBU: {size} bytes announced, {len(data) - pos} left")
        out.append(((header >> 3) & 0x0F, start, pos, size))
        pos += size
    return out


def sniff(data: bytes) -> str | None:
    """"h264", "hevc" or "av1" for a packet that looks like one, else None."""
    if data[:3] == b"\x00\x00\x01" or data[:4] == b"\x00\x00\x00\x01":
        s = 3 if data[:3] == b"\x00\x00\x01" else 4
        if len(data) > s + 1 and not data[s] & 0x80:
            hevc_type = (data[s] >> 1) & 0x3F
            if data[s + 1] == 0x01 and hevc_type in HEVC_NAMES:
                return "hevc"
            return "h264"
    if data[:1] and not data[0] & 0x80 and data[0] & 0x02 and ((data[0] >> 3) & 0x0F) == 2:
        return "av1"                                     # packets start with a temporal delimiter
    return None


def describe_packet(data: bytes, codec: str | None = None) -> dict:
    """The units of a video packet (``codec``: h264, hevc, av1, or None to recognise it)."""
    codec = codec or sniff(data)
    if codec in ("h264", "hevc"):
        names = H264_NAMES if codec == "h264" else HEVC_NAMES
        units = []
        for start, end in annexb_units(data):
            u = data[start:end]
            if not u:
                raise BitstreamError("empty NAL unit")
            if u[0] & 0x80:
                raise BitstreamError("NAL unit with the forbidden bit set")
            t = u[0] & 0x1F if codec == "h264" else (u[0] >> 1) & 0x3F
            units.append((t, names.get(t, f"type-{t}"), len(u)))
    elif codec == "av1":
        units = [(t, AV1_NAMES.get(t, f"type-{t}"), at + size - start) for t, start, at, size in av1_obus(data)]
    else:
        raise BitstreamError("wrong magic: not a semcomp container, nor an H.264/HEVC/AV1 packet")
    total = len(data)
    return {"format": f"{codec} packet", "codec": codec, "bytes": total,
            "framing_bytes": total - sum(n for _, _, n in units),
            "units": [{"type": t, "name": name, "bytes": n, "share": n / total} for t, name, n in units]}


def format_packet(d: dict) -> str:
    lines = [f"{d['codec']} packet (a video anchor's own bitstream, not a semcomp container): {d['bytes']} bytes, "
             f"{len(d['units'])} units; start codes / headers outside units: {d['framing_bytes']} bytes",
             f"{'type':>4}  {'unit':<24} {'bytes':>7} {'share':>7}"]
    for u in d["units"]:
        lines.append(f"{u['type']:>4}  {u['name']:<24} {u['bytes']:>7} {100 * u['share']:>6.1f}%")
    return "\n".join(lines)
