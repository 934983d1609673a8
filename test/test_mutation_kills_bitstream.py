"""Behaviour of semcomp_core.bitstream that mutation testing found unpinned (docs/testing/mutation.md):
pack()'s argument errors name the offending field and its allowed range."""
from __future__ import annotations

import pytest

from semcomp_core.bitstream import MAX_LAYERS, MAX_SIDE, CodecId, LayerId, pack, unpack


@pytest.mark.parametrize("height, width, message", [
    (0, 5, rf"^height 0 outside 1\.\.{MAX_SIDE}$"),
    (5, MAX_SIDE + 1, rf"^width {MAX_SIDE + 1} outside 1\.\.{MAX_SIDE}$"),
])
def test_pack_names_the_bad_side(height, width, message):
    with pytest.raises(ValueError, match=message):
        pack(CodecId.JPEG, height, width, [])


def test_pack_limits_and_unknown_ids():
    with pytest.raises(ValueError, match=rf"^{MAX_LAYERS + 1} layers, at most {MAX_LAYERS}$"):
        pack(CodecId.JPEG, 1, 1, [(LayerId.IMAGE, b"")] * (MAX_LAYERS + 1))
    with pytest.raises(ValueError, match="^unknown codec id 99$"):
        pack(99, 1, 1, [])
    with pytest.raises(ValueError, match="^unknown layer id 99$"):
        pack(CodecId.JPEG, 1, 1, [(99, b"")])
    full = pack(CodecId.JPEG, MAX_SIDE, MAX_SIDE, [(LayerId.IMAGE, b"x")] * MAX_LAYERS)
    c = unpack(full)
    assert (c.height, c.width, len(c.layers)) == (MAX_SIDE, MAX_SIDE, MAX_LAYERS)
