"""Codec specifications on the command line.

Syntax::

    NAME[:KEY=VALUE[:KEY=VALUE...]]

for example ``bpg``, ``bpg:q=45``, ``jpeg:quality=10``, ``bpg:q=45:impl=x265``.
In ``semcomp bench --codecs`` several specs are separated by commas, and a
value may be a sweep that expands into one configuration per value:

* ``a..b``    every integer from a to b inclusive, e.g. ``q=35..51``
* ``a..b/s``  from a to b in steps of s, e.g. ``q=35..51/4`` -> 35,39,43,47,51
* ``v1|v2``   an explicit list, e.g. ``quality=5|10|20``

``bench --codecs "bpg:q=35..51/4,jpeg:quality=5|20,webp"`` therefore runs
five BPG settings, two JPEG settings and WebP at its default quality.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from ..errors import UsageError


@dataclass(frozen=True)
class CodecSpec:
    name: str
    params: dict = field(default_factory=dict)

    def label(self) -> str:
        """Canonical text form, e.g. ``bpg:q=45``."""
        if not self.params:
            return self.name
        return self.name + "".join(f":{k}={v}" for k, v in self.params.items())


def _expand_value(key: str, text: str) -> list[str]:
    if "|" in text:
        vals = [v for v in text.split("|")]
        if any(not v for v in vals):
            raise UsageError(f"empty value in list for {key!r}: {text!r}")
        return vals
    if ".." in text:
        rng, _, step_txt = text.partition("/")
        lo_txt, _, hi_txt = rng.partition("..")
        try:
            lo, hi = int(lo_txt), int(hi_txt)
            step = int(step_txt) if step_txt else 1
        except ValueError:
            raise UsageError(f"bad range for {key!r}: {text!r} (expected a..b or a..b/s with integers)") from None
        if step <= 0 or hi < lo:
            raise UsageError(f"bad range for {key!r}: {text!r} (need a <= b and a positive step)")
        vals = list(range(lo, hi + 1, step))
        if len(vals) > 1000:
            raise UsageError(f"range for {key!r} has {len(vals)} values (at most 1000)")
        return [str(v) for v in vals]
    return [text]


def parse_spec(text: str, allow_sweeps: bool = False) -> list[CodecSpec]:
    """Parse one ``NAME:K=V...`` spec into one (or, with sweeps, several) CodecSpec."""
    text = text.strip()
    if not text:
        raise UsageError("empty codec name")
    name, *parts = text.split(":")
    name = name.strip()
    if not name:
        raise UsageError(f"missing codec name in {text!r}")
    keys: list[str] = []
    values: list[list[str]] = []
    for part in parts:
        key, eq, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or not key or not value:
            raise UsageError(f"bad codec option {part!r} in {text!r} (expected KEY=VALUE)")
        if key in keys:
            raise UsageError(f"option {key!r} given twice in {text!r}")
        keys.append(key)
        values.append(_expand_value(key, value) if allow_sweeps else [value])
    return [CodecSpec(name, dict(zip(keys, combo))) for combo in itertools.product(*values)]


def parse_spec_list(text: str) -> list[CodecSpec]:
    """Parse ``--codecs a,b:k=v,...`` with sweeps expanded."""
    specs: list[CodecSpec] = []
    for item in text.split(","):
        if item.strip():
            specs.extend(parse_spec(item, allow_sweeps=True))
    if not specs:
        raise UsageError("no codecs given")
    return specs
