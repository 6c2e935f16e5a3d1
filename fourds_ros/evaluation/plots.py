"""PNG plots for the report (matplotlib, Agg backend: no display needed). No rclpy."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .bag import BagData  # noqa: E402
from .metrics import depth_edge_mask, resize_depth  # noqa: E402
from .predictions import Predictions  # noqa: E402


def _trajectory(path: Path, report: dict) -> bool:
    gt_xyz = report.get("_gt_xyz")
    curves = {"4DS": report.get("pose", {}).get("aligned_xyz"),
              "ORB VO": report.get("peers", {}).get("orb_vo", {}).get("pose", {}).get("aligned_xyz")}
    if gt_xyz is None:
        return False
    gt_xyz = np.asarray(gt_xyz)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    for ax, (a, b) in zip(axes, [(0, 1), (0, 2)]):
        ax.plot(gt_xyz[:, a], gt_xyz[:, b], "k-", lw=2, label="ground truth")
        for name, xyz in curves.items():
            if xyz is not None:
                xyz = np.asarray(xyz)
                ax.plot(xyz[:, a], xyz[:, b], "-", label=f"{name} (Sim(3)-aligned)")
        ax.set_xlabel("xyz"[a] + " [m]")
        ax.set_ylabel("xyz"[b] + " [m]")
        ax.axis("equal")
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("Camera trajectory")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return True


def _depth_maps(path: Path, bag: BagData, preds: Predictions, erode_px: int) -> bool:
    stamps = sorted(set(preds.depth) & set(bag.gt_depth))
    if not stamps:
        return False
    picks = [stamps[i] for i in sorted({0, len(stamps) // 2, len(stamps) - 1})]
    fig, axes = plt.subplots(len(picks), 4, figsize=(14, 3 * len(picks)), squeeze=False)
    for row, s in zip(axes, picks):
        gt = bag.gt_depth[s]
        pred = resize_depth(preds.depth[s], gt.shape, preds.depth_K.get(s),
                            bag.gt_intrinsics(s) if s in preds.depth_K else None)
        valid = np.isfinite(gt) & (gt > 0) & np.isfinite(pred) & (pred > 0)
        if erode_px:
            valid &= ~depth_edge_mask(gt, erode_px)
        scale = np.median(gt[valid]) / np.median(pred[valid]) if valid.any() else 1.0
        err = np.where(valid, np.abs(pred * scale - gt) / np.where(valid, gt, 1), np.nan)
        vmax = np.nanpercentile(gt, 98) if np.isfinite(gt).any() else 1
        if s in bag.images:
            row[0].imshow(bag.images[s])
        row[0].set_title(f"RGB {s / 1e9:.3f} s")
        row[1].imshow(gt, vmin=0, vmax=vmax, cmap="turbo")
        row[1].set_title("GT depth [m]")
        im = row[2].imshow(pred * scale, vmin=0, vmax=vmax, cmap="turbo")
        row[2].set_title("prediction (median-scaled)")
        fig.colorbar(im, ax=row[2], fraction=0.046)
        im = row[3].imshow(err, vmin=0, vmax=0.5, cmap="magma")
        row[3].set_title("AbsRel error" + (f" (edges eroded {erode_px}px)" if erode_px else ""))
        fig.colorbar(im, ax=row[3], fraction=0.046)
        for ax in row:
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=70)
    plt.close(fig)
    return True


def _tracks(path: Path, bag: BagData, methods: dict[str, Predictions]) -> bool:
    methods = {n: p for n, p in methods.items() if p.tracks}
    if not methods:
        return False
    stamps = sorted(set.intersection(*[set(p.tracks) for p in methods.values()]) & set(bag.images))
    if not stamps:
        return False
    picks = [stamps[i] for i in sorted({0, len(stamps) // 2, len(stamps) - 1})]
    fig, axes = plt.subplots(1, len(picks), figsize=(5 * len(picks), 4), squeeze=False)
    colours = ["tab:red", "tab:cyan", "tab:green"]
    for ax, s in zip(axes[0], picks):
        ax.imshow(bag.images[s])
        for c, (name, p) in zip(colours, methods.items()):
            tr = p.tracks[s]
            vis = np.asarray(tr["visible"], bool)
            uv = np.asarray(tr["uv"])
            ax.scatter(uv[vis, 0], uv[vis, 1], s=12, c=c, label=f"{name} visible")
            ax.scatter(uv[~vis, 0], uv[~vis, 1], s=12, facecolors="none", edgecolors=c, label=f"{name} occluded")
        h, w = bag.images[s].shape[:2]
        ax.set_xlim(-0.5, w - 0.5)  # points predicted outside the image are not drawn
        ax.set_ylim(h - 0.5, -0.5)
        ax.set_title(f"tracks at {s / 1e9:.3f} s")
        ax.axis("off")
    axes[0][0].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=70)
    plt.close(fig)
    return True


def _over_time(path: Path, report: dict, preds: Predictions) -> bool:
    per_frame = report.get("_depth_per_frame") or []
    lat = sorted(preds.latency_ms.items())
    if not per_frame and not lat:
        return False
    fig, axes = plt.subplots(2, 1, figsize=(9, 5), sharex=True)
    if per_frame:
        t = [f["stamp_ns"] / 1e9 for f in per_frame]
        axes[0].plot(t, [f["abs_rel"] if f["abs_rel"] is not None else np.nan for f in per_frame], label="AbsRel")
        axes[0].plot(t, [f["delta1"] if f["delta1"] is not None else np.nan for f in per_frame], label="δ<1.25")
        axes[0].legend()
        axes[0].set_ylabel("depth metric")
    if lat:
        axes[1].plot([s / 1e9 for s, _ in lat], [v for _, v in lat], ".-")
        axes[1].set_ylabel("latency [ms]")
    axes[1].set_xlabel("stamp [s]")
    for ax in axes:
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return True


PLOT_FILES = ("trajectory.png", "depth.png", "tracks.png", "metrics_over_time.png")


def write_plots(out_dir: Path, bag: BagData, model: Predictions, peers: dict[str, Predictions], report: dict) -> list[str]:
    """Writes trajectory.png, depth.png, tracks.png, metrics_over_time.png where there is data;
    returns the file names written."""
    out_dir = Path(out_dir)
    written = []
    erode = (report.get("depth") or {}).get("erode_px", 0) or 0
    jobs = [lambda p: _trajectory(p, report), lambda p: _depth_maps(p, bag, model, erode),
            lambda p: _tracks(p, bag, {"4DS": model, **{n: q for n, q in peers.items() if q.tracks}}),
            lambda p: _over_time(p, report, model)]
    for name, job in zip(PLOT_FILES, jobs, strict=True):
        if job(out_dir / name):
            written.append(name)
    return written
