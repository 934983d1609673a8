"""Build a rosbag2 camera bag from an image sequence or a video file (``semcomp make-bag``).

The bag holds one topic of ``sensor_msgs/msg/Image`` (rgb8, no row padding).
Header stamps start at ``start_ns`` (a fixed epoch by default, so bags are
reproducible) and advance by ``1 / rate`` seconds; the bag's log time equals
the header stamp. Frames are read and written one at a time, so memory does
not depend on the length of the sequence.

Sources:

* ``images``: a folder searched recursively (hidden entries skipped) for files
  with the suffixes of :data:`semcomp_core.imageio.IMAGE_SUFFIXES`, sorted by
  relative path -- so a Cityscapes ``leftImg8bit_sequence/<split>`` (or one
  ``<city>`` below it) and a folder of CamVid frames play in order. Point it
  at images only: label folders inside it would be included too.
* ``video``: any file OpenCV can read, decoded frame by frame.

Storage: ``mcap`` (the rosbag2 default) or ``sqlite3``; bags are written as
rosbag2 format version 8, which ``ros2 bag`` reads from Humble on.
"""
from __future__ import annotations

import math
import os
import re
import shutil
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import UsageError
from ..imageio import IMAGE_SUFFIXES, load_image
from ..image_messages import IMAGE_TYPE, make_header, make_image, typestore

#: default first stamp: 2023-11-14T22:13:20Z, fixed so repeated runs give identical bags
DEFAULT_START_NS = 1_700_000_000 * 1_000_000_000
#: frame rate used when none is given and the source does not tell
DEFAULT_RATE = 10.0
STORAGES = ("mcap", "sqlite3")
#: rosbag2 metadata version written (8: readable by Humble, Iron, Jazzy and later)
BAG_VERSION = 8


def storage_plugin(storage: str):
    """The rosbags StoragePlugin for ``mcap`` / ``sqlite3``; UsageError otherwise."""
    from rosbags.rosbag2 import StoragePlugin

    if storage not in STORAGES:
        raise UsageError(f"storage must be one of {', '.join(STORAGES)}, got {storage!r}")
    return StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3


_TOKEN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_topic(topic: str) -> str:
    """A fully qualified ROS topic name (a leading ``/`` is added); UsageError if invalid."""
    name = str(topic).strip()
    if not name.startswith("/"):
        name = "/" + name
    if not all(_TOKEN.match(t) for t in name[1:].split("/")):
        raise UsageError(f"invalid topic name {topic!r} (tokens of letters, digits and _, "
                         f"not starting with a digit, separated by /)")
    return name


def find_images(folder: Path) -> list[Path]:
    """Image files under ``folder``, recursively, sorted by relative path; UsageError if none."""
    if not folder.is_dir():
        raise UsageError(f"not a directory: {folder}")
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(root) / f for f in files if not f.startswith(".") and Path(f).suffix.lower() in IMAGE_SUFFIXES]
    if not found:
        raise UsageError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {folder}")
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def _image_frames(paths: list[Path]) -> Iterator[np.ndarray]:
    for p in paths:
        yield load_image(p)


def _open_video(path: Path):
    import cv2

    if not path.is_file():
        raise UsageError(f"no such video file: {path}")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise UsageError(f"cannot open video {path} (not a video file OpenCV can read)")
    return cap


def _video_frames(cap) -> Iterator[np.ndarray]:
    try:
        while True:
            ok, frame = cap.read()
            if not ok or frame is None:
                return
            if frame.ndim == 2:
                frame = np.repeat(frame[:, :, None], 3, axis=2)
            yield np.ascontiguousarray(frame[:, :, 2::-1])  # BGR(A) -> RGB
    finally:
        cap.release()


def _video_rate(cap) -> float | None:
    import cv2

    fps = cap.get(cv2.CAP_PROP_FPS)
    return float(fps) if fps and math.isfinite(fps) and 0.1 <= fps <= 1000 else None


def make_bag(out: Path, *, images: Path | None = None, video: Path | None = None, rate: float | None = None,
             topic: str = "/camera/image_raw", frame_id: str = "camera", storage: str = "mcap",
             limit: int | None = None, start_ns: int = DEFAULT_START_NS) -> int:
    """Write a camera bag at ``out`` from ``images`` (folder) or ``video`` (file); return the message count.

    ``rate`` (Hz) sets the stamp spacing; None: the video's own frame rate when
    it reports one, else 10 Hz. ``limit`` caps the number of frames. UsageError
    on bad input (missing/unreadable source, ``out`` exists, bad rate/topic/
    storage); a partly written bag is removed.
    """
    from rosbags.rosbag2 import Writer

    out = Path(out)
    if (images is None) == (video is None):
        raise UsageError("give exactly one source: an image folder or a video file")
    if rate is not None:
        try:
            rate = float(rate)
        except (TypeError, ValueError):
            raise UsageError(f"rate must be a number of Hz, got {rate!r}") from None
        if not math.isfinite(rate) or rate <= 0:
            raise UsageError(f"rate must be a positive number of Hz, got {rate}")
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise UsageError(f"limit must be a positive integer, got {limit!r}")
    plugin = storage_plugin(storage)
    topic = check_topic(topic)
    if out.exists():
        raise UsageError(f"output bag {out} exists already; choose another path")

    if images is not None:
        frames = _image_frames(find_images(Path(images)))
        rate = rate or DEFAULT_RATE
    else:
        cap = _open_video(Path(video))
        rate = rate or _video_rate(cap) or DEFAULT_RATE
        frames = _video_frames(cap)

    store = typestore()
    image_cls = store.types[IMAGE_TYPE]
    out.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    writer = Writer(out, version=BAG_VERSION, storage_plugin=plugin)
    try:
        writer.open()
        conn = writer.add_connection(topic, IMAGE_TYPE, typestore=store)
        for rgb in frames:
            if limit is not None and count >= limit:
                break
            stamp = start_ns + round(count * 1e9 / rate)
            msg = make_image(image_cls, make_header(stamp, frame_id, store), rgb)
            writer.write(conn, stamp, store.serialize_cdr(msg, IMAGE_TYPE))
            count += 1
        if count == 0:
            raise UsageError(f"no frames could be read from {images or video}")
        writer.close()
    except BaseException:
        try:
            writer.close()
        except Exception:  # noqa: BLE001 -- the original error matters, not the cleanup's
            pass
        shutil.rmtree(out, ignore_errors=True)
        raise
    finally:
        frames.close()  # releases the video capture when stopped early
    return count
