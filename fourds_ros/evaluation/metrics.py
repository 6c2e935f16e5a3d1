"""Metrics for depth, point tracks and camera pose, plus geometric track ground truth. No rclpy.

Depth: AbsRel, RMSE, delta<1.25 on valid pixels, per frame median-scaled or metric, optionally
away from depth edges. Tracks: TAP-Vid AJ, delta_avg, occlusion accuracy (OA) with coordinates
rescaled to 256x256 (the TAP-Vid convention) and "query first" evaluation (frames after the query
frame); PCK at alpha * sqrt(mask area) for BADJA. Pose: ATE RMSE after Sim(3) (Umeyama) alignment and
RPE over consecutive frames, both with `evo`.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

TAPVID_THRESHOLDS = (1, 2, 4, 8, 16)
TAPVID_SIZE = (256, 256)


# ----------------------------------------------------------------------------------------- depth
def depth_edge_mask(gt: np.ndarray, erode_px: int, rel_jump: float = 0.1) -> np.ndarray:
    """(H, W) bool, True near depth discontinuities or invalid pixels (dilated by erode_px).

    A pixel is an edge when its depth differs from a 4-neighbour by more than rel_jump (relative).
    7-Scenes needs this: its depth comes from a second camera 2.5 cm away (registered to RGB on
    read, fourds_ros.rgbd), so edges one camera sees round and the other does not disagree.
    """
    valid = np.isfinite(gt) & (gt > 0)
    d = np.where(valid, gt, 0).astype(np.float32)
    edge = ~valid
    for axis in (0, 1):
        a = np.diff(d, axis=axis)
        ref = np.maximum(np.minimum(np.delete(d, -1, axis), np.delete(d, 0, axis)), 1e-6)
        jump = np.abs(a) / ref > rel_jump
        pad = [(0, 0), (0, 0)]
        pad[axis] = (0, 1)
        edge |= np.pad(jump, pad)
        pad[axis] = (1, 0)
        edge |= np.pad(jump, pad)
    if erode_px > 0:
        kernel = np.ones((2 * erode_px + 1, 2 * erode_px + 1), np.uint8)
        edge = cv2.dilate(edge.astype(np.uint8), kernel) > 0
    return edge


def resize_depth(pred: np.ndarray, shape: tuple[int, int], pred_K: np.ndarray | None = None,
                 gt_K: np.ndarray | None = None) -> np.ndarray:
    """A (h, w) prediction on the ground-truth pixel grid (H, W), bilinear.

    Without intrinsics the prediction is taken to cover the whole image (plain resize). With
    pred_K (of the prediction image, e.g. a centre crop) and gt_K (of the ground truth), each GT
    pixel p samples the prediction at pred_K @ inv(gt_K) @ p (same optical centre, the two images
    differ by scale and crop only); GT pixels outside the prediction window become NaN.
    """
    pred = pred.astype(np.float32)
    if pred_K is None or gt_K is None:
        if pred.shape == tuple(shape):
            return pred
        return cv2.resize(pred, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    gt_to_pred = (np.asarray(pred_K, float) @ np.linalg.inv(np.asarray(gt_K, float)))[:2]
    out = cv2.warpAffine(pred, gt_to_pred, (shape[1], shape[0]), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                         borderMode=cv2.BORDER_REPLICATE)
    # GT pixels whose centre falls outside the prediction's pixel area are not predicted at all.
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]]
    px = gt_to_pred[0, 0] * xs + gt_to_pred[0, 1] * ys + gt_to_pred[0, 2]
    py = gt_to_pred[1, 0] * xs + gt_to_pred[1, 1] * ys + gt_to_pred[1, 2]
    h, w = pred.shape
    out[(px < -0.5) | (px > w - 0.5) | (py < -0.5) | (py > h - 0.5)] = np.nan
    return out


def depth_errors(pred: np.ndarray, gt: np.ndarray, median_scale: bool = False, erode_px: int = 0,
                 min_depth: float = 1e-3, max_depth: float = 1e3, pred_K: np.ndarray | None = None,
                 gt_K: np.ndarray | None = None, pred_range: tuple[float, float] | None = None) -> dict | None:
    """pred: (h, w) metres, gt: (H, W) metres, NaN/0 invalid; pred is brought onto the gt grid by
    resize_depth (with pred_K/gt_K when the prediction covers only part of the image).
    pred_range: (low, high) metres that pred's -inf / +inf stand for (REP 117's too close / beyond range);
    such a reading is scored at that bound. Why: dropped as no reading, every pixel the model put out of
    range left the model's score (a team's max_depth 2 m read the desk's AbsRel 0.227 -> 0.074) while the
    peers were scored on every pixel.

    Returns {abs_rel, rmse, delta1, scale, valid_pixels} or None when no pixel is valid.
    median_scale: pred *= median(gt) / median(pred) over the valid pixels of this frame.
    """
    if pred_range is not None:
        pred = np.where(np.isneginf(pred), pred_range[0], np.where(np.isposinf(pred), pred_range[1], pred))
    pred = resize_depth(pred, gt.shape, pred_K, gt_K)
    valid = np.isfinite(gt) & (gt > min_depth) & (gt < max_depth) & np.isfinite(pred) & (pred > 0)
    if erode_px > 0:
        valid &= ~depth_edge_mask(gt, erode_px)
    if not valid.any():
        return None
    p, g = pred[valid].astype(np.float64), gt[valid].astype(np.float64)
    scale = float(np.median(g) / np.median(p)) if median_scale else 1.0
    p = p * scale
    ratio = np.maximum(p / g, g / p)
    return {"abs_rel": float(np.mean(np.abs(p - g) / g)), "rmse": float(np.sqrt(np.mean((p - g) ** 2))),
            "delta1": float(np.mean(ratio < 1.25)), "scale": scale, "valid_pixels": int(valid.sum())}


def mean_depth_errors(per_frame: list[dict | None]) -> dict:
    """Average frame metrics (each frame weighs the same, as in the depth literature)."""
    frames = [f for f in per_frame if f is not None]
    if not frames:
        return {"abs_rel": None, "rmse": None, "delta1": None, "frames": 0}
    return {k: float(np.mean([f[k] for f in frames])) for k in ("abs_rel", "rmse", "delta1")} | {
        "frames": len(frames)}


# ---------------------------------------------------------------------------------------- tracks
def tapvid_point_counts(query_t: np.ndarray, gt_occluded: np.ndarray, gt_xy: np.ndarray,
                        pred_occluded: np.ndarray, pred_xy: np.ndarray, image_size: tuple[int, int] | None = None,
                        thresholds=TAPVID_THRESHOLDS, gt_unknown: np.ndarray | None = None) -> dict:
    """What each point adds to the TAP-Vid metrics ("query first" mode; arguments as
    tapvid_metrics): per point (N,) the evaluated frames, the visible ones and the frames whose
    visibility is predicted right; per point and threshold (N, K) the true positives, false
    positives and visible frames predicted within the threshold; per point (N,) also the frames
    after its query left out as gt_unknown. AJ, delta_avg and OA are ratios
    of these sums (tapvid_from_counts), so a subset of points is scored by summing its rows.
    gt_unknown: (N, T) bool, frames whose ground truth cannot tell visible from occluded
    (geometric_tracks' depth holes); they are not evaluated, so neither a method that calls such
    a point visible nor one that calls it occluded is marked wrong there."""
    gt_xy = np.asarray(gt_xy, np.float64)
    pred_xy = np.asarray(pred_xy, np.float64)
    if image_size is not None:
        s = np.array([TAPVID_SIZE[1] / image_size[1], TAPVID_SIZE[0] / image_size[0]])
        gt_xy, pred_xy = gt_xy * s, pred_xy * s
    t = gt_occluded.shape[1]
    after = np.arange(t)[None, :] > np.asarray(query_t)[:, None]
    unknown = after & (False if gt_unknown is None else np.asarray(gt_unknown, bool))
    evaluation = after & ~unknown
    gt_vis, pred_vis = ~gt_occluded.astype(bool), ~pred_occluded.astype(bool)
    dist2 = np.sum((pred_xy - gt_xy) ** 2, axis=-1)
    dist2 = np.where(np.isfinite(dist2), dist2, np.inf)
    seen, predicted = gt_vis & evaluation, pred_vis & evaluation
    within, tp, fp = [], [], []
    for k in thresholds:  # one (N, T) mask at a time: a long bag's (N, T, K) would not fit
        close = dist2 < k * k
        within.append((close & seen).sum(1))
        tp.append((close & predicted & seen).sum(1))
        fp.append(((~close & seen & predicted) | (~gt_vis & predicted)).sum(1))
    return {"thresholds": tuple(thresholds), "evaluated": evaluation.sum(1), "unknown": unknown.sum(1),
            "visible": seen.sum(1),
            "occlusion_right": ((gt_vis == pred_vis) & evaluation).sum(1),
            "within": np.stack(within, 1), "tp": np.stack(tp, 1), "fp": np.stack(fp, 1)}


def tapvid_from_counts(counts: dict, rows: np.ndarray | None = None) -> dict:
    """TAP-Vid metrics of the points `rows` (all when None) from tapvid_point_counts."""
    c = counts if rows is None else {k: v if k == "thresholds" else v[rows] for k, v in counts.items()}
    out = {"points": int(len(c["evaluated"])), "evaluated": int(c["evaluated"].sum())}
    visible = int(c["visible"].sum())
    if not out["evaluated"] or not visible:
        return out | {"aj": None, "delta_avg": None, "oa": None}
    out["oa"] = float(c["occlusion_right"].sum() / out["evaluated"])
    within, jaccard = c["within"].sum(0) / visible, c["tp"].sum(0) / (visible + c["fp"].sum(0))
    for k, w, j in zip(c["thresholds"], within, jaccard):
        out[f"pts_within_{k}"], out[f"jaccard_{k}"] = float(w), float(j)
    out["aj"], out["delta_avg"] = float(np.mean(jaccard)), float(np.mean(within))
    return out


def tapvid_metrics(query_t: np.ndarray, gt_occluded: np.ndarray, gt_xy: np.ndarray,
                   pred_occluded: np.ndarray, pred_xy: np.ndarray, image_size: tuple[int, int] | None = None,
                   thresholds=TAPVID_THRESHOLDS, gt_unknown: np.ndarray | None = None) -> dict:
    """TAP-Vid metrics for one video, "query first" mode.

    query_t: (N,) int frame index of each query; gt_occluded, pred_occluded: (N, T) bool;
    gt_xy, pred_xy: (N, T, 2) pixel (x, y). image_size: (H, W) of those pixels; coordinates are
    rescaled to 256x256 first (None: already at 256x256). Evaluated on frames t > query_t, except
    where gt_unknown (N, T) is set (tapvid_point_counts).
    Returns aj, delta_avg, oa, per-threshold jaccard_<k> / pts_within_<k>, and the point count.
    """
    return tapvid_from_counts(tapvid_point_counts(query_t, gt_occluded, gt_xy, pred_occluded, pred_xy, image_size,
                                                  thresholds, gt_unknown))


def pck(pred_xy: np.ndarray, gt_xy: np.ndarray, gt_visible: np.ndarray, mask_area: np.ndarray,
        alpha: float = 0.2) -> dict:
    """PCK for BADJA-style keypoints: correct when ||pred - gt|| < alpha * sqrt(mask area).

    pred_xy, gt_xy: (A, J, 2) pixels; gt_visible: (A, J) bool; mask_area: (A,) pixels of the
    foreground mask in each annotated frame (same resolution as the coordinates).
    Returns pck, pck_3px (the fixed 3-pixel variant) and the number of scored points.
    """
    dist = np.linalg.norm(np.asarray(pred_xy, float) - np.asarray(gt_xy, float), axis=-1)
    dist = np.where(np.isfinite(dist), dist, np.inf)
    thr = alpha * np.sqrt(np.asarray(mask_area, float))[:, None]
    vis = np.asarray(gt_visible, bool)
    n = int(vis.sum())
    if n == 0:
        return {"pck": None, "pck_3px": None, "points": 0}
    return {"pck": float(np.sum((dist < thr) & vis) / n), "pck_3px": float(np.sum((dist < 3) & vis) / n),
            "points": n}


def geometric_tracks(query_uv: np.ndarray, query_frame: np.ndarray, depths: list[np.ndarray | None],
                     poses: list[np.ndarray | None], K: np.ndarray, depth_K: np.ndarray | None = None,
                     occlusion_rel_tol: float = 0.05) -> dict:
    """Ground-truth point tracks of a STATIC scene from depth + camera pose (the reusable one).

    query_uv: (N, 2) pixel (x, y) in the RGB image of frame query_frame[i] (int, (N,));
    depths: per frame (H, W) metres, NaN/0 invalid, same pixel grid as the RGB image (or a
    depth camera with intrinsics depth_K; 7-Scenes' depth arrives registered to RGB from
    fourds_ros.rgbd); poses: per frame (4, 4) world_from_camera; K: (3, 3). A frame may have no
    depth or no pose (None: a dropped message, depth at half the camera's rate).

    Each query pixel is back-projected with the depth at its (rounded) pixel, moved to the world
    and projected into every frame. A point is occluded in a frame when it is behind the camera,
    leaves the image, the observed depth there is invalid, or the observed depth is nearer than
    the projected depth by more than occlusion_rel_tol (relative).
    Returns xy (N, T, 2), occluded (N, T) bool, valid (N,) bool (query depth and pose available), and
    unknown (N, T) bool: in view and in front of the camera where the depth camera saw nothing (a
    Kinect's holes: dark, shiny or oblique surfaces, and the shadow beside a depth edge; or the
    frame has no depth image), or anywhere in a frame without a pose, so its visibility cannot be
    told; such frames are occluded too (never a visible label to train on) and the evaluation
    leaves them out (tapvid_point_counts' gt_unknown).
    """
    depth_K = K if depth_K is None else depth_K
    n, t = len(query_uv), len(poses)
    xy = np.full((n, t, 2), np.nan)
    occluded = np.ones((n, t), bool)
    unknown = np.zeros((n, t), bool)
    world, valid = _query_points_in_world(query_uv, query_frame, depths, poses, K, depth_K)
    # A frame without a depth image is in view over the same grid as the others (one depth camera).
    grid = next((d.shape[:2] for d in depths if d is not None), None)
    for f in range(t):
        if poses[f] is None:  # nowhere to project the points: none can be told visible or occluded
            unknown[:, f] = valid
            continue
        cam = (np.linalg.inv(poses[f]) @ np.c_[world, np.ones(n)].T).T[:, :3]
        with np.errstate(invalid="ignore", divide="ignore"):
            uv = (K @ cam.T).T
            uv = uv[:, :2] / uv[:, 2:3]
            duv = (depth_K @ cam.T).T
            duv = duv[:, :2] / duv[:, 2:3]
        xy[:, f] = uv
        if grid is not None:  # (no depth anywhere: no valid query either)
            occluded[:, f], unknown[:, f] = _visibility(valid, cam[:, 2], duv, depths[f], grid, occlusion_rel_tol)
    for i, q in enumerate(query_frame):  # the query itself is visible by definition
        if valid[i]:
            occluded[i, q] = False
            xy[i, q] = query_uv[i]
    return {"xy": xy, "occluded": occluded, "valid": valid, "unknown": unknown}


def _visibility(valid: np.ndarray, z: np.ndarray, duv: np.ndarray, depth: np.ndarray | None,
                grid: tuple[int, int], occlusion_rel_tol: float) -> tuple[np.ndarray, np.ndarray]:
    """One frame's (occluded (N,), unknown (N,)) for points at camera depth z and depth-image pixel
    duv; depth None: the frame has no depth image, so a point in view is unknown, as over a hole."""
    h, w = depth.shape if depth is not None else grid
    inside = valid & (z > 1e-6) & (duv[:, 0] >= 0) & (duv[:, 0] <= w - 1) & (duv[:, 1] >= 0) & (duv[:, 1] <= h - 1)
    if depth is None:
        return np.ones(len(z), bool), inside
    cols = np.clip(np.nan_to_num(np.round(duv[:, 0])), 0, w - 1).astype(int)
    rows = np.clip(np.nan_to_num(np.round(duv[:, 1])), 0, h - 1).astype(int)
    observed = depth[rows, cols]
    measured = np.isfinite(observed) & (observed > 0)
    seen = inside & measured & (observed > z * (1 - occlusion_rel_tol))
    return ~seen, inside & ~measured


def _query_points_in_world(query_uv: np.ndarray, query_frame: np.ndarray, depths: list[np.ndarray | None],
                           poses: list[np.ndarray | None], K: np.ndarray, depth_K: np.ndarray
                           ) -> tuple[np.ndarray, np.ndarray]:
    """Each query pixel back-projected with the depth at its (rounded) pixel in the depth image (depth_K's:
    it read the RGB pixel's place, another point where the depth camera's intrinsics differ) and moved to the
    world: (world (N, 3), NaN where not valid; valid (N,) bool: depth and pose available at the query)."""
    n = len(query_uv)
    world, valid = np.full((n, 3), np.nan), np.zeros(n, bool)
    K_inv = np.linalg.inv(K)
    for i, ((u, v), q) in enumerate(zip(query_uv, query_frame)):
        depth = depths[q]
        if depth is None or poses[q] is None:
            continue
        du, dv, dw = depth_K @ K_inv @ np.array([u, v, 1.0])
        c, r = int(round(du / dw)), int(round(dv / dw))
        if not (0 <= r < depth.shape[0] and 0 <= c < depth.shape[1]):
            continue
        z = depth[r, c]
        if not (np.isfinite(z) and z > 0):
            continue
        p_cam = z * (K_inv @ np.array([u, v, 1.0]))
        world[i] = (poses[q] @ np.append(p_cam, 1.0))[:3]
        valid[i] = True
    return world, valid


# ------------------------------------------------------------------------------------------ pose
def orthonormal_pose(T: np.ndarray) -> np.ndarray:
    """Nearest proper rotation (SVD) in a 4x4 pose: datasets store rotations to ~1e-4 and chains
    drift, while evo insists on exact SO(3)."""
    T = np.array(T, float)
    u, _, vt = np.linalg.svd(T[:3, :3])
    r = u @ vt
    if np.linalg.det(r) < 0:
        u[:, -1] *= -1
        r = u @ vt
    T[:3, :3] = r
    T[3] = [0, 0, 0, 1]
    return T


def to_evo(stamps_ns: list[int], poses: list[np.ndarray]):
    from evo.core.trajectory import PoseTrajectory3D

    return PoseTrajectory3D(poses_se3=[orthonormal_pose(p) for p in poses],
                            timestamps=np.asarray(stamps_ns, float) / 1e9)


def pose_errors(stamps_ns: list[int], est: list[np.ndarray], ref: list[np.ndarray],
                tum_dir: str | Path | None = None, name: str = "estimate") -> dict:
    """est, ref: (4, 4) poses (est odom_from_camera, ref world_from_camera) at the same stamps.

    ATE: RMSE of translation after Sim(3) Umeyama alignment (monocular: scale is unobservable).
    RPE: consecutive-frame translation (m, after the same alignment) and rotation (deg) RMSE.
    ate_se3_rmse: ATE after a rigid (SE(3)) alignment only: the odometry's own metres, as a robot fusing it
    meets them (the node publishes metric odometry; Sim(3) alignment forgives any scale). sim3_scale: the
    scale the Sim(3) alignment applied (1: the metres were right; 0.1: the estimate travelled 10x too far).
    rotation_ratio: how far the estimate turns (summed consecutive-frame rotation angles) over how
    far the camera turned; below 1 the method under-reports rotation (e.g. a pose head that
    regresses to "no motion"), independent of alignment and scale.
    ate_still_camera: the ATE of a camera that never moves (the RMS of the reference positions
    about their mean, which Sim(3) alignment reaches at scale 0): the floor that a method's ATE
    must beat to show it measured any translation (on a rotation-dominated recording ATE is
    small for every method).
    tum_dir: also write <name>.tum and groundtruth.tum there (TUM trajectory format).
    """

    from evo.core import metrics
    from evo.core.units import Unit
    from evo.tools import file_interface

    if len(stamps_ns) < 3:
        return {"ate_rmse": None, "rpe_trans": None, "rpe_rot_deg": None, "rotation_ratio": None, "frames": len(stamps_ns),
                "error": "fewer than 3 poses"}
    traj_ref, traj_est = to_evo(stamps_ns, ref), to_evo(stamps_ns, est)
    if tum_dir is not None:
        Path(tum_dir).mkdir(parents=True, exist_ok=True)
        file_interface.write_tum_trajectory_file(str(Path(tum_dir) / f"{name}.tum"), traj_est)
        file_interface.write_tum_trajectory_file(str(Path(tum_dir) / "groundtruth.tum"), traj_ref)
    aligned, s = aligned_copy(traj_est, traj_ref)
    ape = metrics.APE(metrics.PoseRelation.translation_part)
    ape.process_data((traj_ref, aligned))
    rigid = metrics.APE(metrics.PoseRelation.translation_part)
    rigid.process_data((traj_ref, aligned_copy(traj_est, traj_ref, with_scale=False)[0]))
    rpe_t = metrics.RPE(metrics.PoseRelation.translation_part, delta=1, delta_unit=Unit.frames,
                        all_pairs=False)
    rpe_t.process_data((traj_ref, aligned))
    rpe_r = metrics.RPE(metrics.PoseRelation.rotation_angle_deg, delta=1, delta_unit=Unit.frames,
                        all_pairs=False)
    rpe_r.process_data((traj_ref, aligned))
    rmse = metrics.StatisticsType.rmse
    turned_ref = total_rotation_deg(traj_ref.poses_se3)
    return {"ate_rmse": float(ape.get_statistic(rmse)), "rpe_trans": float(rpe_t.get_statistic(rmse)),
            "rpe_rot_deg": float(rpe_r.get_statistic(rmse)),
            "rotation_ratio": total_rotation_deg(traj_est.poses_se3) / turned_ref if turned_ref > 0 else None,
            "sim3_scale": float(s), "ate_se3_rmse": float(rigid.get_statistic(rmse)),
            "ate_still_camera": still_camera_ate(traj_ref.positions_xyz),
            "frames": len(stamps_ns), "aligned_xyz": aligned.positions_xyz.tolist()}


def aligned_copy(traj_est, traj_ref, with_scale: bool = True):
    """(a copy of evo trajectory traj_est moved onto traj_ref by the least-squares similarity, Sim(3), or with
    with_scale False by the rigid motion, SE(3), which keeps its metres as a robot using the odometry gets them;
    the scale applied, 1.0 for SE(3))."""
    import copy

    from evo.core.geometry import GeometryException
    from evo.core.lie_algebra import se3

    aligned = copy.deepcopy(traj_est)
    try:
        _, _, s = aligned.align(traj_ref, correct_scale=with_scale)
    except GeometryException:
        # evo refuses an estimate whose positions span less than a plane: one that never moved, or
        # moved along a line only (odometry whose clips were held in place, pose_epipolar_hold_unmeasured).
        # Its best alignment still exists (its rotation is not unique, its error is); scoring it None would
        # drop it from every mean.
        r, t, s = degenerate_sim3(traj_est.positions_xyz, traj_ref.positions_xyz)
        if with_scale:
            aligned.scale(s)
        else:
            s, t = 1.0, traj_ref.positions_xyz.mean(0) - r @ traj_est.positions_xyz.mean(0)
        aligned.transform(se3(r, t))
    return aligned, s


def degenerate_sim3(est_xyz: np.ndarray, ref_xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(N, 3) estimated and reference positions -> (R 3x3, t (3,), scale) of the least-squares Sim(3)
    taking the estimate onto the reference (Umeyama 1991, eqs. 34-43), also where the estimate's
    spread has rank 0 or 1, which evo refuses: the optimum is then not unique in its rotation, but
    its error is. An estimate that never moved gets scale 0 at the reference's mean (the still camera)."""
    x, y = np.asarray(est_xyz, float), np.asarray(ref_xyz, float)
    mean_x, mean_y = x.mean(0), y.mean(0)
    variance = float(np.mean(np.sum((x - mean_x) ** 2, axis=1)))
    if not variance > 1e-24:
        return np.eye(3), mean_y, 0.0
    u, d, vt = np.linalg.svd((y - mean_y).T @ (x - mean_x) / len(x))
    sign = np.diag([1.0, 1.0, -1.0 if np.linalg.det(u) * np.linalg.det(vt) < 0 else 1.0])
    rotation = u @ sign @ vt
    scale = float(np.trace(np.diag(d) @ sign) / variance)
    return rotation, mean_y - scale * rotation @ mean_x, scale


def still_camera_ate(positions: np.ndarray) -> float:
    """positions: (N, 3) reference camera centres -> the ATE (RMSE, m) of a trajectory that stays
    at one point after the best Sim(3) alignment: the point is their mean."""
    centred = np.asarray(positions, float) - np.mean(positions, axis=0)
    return float(np.sqrt(np.mean(np.sum(centred ** 2, axis=1))))


def total_rotation_deg(poses: list[np.ndarray]) -> float:
    """Sum of the rotation angles between consecutive (4, 4) poses, degrees."""
    from evo.core.lie_algebra import so3_log_angle

    return float(sum(so3_log_angle(a[:3, :3].T @ b[:3, :3], degrees=True) for a, b in zip(poses[:-1], poses[1:])))
