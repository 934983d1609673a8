"""10,000 mutated or truncated containers: each decodes or raises BitstreamError; memory stays bounded."""
import resource
import zlib

import numpy as np
import pytest

from semcomp_core import codecs
from semcomp_core.bitstream import unpack
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
    # ops 4-6: mutate the body and fix the CRC, so payload parsers see the damage
    body = b[:-4]
    j = rng.integers(len(body))
    if op == 4:
        body[j] = rng.integers(256)
    elif op == 5:
        body = body[: max(1, j)]
    else:
        lo = rng.integers(8, max(9, len(body) - 1))
        body[lo:lo + 8] = rng.integers(0, 256, 8).astype(np.uint8).tobytes()
    return bytes(body) + zlib.crc32(body).to_bytes(4, "big")


def test_mutated_containers_decode_or_raise_documented_error(sample_image):
    rng = np.random.default_rng(12345)
    seeds = _seeds(sample_image)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    outcomes = {"decoded": 0, "rejected": 0}
    for i in range(N_CASES):
        data = _mutate(rng, seeds[i % len(seeds)])
        try:
            out = codecs.decode(data)
        except BitstreamError as exc:
            assert str(exc), "error message must name the problem"
            outcomes["rejected"] += 1
            continue
        c = unpack(data)
        assert out.shape == (c.height, c.width, 3) and out.dtype == np.uint8
        outcomes["decoded"] += 1
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    assert outcomes["rejected"] > N_CASES // 2
    assert outcomes["decoded"] + outcomes["rejected"] == N_CASES
    assert grown_mb < 300, f"peak memory grew by {grown_mb:.0f} MB"


@pytest.mark.parametrize("junk", [b"", b"\x00" * 64, b"SC" + b"\xff" * 100, bytes(range(256))])
def test_junk_is_rejected(junk):
    with pytest.raises(BitstreamError):
        codecs.decode(junk)
