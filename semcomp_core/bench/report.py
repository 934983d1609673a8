"""Tables and plots for benchmark summaries."""
from __future__ import annotations

from pathlib import Path

import numpy as np

_PLOT_METRICS = [("psnr", "PSNR (dB)"), ("ms_ssim", "MS-SSIM"), ("edge_f", "edge F-score (Canny, 2 px)"),
                 ("miou_recon_vs_gt", "mIoU vs ground truth"),
                 ("eval_miou_recon_vs_gt", "mIoU vs ground truth\n(independent segmenter)"),
                 ("miou_recon_vs_orig", "mIoU vs seg(original)")]


def _default_columns() -> list[tuple[str, str, str]]:
    return [("codec", "codec", "{}"), ("bytes", "bytes", "{:.0f}"), ("bpp", "bpp", "{:.4f}"),
            ("structure_bytes", "structure", "{:.0f}"),
            ("roi_share", "ROI share", "{:.2f}"), ("fallback_frames", "fallbacks", "{}"),
            ("psnr", "PSNR", "{:.2f}"), ("ms_ssim", "MS-SSIM", "{:.4f}"), ("edge_f", "edge F", "{:.3f}"),
            ("miou_recon_vs_gt", "mIoU(gt)", "{:.3f}"), ("preservation", "sem.kept", "{:.3f}"),
            ("eval_miou_recon_vs_gt", "mIoU(gt,ind)", "{:.3f}"),
            ("eval_preservation", "kept(ind)", "{:.3f}"),
            ("miou_recon_vs_orig", "mIoU(orig)", "{:.3f}"), ("eval_miou_recon_vs_orig", "mIoU(orig,ind)", "{:.3f}"),
            ("encode_ms", "enc ms", "{:.1f}"), ("decode_ms", "dec ms", "{:.1f}")]


def format_table(rows: list[dict], columns: list[tuple[str, str, str]] | None = None) -> str:
    """Plain-text table; ``columns`` = [(key, header, format)]."""
    if columns is None and any(r.get("kbps") is not None for r in rows):
        columns_default = [("codec", "codec", "{}"), ("bytes", "bytes", "{:.0f}"), ("kbps", "kbps", "{:.1f}"),
                           ("key_frames", "keys", "{}"), ("flicker", "flicker", "{:.2f}")]
        columns = columns_default + [c for c in _default_columns() if c[0] not in ("codec", "bytes", "bpp")]
    columns = columns or _default_columns()
    columns = [c for c in columns if any(r.get(c[0]) is not None for r in rows)]
    cells = [[h for _, h, _ in columns]]
    for r in rows:
        cells.append([fmt.format(r[k]) if r.get(k) is not None else "-" for k, _, fmt in columns])
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
             for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def plot_rate_distortion(rows: list[dict], path: str | Path) -> Path:
    """One panel per available metric, rate on x; configurations of one codec joined by a line.

    The rate is the bitrate (kbps) when every row has one (streams: ``semcomp bench --sequence``
    or ``--bag``), else bits per pixel."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [(k, t) for k, t in _PLOT_METRICS if any(r.get(k) is not None for r in rows)]
    if any(r.get("flicker") is not None for r in rows):
        metrics.append(("flicker", "flicker (mean |frame t - frame t-1|,\nstable-class pixels; lower = steadier)"))
    rate, rate_label = (("kbps", "bitrate (kbps, every byte sent)") if all(r.get("kbps") is not None for r in rows)
                        else ("bpp", "bits per pixel (container bytes, headers included)"))
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.6), squeeze=False)
    by_name: dict[str, list[dict]] = {}
    for r in rows:
        name = r.get("name") or r["codec"].split(":")[0]
        if r.get("key_frames") is not None and r.get("frames", 0) > 1 and r["key_frames"] == r["frames"]:
            name += " (every frame intra)"                  # streams: per-frame configurations apart
        by_name.setdefault(name, []).append(r)
    for ax, (key, title) in zip(axes[0], metrics):
        for name, rs in sorted(by_name.items()):
            pts = sorted((r[rate], r[key]) for r in rs if r.get(key) is not None and r.get(rate) is not None)
            if pts:
                xs, ys = np.array(pts).T
                ax.plot(xs, ys, marker="o", label=name)
        ax.set_xlabel(rate_label)
        ax.set_ylabel(title)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def panel_grid(rows: list[list[tuple[str, np.ndarray]]], path: str | Path, scale: float = 1.0) -> Path:
    """Write rows of captioned images (all the size of the first) as one PNG, each panel scaled by ``scale``."""
    from PIL import Image, ImageDraw

    h, w = rows[0][0][1].shape[:2]
    ph, pw, bar = int(round(h * scale)), int(round(w * scale)), 16 if scale < 1 else 22
    canvas = Image.new("RGB", (pw * max(len(r) for r in rows), (ph + bar) * len(rows)), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for r, panels in enumerate(rows):
        for c, (caption, img) in enumerate(panels):
            x, y = c * pw, r * (ph + bar)
            im = Image.fromarray(img)
            canvas.paste(im if scale == 1 else im.resize((pw, ph), Image.BILINEAR), (x, y + bar))
            draw.text((x + 6, y + (bar - 12) // 2), caption, fill=(0, 0, 0))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return path
