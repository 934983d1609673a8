"""10,000 mutated or truncated containers: each decodes or raises BitstreamError; memory stays bounded."""
import resource

import numpy as np
import pytest

from semcomp_core import codecs
from semcomp_core.bitstream import pack, unpack
from semcomp_core.errors import BitstreamError

N_CASES = 10_000


def _seeds(image):
    small = np.ascontiguousarray(image[::6, ::6])  # 60x80 keeps 10k decodes fast
    specs = ["jpeg:quality=10", "webp:quality=10"]
    if "bpg" in codecs.available():
        specs.append("bpg:q=45")
    return [codecs.create(s).encode(small) for s in specs]


def _mutate(rng, data: bytes) -> bytes:
    b = bytearray(data)
    op = rng.integers(7)
    if op == 0:                                   # truncate
        return bytes(b[: rng.integers(len(b))])
    if op == 1:                                   # flip bits
        for _ in range(rng.integers(1, 4)):
            i = rng.integers(len(b))
            b[i] ^= 1 << rng.integers(8)
        return bytes(b)
    if op == 2:                                   # random bytes in the header
        i = rng.integers(min(len(b), 16))
        b[i] = rng.integers(256)
        return bytes(b)
    if op == 3:                                   # insert / delete a run
        i = rng.integers(len(b))
        if rng.integers(2):
            return bytes(b[:i] + rng.integers(0, 256, rng.integers(1, 9)).astype(np.uint8).tobytes() + b[i:])
        return bytes(b[:i] + b[i + rng.integers(1, 9):])
    # ops 4-6: mutate a layer's payload and repack (valid checks), so payload parsers see the damage
    c = unpack(data)
    layers = [(lid, bytearray(p)) for lid, p in c.layers]
    k = rng.integers(len(layers))
    body = layers[k][1]
    if not body:
        return data
    j = rng.integers(len(body))
    if op == 4:
        body[j] = rng.integers(256)
    elif op == 5:
        del body[max(1, j):]
    else:
        lo = rng.integers(0, max(1, len(body) - 1))
        body[lo:lo + 8] = rng.integers(0, 256, 8).astype(np.uint8).tobytes()
    return pack(c.codec_id, c.height, c.width, [(lid, bytes(p)) for lid, p in layers])


def fuzz_codec(codec, data: bytes, n: int, seed: int) -> dict:
    """``n`` mutations of ``data`` through ``codec.decode``: each decodes to the header's frame or raises
    BitstreamError with a message; returns the counts."""
    rng = np.random.default_rng(seed)
    seen = {"decoded": 0, "rejected": 0}
    for _ in range(n):
        bad = _mutate(rng, data)
        try:
            out = codec.decode(bad)
        except BitstreamError as exc:
            assert str(exc), "error message must name the problem"
            seen["rejected"] += 1
            continue
        c = unpack(bad)
        assert out.shape == (c.height, c.width, 3) and out.dtype == np.uint8
        seen["decoded"] += 1
    return seen


def test_mutated_containers_decode_or_raise_documented_error(sample_image):
    seeds = _seeds(sample_image)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    outcomes = {"decoded": 0, "rejected": 0}
    for j, data in enumerate(seeds):
        for k, v in fuzz_codec(codecs, data, N_CASES // len(seeds), seed=12345 + j).items():
            outcomes[k] += v
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    assert outcomes["rejected"] > N_CASES // 2
    assert outcomes["decoded"] + outcomes["rejected"] == N_CASES // len(seeds) * len(seeds)
    assert grown_mb < 300, f"peak memory grew by {grown_mb:.0f} MB"


@pytest.mark.parametrize("junk", [b"", b"\x00" * 64, b"SC" + b"\xff" * 100, bytes(range(256))])
def test_junk_is_rejected(junk):
    with pytest.raises(BitstreamError):
        codecs.decode(junk)


def test_mutated_layered_semantic_containers_decode_or_raise(sample_image):
    """The same on a semantic container with every layer group (seg map, colour map, structure, ROI):
    cuts, flips and repacked payload damage reach the structure and ROI parsers too."""
    small = np.ascontiguousarray(sample_image[::3, ::3])          # 160x120
    h, w = small.shape[:2]
    seed = codecs.create(f"semantic-gan:structure=m:roi=user:roi_boxes=0,0,{w // 2},{h // 2}:budget=600")
    data = seed.encode(small)
    assert [lid for lid, _ in unpack(data).layers] == [6, 1, 2, 4, 5]
    rng = np.random.default_rng(99)
    outcomes = {"decoded": 0, "rejected": 0}
    for _ in range(300):
        bad = _mutate(rng, data)
        try:
            out = seed.decode(bad)
        except BitstreamError as exc:
            assert str(exc)
            outcomes["rejected"] += 1
            continue
        assert out.shape == (h, w, 3) and out.dtype == np.uint8
        outcomes["decoded"] += 1
    assert outcomes["rejected"] > 100 and outcomes["decoded"] > 0
