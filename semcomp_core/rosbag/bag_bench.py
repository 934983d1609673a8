"""Benchmark codecs on a camera topic of a rosbag2 bag (``semcomp bench --bag``).

The bag (mcap or sqlite3) is read with ``rosbags`` as a stream: one message is
deserialised, benchmarked by :class:`semcomp_core.bench.BenchRunner` and
written out before the next is read, so memory does not grow with the length
of the bag (rosbags holds at most one mcap chunk, about 1 MiB, at a time).

Outputs in ``out_dir``:

* ``bag/`` -- a rosbag2 bag (same storage as the input unless ``storage`` is
  given) that ``ros2 bag play`` can replay. Per codec it holds

  - the bitstream topic ``<topic>/semcomp``: ``sensor_msgs/msg/CompressedImage``
    with ``format = "semcomp/<wire label>"`` (no local paths) and the input header unchanged;
  - the reconstruction topic ``<topic>/semcomp/reconstructed``:
    ``sensor_msgs/msg/Image`` rgb8 with the same header,

  each with exactly one message per benchmarked input message, at the input
  message's log time. With more than one codec every codec gets its own pair
  of topics, ``<topic>/semcomp/<name>`` and ``<topic>/semcomp/<name>/reconstructed``,
  where ``<name>`` is the codec label made a valid ROS name token
  (:func:`topic_token`: ``bpg:q=45`` -> ``bpg_q45``, ``semantic-gan`` ->
  ``semantic_gan``).
* ``per_image.csv``/``.json``, ``summary.csv``/``.json`` and
  ``rate_distortion.png`` -- the same files as an image benchmark, with the
  encode/decode latency p50/p95; per-image rows carry the message ``stamp``
  and ``frame_id``.

The topic is one camera's stream: every codec runs through its stream
sessions in message order (inter frames for ``gop`` > 1, rate control with
``kbps=`` from the message stamps), and the summary has ``kbps`` (at the
bag's frame rate, or ``fps``) and ``flicker`` (see :mod:`semcomp_core.bench.runner`).

The input topic may hold ``sensor_msgs/msg/Image`` (encodings of
:mod:`semcomp_core.image_messages`) or an OpenCV-readable
``sensor_msgs/msg/CompressedImage`` (jpeg/png camera streams).
"""
from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Callable

import numpy as np

from ..codecs import Codec
from ..errors import UsageError
from .make_bag import BAG_VERSION, storage_plugin
from ..image_messages import (COMPRESSED_IMAGE_TYPE, IMAGE_TYPE, ImageMessageError, make_compressed_image, make_header,
                       make_image, message_to_rgb, semcomp_format, stamp_ns, typestore)

INPUT_TYPES = (IMAGE_TYPE, COMPRESSED_IMAGE_TYPE)


def topic_token(label: str) -> str:
    """A codec label as one ROS topic name token: ``:`` -> ``_``, ``=`` dropped, other
    characters outside ``[A-Za-z0-9_]`` -> ``_``; a leading digit gets a ``c`` prefix."""
    token = re.sub(r"[^A-Za-z0-9_]", "_", label.replace(":", "_").replace("=", ""))
    return "c" + token if token[:1].isdigit() else token


def output_topics(topic: str, labels: list[str]) -> dict[str, tuple[str, str]]:
    """``label -> (bitstream topic, reconstruction topic)`` for the output bag (see module doc)."""
    base = topic.rstrip("/") + "/semcomp"
    if len(labels) == 1:
        return {labels[0]: (base, base + "/reconstructed")}
    out: dict[str, tuple[str, str]] = {}
    used: set[str] = set()
    for label in labels:
        token, n = topic_token(label), 2
        while token in used:  # two labels that sanitise alike
            token, n = f"{topic_token(label)}_{n}", n + 1
        used.add(token)
        out[label] = (f"{base}/{token}", f"{base}/{token}/reconstructed")
    return out


def _bag_dir(bag: Path) -> Path:
    if not bag.exists():
        raise UsageError(f"no such bag: {bag}")
    if bag.is_file():
        if (bag.parent / "metadata.yaml").is_file():
            return bag.parent
        raise UsageError(f"{bag} is a file; give the rosbag2 directory (with metadata.yaml)")
    if not (bag / "metadata.yaml").is_file():
        raise UsageError(f"{bag} is not a rosbag2 directory (no metadata.yaml)")
    return bag


def _storage_of(bag: Path) -> str:
    return "mcap" if any(p.suffix == ".mcap" for p in bag.iterdir()) else "sqlite3"


def _image_topics(reader) -> str:
    found = [f"{c.topic} ({c.msgtype}, {c.msgcount} messages)" for c in reader.connections
             if c.msgtype in INPUT_TYPES]
    return ", ".join(found) if found else "none"


def _open_reader(bag: Path):
    from rosbags.highlevel import AnyReader

    try:
        reader = AnyReader([bag])
        reader.open()
    except Exception as exc:  # noqa: BLE001 -- rosbags raises several types on unreadable bags
        raise UsageError(f"cannot read bag {bag}: {exc}") from None
    return reader


def _topic_connections(reader, bag: Path, topic: str) -> tuple[list, str, int]:
    """The connections of ``topic``, its message type and message count; UsageError if unusable."""
    conns = [c for c in reader.connections if c.topic == topic]
    if not conns:
        raise UsageError(f"topic {topic!r} not in {bag}; image topics there: {_image_topics(reader)}")
    msgtype = conns[0].msgtype
    if msgtype not in INPUT_TYPES:
        raise UsageError(f"topic {topic!r} has type {msgtype}, expected {' or '.join(INPUT_TYPES)}; "
                         f"image topics there: {_image_topics(reader)}")
    return conns, msgtype, sum(c.msgcount for c in conns)


def _topic_rate(reader, n_messages: int) -> float | None:
    """Frame rate of the bag's messages from its time span (what the video anchors' encoders are
    told; the semantic rate control reads the message stamps themselves)."""
    span = (reader.end_time - reader.start_time) / 1e9 if reader.end_time and reader.start_time else 0
    return (n_messages - 1) / span if n_messages > 1 and span > 0 else None


class _OutputBag:
    """The output bag: per codec label, a bitstream and a reconstruction connection."""

    def __init__(self, path: Path, storage: str, topics: dict[str, tuple[str, str]],
                 formats: dict[str, str]) -> None:
        from rosbags.rosbag2 import Writer

        self.store = typestore()
        self.image_cls = self.store.types[IMAGE_TYPE]
        self.compressed_cls = self.store.types[COMPRESSED_IMAGE_TYPE]
        self.formats = formats
        self.writer = Writer(path, version=BAG_VERSION, storage_plugin=storage_plugin(storage))
        self.writer.open()
        self.conns = {label: (self.writer.add_connection(bits, COMPRESSED_IMAGE_TYPE, typestore=self.store),
                              self.writer.add_connection(recon, IMAGE_TYPE, typestore=self.store))
                      for label, (bits, recon) in topics.items()}

    def header(self, stamp: int, frame: str):
        return make_header(stamp, frame, self.store)

    def write(self, label: str, log_time: int, header, data: bytes, reconstruction: np.ndarray) -> None:
        """One bitstream and one reconstruction message, both with ``header``, at ``log_time``."""
        bits_conn, recon_conn = self.conns[label]
        bits = make_compressed_image(self.compressed_cls, header, self.formats[label], data)
        self.writer.write(bits_conn, log_time, self.store.serialize_cdr(bits, COMPRESSED_IMAGE_TYPE))
        recon = make_image(self.image_cls, header, reconstruction)
        self.writer.write(recon_conn, log_time, self.store.serialize_cdr(recon, IMAGE_TYPE))

    def close(self) -> None:
        self.writer.close()


def run_bag_bench(bag: Path, topic: str, codecs: list[Codec], out_dir: Path, *, save_recon: bool = False,
                  limit: int | None = None, segmenter: Callable[[np.ndarray], np.ndarray] | None = None,
                  num_classes: int | None = None, storage: str | None = None,
                  progress: bool = True, fps: float | None = None,
                  eval_segmenter: Callable[[np.ndarray], np.ndarray] | None = None) -> list[dict]:
    """Run ``codecs`` on every message of ``topic`` in ``bag``; write ``out_dir`` (see module doc).

    Returns the BenchRunner summary rows; ``summary.json``'s ``meta`` names
    the bag, topic, message counts and output topics. UsageError if the bag or
    topic is missing or the topic is not an image topic (the message lists the
    image topics there are), or ``out_dir/bag`` exists. Messages whose image
    cannot be read are skipped and counted (``meta.skipped``).
    """
    from tqdm import tqdm

    from ..bench.runner import BenchRunner

    if not codecs:
        raise UsageError("no codecs given")
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise UsageError(f"limit must be a positive integer, got {limit!r}")
    bag = _bag_dir(Path(bag))
    topic = topic if topic.startswith("/") else "/" + topic
    out_bag = Path(out_dir) / "bag"
    if out_bag.exists():
        raise UsageError(f"{out_bag} exists already; choose another output folder")
    in_storage = _storage_of(bag)
    storage = storage or in_storage
    storage_plugin(storage)  # validate before any work
    labels = [c.label() for c in codecs]
    topics = output_topics(topic, labels)

    reader = _open_reader(bag)
    try:
        conns, msgtype, n_messages = _topic_connections(reader, bag, topic)
        fps = fps or _topic_rate(reader, n_messages)
        runner = BenchRunner(codecs, out_dir, save_recon=save_recon, segmenter=segmenter,
                             num_classes=num_classes, extra_fields=["stamp", "frame_id"],
                             eval_segmenter=eval_segmenter, stream=True, fps=fps)
        bar = tqdm(total=min(n_messages, limit or n_messages), disable=not progress, unit="frame",
                   desc=f"bench {topic}", file=sys.stderr)
        seen = frames = skipped = 0
        first_skip = ""
        output = None
        try:
            output = _OutputBag(out_bag, storage, topics,
                                {c.label(): semcomp_format(c.wire_label()) for c in codecs})
            for conn, log_time, raw in reader.messages(connections=conns):  # one message at a time
                if limit is not None and seen >= limit:
                    break
                seen += 1
                bar.update(1)
                msg = reader.deserialize(raw, conn.msgtype)
                try:
                    image = message_to_rgb(msg, msgtype)
                except ImageMessageError as exc:
                    skipped += 1
                    first_skip = first_skip or f"message at {log_time}: {exc}"
                    continue
                stamp = stamp_ns(msg.header)
                header = output.header(stamp, str(msg.header.frame_id))
                sec, ns = divmod(stamp, 1_000_000_000)
                outcomes = runner.run_frame(f"{frames:06d}", image, stamp_ns=stamp,
                                            extra={"stamp": f"{sec}.{ns:09d}", "frame_id": header.frame_id})
                for label, outcome in zip(labels, outcomes):
                    output.write(label, log_time, header, outcome.data, outcome.reconstruction)
                frames += 1
            output.close()
            if frames == 0:
                raise UsageError(f"no frame of {topic} could be read ({first_skip or 'topic is empty'})")
        except BaseException:
            runner.close()
            if output is not None:
                try:
                    output.close()
                except Exception:  # noqa: BLE001 -- keep the original error
                    pass
            raise
        finally:
            bar.close()
    finally:
        reader.close()
    meta = {
        "source": "rosbag2", "bag": str(bag), "topic": topic, "msgtype": msgtype, "storage": in_storage,
        "messages": n_messages, "frames": frames, "skipped": skipped, "skip_reason": first_skip or None,
        "output_bag": str(out_bag), "output_storage": storage,
        "output_topics": {label: {"bitstream": b, "reconstruction": r} for label, (b, r) in topics.items()},
    }
    return runner.finish(meta)
