"""Camera motion of one clip from the model's own geometry: metric depth + point tracks. No rclpy.

    geo = solve_clip_motion(depth[0], track_xy, track_visibility, k_model)   # model pixels
    rotation, translation, variance = fuse(head_R, head_t, head_var, geo.rotation, geo.translation,
                                           geo.variance, geo.valid)
    # or, for engine outputs straight away (what the pipeline calls):
    rotation, translation, log_variance, geo = clip_pose(outputs, k_model, mode="fused")

Every pose is T_first_from_t (camera t -> camera of the clip's first frame, optical frames),
the pose head's convention, so the result drops into OdometryChain.add_clip unchanged.

Solver, per frame t of the clip:
  1. 3-D points: each track's frame-0 position back-projected with frame 0's depth (only tracks
     visible in frame 0 with a finite, positive depth there). Every query has a position in every
     clip frame, so frame 0 positions exist for tracks queried later in the clip too.
  2. cv2.solvePnPRansac (SQPnP minimal solver) on the tracks visible in frame t, then
     cv2.solvePnPRefineLM on the inliers.
  3. Rotation-only test: a rotation fitted to the inliers' bearing vectors (Kabsch) explains the
     tracks as well as the full pose (an F-test on the extra 3 parameters), or the translation moves
     the points by less than `parallax_px`, or the frame is still (below) -> that rotation and
     zero translation (per frame, or pooled over the clip with rotation_test="clip"). With depth
     known PnP is not degenerate under pure rotation, but its translation is then pure noise.
     Still (GeometryPose.still, `_still`): no image motion is measured when most tracks moved
     less than `parallax_px` from frame 0 (PnP can trade a noise translation against rotation),
     or when the identity explains the tracks that stayed as well as PnP's motion explains the
     ones that moved: something moved through a still camera's view, and its tracks (and the
     background tracks it dragged along) outnumber the still ones. The frame's pose is then
     solved on the tracks that stayed, and a clip that ends so is still throughout. A frame most
     of whose tracks stayed is measured after all when one motion keeps the far ones still and
     moves the near ones apart across the view (`_one_motion_moves_some`: a robot driving
     forward with the far background in most of its view read 0 m, rule 58).
  4. Covariance: sigma^2 (J^T J)^-1 from the reprojection Jacobian at the solution (sigma^2 the
     residual variance), carried to T_first_from_t's parameters by a numeric Jacobian. This is
     what the solver measures; it knows nothing of a depth scale error, which moves every point
     alike and so leaves no residual.
  5. Degenerate (fewer than `min_inliers` inliers, or RANSAC failure): valid False; the caller
     keeps the pose head's value for that frame.
  6. Outlier gate (clip_pose): a frame whose geometric rotation differs from the head's by more
     than the two variances allow (a chi-square test, 3 dof) is discarded like a degenerate one;
     so is one whose measured translation does (3 dof), with the frames of the clip before it.
     PnP can converge on a consistent wrong pose (49 degrees off in one frame of TUM fr1/rpy,
     where the camera turned 2; a turn read as metres of translation on a small image spinning
     fast), and a wrong last frame of a clip anchors every later clip.
     Except a still frame: no image motion is no PnP failure, while the pose head reads a still
     camera's clips as fast, confident motion. In the fused pose such a frame takes the
     geometry's motion alone (clip_pose).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from .preprocess import sample_nearest

MODES = ("head", "geometry", "fused")
# The 99.9 % quantile of chi-square with 3 degrees of freedom: a rotation difference this unlikely
# under the two sources' own variances is an outlier, not noise.
GATE_CHI2_999 = 16.27
# Image motion (model px) below which a motion is not measured: a translation that moves the
# points less (its PARALLAX_QUANTILE over them) is taken as none (rotation-only), a track that
# moved less from frame 0 stayed (the still test), and the outlier gate does not discard a
# geometry frame whose tracks moved less.
PARALLAX_PX = 0.5
# A relinked frame's one-frame step (relink_lost_frames): a single step rarely moves the points
# PARALLAX_PX, so its rotation-only call is the F test's alone (rule 57).
RELINK_PARALLAX_PX = 0.0
# A frame most of whose tracks stayed is still unless one motion fitted to MOTION_FIT_PX keeps
# STAYED_KEPT of them and moves min_inliers others by MOTION_SEEN_PX (rule 58).
MOTION_FIT_PX = 1.0
MOTION_SEEN_PX = 1.0
STAYED_KEPT = 0.9
MOVED_SPAN = 0.5  # of the image width, spanned by the tracks that moved
PARALLAX_QUANTILE = 90  # of the points' parallax under a frame's translation
# A second rigid motion among the tracks PnP's consensus left out counts when it holds this share
# of the frame's points (rule 60): then the pose head picks the camera's.
SECOND_MOTION_SHARE = 0.25
# ... and only when the consensus is this unlikely under the head's variances (chi-square, 6 dof,
# 99.9 %): a consensus that agrees with the head needs no other.
SECOND_MOTION_GATE_CHI2 = 22.46
# Variance of one frame's motion that could not be seen (rotation rad^2, translation m^2): a blind
# camera may have moved anything a robot or a hand moves in a frame or a few.
UNSEEN_VARIANCE = (1.0, 1.0)
# A log-variance is read within these (the pose head's and a clip's; exp(10): "unknown", exp(-30):
# exact), so that an extreme output neither overflows nor claims certainty.
LOG_VARIANCE_LIMITS = (-30.0, 10.0)


@dataclass
class GeometryPose:
    """Per clip frame t (frame 0 is the identity). covariance: (T, 6, 6) of T_first_from_t in ROS
    order (x y z rx ry rz; metres, radians); variance: (T, 2) isotropic (rotation rad^2,
    translation m^2), the pose head's log-variance layout before the log."""

    rotation: np.ndarray  # (T, 3, 3)
    translation: np.ndarray  # (T, 3)
    covariance: np.ndarray  # (T, 6, 6)
    variance: np.ndarray  # (T, 2)
    inliers: np.ndarray  # (T,) int
    points: np.ndarray  # (T,) int: tracks usable in frame t (3-D point and visible)
    rmse_px: np.ndarray  # (T,) reprojection RMSE on the inliers
    rotation_only: np.ndarray  # (T,) bool
    valid: np.ndarray  # (T,) bool: False where the geometry is degenerate or gated
    gated: np.ndarray  # (T,) bool: solved, but discarded by the outlier gate (clip_pose); relinked ones solved again after
    still: np.ndarray  # (T,) bool: no image motion measured (solve_clip_motion's still test)
    relinked: np.ndarray  # (T,) bool: lost from frame 0, solved from frame t-1 (relink_lost_frames)
    rotation_steps: int = 0  # steps of the clip's rotation measured by the bearings (clip_pose)


@dataclass
class _FrameSolution:
    rvec: np.ndarray  # full PnP pose, T_t_from_first (OpenCV's object -> camera)
    tvec: np.ndarray
    rvec_rotation: np.ndarray  # the rotation-only fit to the same inliers
    inliers: np.ndarray  # indices into the frame's points
    ss_full: float  # squared reprojection residuals of each model on the inliers
    ss_rotation: float
    parallax_px: float  # image motion the full pose's translation causes (PARALLAX_QUANTILE over the points)
    rotation_only: bool = False

    def pose(self) -> tuple[np.ndarray, np.ndarray]:
        return (self.rvec_rotation, np.zeros(3)) if self.rotation_only else (self.rvec, self.tvec)


def back_project(depth0: np.ndarray, xy0: np.ndarray, k_model: np.ndarray) -> np.ndarray:
    """(Q, 3) camera-0 points of the (Q, 2) pixels xy0 with the depth at their nearest pixel; NaN
    where the pixel is outside the image or its depth is not finite and positive."""
    xy0 = np.asarray(xy0, float)
    z = sample_nearest(np.asarray(depth0, float), xy0[:, 0], xy0[:, 1], np.nan)
    z[~(z > 0)] = np.nan  # NaN compares False: non-finite and non-positive depth alike
    rays = np.linalg.solve(k_model, np.c_[xy0, np.ones(len(xy0))].T).T
    return rays * z[:, None]


def bearings(xy: np.ndarray, k_model: np.ndarray) -> np.ndarray:
    """(N, 2) pixels -> (N, 3) unit viewing rays in the camera frame."""
    rays = np.linalg.solve(k_model, np.c_[xy, np.ones(len(xy))].T).T
    return rays / np.linalg.norm(rays, axis=1, keepdims=True)


def kabsch_rotation(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The rotation R minimising sum |dst_i - R src_i|^2 (rows are vectors), det +1."""
    u, _, vt = np.linalg.svd(dst.T @ src)
    d = np.sign(np.linalg.det(u @ vt))
    return u @ np.diag([1.0, 1.0, d]) @ vt


def _reprojection(obj: np.ndarray, img: np.ndarray, rvec, tvec, k_model) -> tuple[np.ndarray, np.ndarray]:
    """Residuals (2N,) and their Jacobian (2N, 6) w.r.t. (rvec, tvec)."""
    proj, jac = cv2.projectPoints(obj, rvec, tvec, k_model, None)
    return (proj.reshape(-1, 2) - img).ravel(), jac[:, :6]


def _translation_flow(obj: np.ndarray, rvec, tvec, k_model) -> np.ndarray:
    """(N,) px each point of obj (N, 3) moves in the image by the pose's translation alone (the
    pose's projection with and without it)."""
    with_t = cv2.projectPoints(obj, rvec, tvec, k_model, None)[0].reshape(-1, 2)
    without_t = cv2.projectPoints(obj, rvec, np.zeros(3), k_model, None)[0].reshape(-1, 2)
    return np.linalg.norm(with_t - without_t, axis=1)


def _rotation_fit(obj, img, xy0, rvec, tvec, k_model) -> tuple[np.ndarray, float, float, float]:
    """The rotation fitted to the inliers' bearing vectors (Kabsch), and what tells it from the
    full pose: (rvec of the rotation, squared residuals of the full pose, of the rotation, and
    the parallax in px that the full pose's translation causes, its PARALLAX_QUANTILE over the points)."""
    rvec_rot = cv2.Rodrigues(kabsch_rotation(bearings(xy0, k_model), bearings(img, k_model)))[0].ravel()
    res_full, _ = _reprojection(obj, img, rvec, tvec, k_model)
    res_rot, _ = _reprojection(obj, img, rvec_rot, np.zeros(3), k_model)
    # A high quantile, not the median: a scene of near and far points (a floor before a far
    # background) shows a translation on its near points only (rule 58).
    parallax = float(np.percentile(_translation_flow(obj, rvec, tvec, k_model), PARALLAX_QUANTILE))
    return rvec_rot, float(res_full @ res_full), float(res_rot @ res_rot), parallax


def _is_rotation_only(solutions: list[_FrameSolution], parallax_px: float, f_threshold: float) -> bool:
    """Rotation only when the translation moves the points by less than parallax_px, or its 3
    parameters per frame explain no more than noise: the F statistic of the pooled residuals."""
    if not solutions:
        return False
    ss_full = sum(s.ss_full for s in solutions)
    ss_rot = sum(s.ss_rotation for s in solutions)
    dof = max(sum(2 * len(s.inliers) - 6 for s in solutions), 1)
    f_stat = ((ss_rot - ss_full) / (3 * len(solutions))) / max(ss_full / dof, 1e-12)
    return max(s.parallax_px for s in solutions) < parallax_px or f_stat < f_threshold


def _solve_frame(obj, img, xy0, k_model, ransac_px, min_inliers) -> _FrameSolution | None:
    """One frame's pose from its 3-D/2-D pairs, or None when degenerate."""
    if len(obj) < max(min_inliers, 4):
        return None
    try:
        ok, rvec, tvec, inl = cv2.solvePnPRansac(obj, img, k_model, None, iterationsCount=200,
                                                 reprojectionError=ransac_px, confidence=0.999,
                                                 flags=cv2.SOLVEPNP_SQPNP)
        if not ok or inl is None or len(inl) < min_inliers:
            return None
        inl = inl.ravel()
        for _ in range(2):  # RANSAC's inliers are those of a minimal sample: re-select with the refined pose
            rvec, tvec = cv2.solvePnPRefineLM(obj[inl], img[inl], k_model, None, rvec, tvec)
            res, _ = _reprojection(obj, img, rvec, tvec, k_model)
            inl = np.flatnonzero(np.hypot(res[0::2], res[1::2]) < ransac_px)
            if len(inl) < min_inliers:
                return None
    except cv2.error:  # SQPnP fails on near-coincident points (seen in the fuzz test): degenerate
        return None
    fit = _rotation_fit(obj[inl], img[inl], xy0[inl], rvec, tvec, k_model)
    return _FrameSolution(rvec.ravel(), tvec.ravel(), fit[0], inl, *fit[1:])


def _still(obj: np.ndarray, img: np.ndarray, xy0: np.ndarray, stayed: np.ndarray, sol: _FrameSolution | None,
           k_model, parallax_px: float, min_inliers: int, width: int) -> str:
    """Whether this frame's image motion is measured (obj, img: its 3-D/2-D pairs; stayed: which
    of them moved less than parallax_px from frame 0; sol: PnP on all of them).
    "identity": at least min_inliers tracks stayed, and PnP's motion rests on fewer than
    min_inliers tracks that moved (its consensus is the stayed tracks), or it misses stayed tracks
    by more than 3 x parallax_px, at least as many as the moved tracks it explains: the identity
    is then as good a hypothesis as PnP's (a still camera, or something moving through its view).
    "most_stayed": otherwise, when most tracks stayed. "": the motion is measured."""
    if sol is not None and stayed.sum() >= min_inliers:
        inlier = np.zeros(len(obj), bool)
        inlier[sol.inliers] = True
        moved_inliers = int((inlier & ~stayed).sum())
        proj = cv2.projectPoints(obj, sol.rvec, sol.tvec, k_model, None)[0].reshape(-1, 2)
        missed = int((stayed & (np.linalg.norm(proj - img, axis=1) > 3 * parallax_px)).sum())
        if moved_inliers < min_inliers or missed >= max(min_inliers, moved_inliers):
            return "identity"
    if 2 * stayed.sum() <= len(stayed):
        return ""
    return "" if _one_motion_moves_some(obj, img, xy0, stayed, k_model, parallax_px, min_inliers, width) else "most_stayed"


def _one_motion_moves_some(obj, img, xy0, stayed, k_model, parallax_px: float, min_inliers: int, width: int) -> bool:
    """Whether a frame most of whose tracks stayed shows a camera moving past a far background (a
    robot driving forward: the floor near it flows, most of the view does not), which the rule
    "most tracks stayed" reads as still (rule 58). All must hold:
    - one motion fitted to MOTION_FIT_PX keeps STAYED_KEPT of the stayed tracks and moves
      min_inliers others by MOTION_SEEN_PX or more (a still camera's jitter, or something moving
      through its view together with the background, fits no one motion);
    - the stayed tracks stay because they are far, not because a turn cancels the translation's
      image motion there (a near object sliding past a background a few metres away fits a
      translation and the turn that holds the background);
    - the moved tracks do not all slide by one image shift (a person walking past a still camera
      whose view is far fits a sideways translation as well; a moving camera's near scene flows
      apart, by each point's place and depth);
    - they span MOVED_SPAN of the image width (the near floor or wall a moving camera sees spans
      the view; a person walking up to a still camera, whose tracks flow apart too, does not)."""
    shifted = np.linalg.norm(img - xy0, axis=1) >= MOTION_SEEN_PX
    if shifted.sum() < min_inliers:  # too few moved to be measured: no PnP (a still camera's frames)
        return False
    sol = _solve_frame(obj, img, xy0, k_model, MOTION_FIT_PX, min_inliers)
    if sol is None:
        return False
    inlier = np.zeros(len(obj), bool)
    inlier[sol.inliers] = True
    moved = inlier & shifted
    if (inlier & stayed).sum() < STAYED_KEPT * stayed.sum() or moved.sum() < min_inliers:
        return False
    if np.median(_translation_flow(obj[stayed], sol.rvec, sol.tvec, k_model)) >= parallax_px:
        return False
    flow = (img - xy0)[moved]
    spread = np.sqrt(((flow - flow.mean(axis=0)) ** 2).sum(axis=1).mean())
    return spread >= 0.5 * np.linalg.norm(flow, axis=1).mean() and np.ptp(xy0[moved, 0]) >= MOVED_SPAN * width


def _motion_nearer_the_prior(sol: _FrameSolution | None, obj, img, xy0, k_model, ransac_px: float,
                             min_inliers: int, prior: tuple[np.ndarray, np.ndarray, np.ndarray]) -> _FrameSolution | None:
    """PnP's consensus, or a second rigid motion that the tracks it left out agree on, whichever is
    nearer the prior (the pose head's T_first_from_t of this frame: rotation (3, 3), translation (3,),
    variance (rotation rad^2, translation m^2)), when that second motion holds SECOND_MOTION_SHARE of
    the points too. Something moving through the view that holds most tracks (a bus passing, a
    crowd) is PnP's consensus, and its motion passed the rotation gate (rule 60)."""
    n = len(obj)
    if sol is None or n - len(sol.inliers) < max(min_inliers, SECOND_MOTION_SHARE * n):
        return sol

    def distance(s: _FrameSolution) -> float:
        r = cv2.Rodrigues(s.rvec)[0]
        turn = cv2.Rodrigues(prior[0].T @ r.T)[0].ravel()
        return float(turn @ turn / prior[2][0] + np.sum((-r.T @ s.tvec - prior[1]) ** 2) / prior[2][1])

    # The consensus agrees with the head: no second search (on noisy clips whose outliers share no
    # motion it ran all its RANSAC iterations for nothing, 20 -> 63 ms a clip of the pose stage).
    near = distance(sol)
    if near < SECOND_MOTION_GATE_CHI2:
        return sol
    rest = np.setdiff1d(np.arange(n), sol.inliers)
    other = _solve_frame(obj[rest], img[rest], xy0[rest], k_model, ransac_px, min_inliers)
    if other is None or len(other.inliers) < max(min_inliers, SECOND_MOTION_SHARE * n):
        return sol
    other.inliers = rest[other.inliers]
    return other if distance(other) < near else sol


def _first_from_t(params: np.ndarray) -> np.ndarray:
    """(rvec, tvec) of T_t_from_first -> (t, rotation vector) of T_first_from_t (ROS order)."""
    r = cv2.Rodrigues(params[:3])[0]
    return np.concatenate([-r.T @ params[3:], cv2.Rodrigues(r.T)[0].ravel()])


def _covariance(obj, img, sol: _FrameSolution, k_model, min_sigma_px: float) -> np.ndarray:
    """6x6 covariance (ROS order) of T_first_from_t: Gauss-Newton sigma^2 (J^T J)^-1 of the
    reprojection on the inliers, through the numeric Jacobian of the inversion."""
    o, i = obj[sol.inliers], img[sol.inliers]
    rvec, tvec = sol.pose()
    res, jac = _reprojection(o, i, rvec, tvec, k_model)
    dof = max(len(res) - 6, 1)
    sigma2 = max(float(res @ res) / dof, min_sigma_px ** 2)
    cov = sigma2 * np.linalg.pinv(jac.T @ jac)
    params = np.concatenate([rvec, tvec])
    eps = 1e-6
    g = np.stack([(_first_from_t(params + eps * e) - _first_from_t(params - eps * e)) / (2 * eps)
                  for e in np.eye(6)], axis=1)
    return g @ cov @ g.T


def solve_clip_motion(depth0: np.ndarray, xy: np.ndarray, visible: np.ndarray, k_model: np.ndarray,
                      usable: np.ndarray | None = None, ransac_px: float = 3.0, min_inliers: int = 8,
                      parallax_px: float = PARALLAX_PX, f_threshold: float = 3.0, rotation_test: str = "frame",
                      min_sigma_px: float = 0.25, visibility_threshold: float = 0.5,
                      prior: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> GeometryPose:
    """depth0: (H, W) metres of the clip's first frame (NaN/<=0 invalid); xy: (Q, T, 2) track
    positions (model px, x y); visible: (Q, T) bool or probability; k_model: 3x3 K of the model
    image; usable: (Q,) bool, False for padding queries. rotation_test: "frame" decides
    rotation-only for each frame; "clip" once for the whole clip on the pooled residuals (it keeps
    the translation from switching on and off frame to frame, but measured no better on the
    validation scene and worse on 7-Scenes: docs/results/pose_geometry). prior: the pose head's
    (rotation (T, 3, 3), translation (T, 3), variance (T, 2)), which picks between two rigid motions
    the tracks hold (_motion_nearer_the_prior), or None. Returns T_first_from_t."""
    xy = np.asarray(xy, np.float64)
    q, t_len = xy.shape[:2]
    vis = np.asarray(visible) >= visibility_threshold if np.asarray(visible).dtype != bool else np.asarray(visible)
    k_model = np.asarray(k_model, np.float64)
    pts = back_project(np.asarray(depth0, np.float64), xy[:, 0], k_model)
    has_point = np.isfinite(pts).all(axis=1) & vis[:, 0] & (np.ones(q, bool) if usable is None else usable)
    frames = {}  # t -> (solution, its 3-D points, its 2-D points)
    points = np.zeros(t_len, int)
    points[0] = int(has_point.sum())
    still = np.zeros(t_len, bool)
    still[0] = True
    moved = np.linalg.norm(xy - xy[:, :1], axis=2)  # (Q, T) model px from frame 0
    reason, most_stayed = "", []
    for t in range(1, t_len):
        sel = has_point & vis[:, t] & np.isfinite(xy[:, t]).all(axis=1)
        points[t] = int(sel.sum())
        stayed = sel & (moved[:, t] < parallax_px)
        sol = _solve_frame(pts[sel], xy[sel, t], xy[sel, 0], k_model, ransac_px, min_inliers)
        reason = _still(pts[sel], xy[sel, t], xy[sel, 0], stayed[sel], sol, k_model, parallax_px, min_inliers,
                        depth0.shape[1])
        still[t] = bool(reason)
        most_stayed += [t] if reason == "most_stayed" else []
        if reason == "identity":  # the frame's pose is the stayed tracks', not PnP's consensus
            sel = stayed
            sol = _solve_frame(pts[sel], xy[sel, t], xy[sel, 0], k_model, ransac_px, min_inliers)
        elif not reason and prior is not None:
            sol = _motion_nearer_the_prior(sol, pts[sel], xy[sel, t], xy[sel, 0], k_model, ransac_px, min_inliers,
                                           (prior[0][t], prior[1][t], prior[2][t]))
        if sol is not None:
            frames[t] = (sol, pts[sel], xy[sel, t])
    # A clip whose last frame the identity explains best is still throughout, on the tracks that
    # stayed in every frame: in its first frames a mover's few pixels fit, within ransac_px, a
    # motion halfway between it and the background, so that neither set is left out.
    # A clip whose last frame is measured moved from its start: its earlier frames where most tracks
    # had not yet moved half a pixel are measured too (rule 61). Held still, they anchored the next
    # clip steps behind (a forward drive read +18 %) and clips flipped between still and moving.
    if not reason and t_len - 1 in frames:
        still[most_stayed] = False
    anchored = has_point & (moved[:, 1:] < parallax_px).all(axis=1)
    if reason == "identity" and anchored.sum() >= min_inliers:
        for t in np.flatnonzero(~still):
            sel = anchored & vis[:, t] & np.isfinite(xy[:, t]).all(axis=1)
            sol = _solve_frame(pts[sel], xy[sel, t], xy[sel, 0], k_model, ransac_px, min_inliers)
            if sol is not None:
                still[t], frames[t] = True, (sol, pts[sel], xy[sel, t])
    _mark_rotation_only(frames, still, rotation_test, parallax_px, f_threshold)
    return _collect(frames, points, still, t_len, k_model, min_sigma_px)


def _mark_rotation_only(frames: dict, still: np.ndarray, rotation_test: str, parallax_px: float,
                        f_threshold: float) -> None:
    """Each frame solution's rotation_only, in place: per frame, or once on the clip's pooled residuals."""
    if rotation_test not in ("clip", "frame"):
        raise ValueError(f"rotation_test must be clip or frame, got {rotation_test!r}")
    for t, (sol, _, _) in frames.items():
        group = [f[0] for f in frames.values()] if rotation_test == "clip" else [sol]
        # Tracks that did not move measure no translation, however PnP trades it against rotation.
        sol.rotation_only = bool(still[t]) or _is_rotation_only(group, parallax_px, f_threshold)


def _collect(frames: dict, points: np.ndarray, still: np.ndarray, t_len: int, k_model, min_sigma_px) -> GeometryPose:
    """GeometryPose (T_first_from_t, covariances) from the chosen per-frame solutions."""
    out = GeometryPose(np.tile(np.eye(3), (t_len, 1, 1)), np.zeros((t_len, 3)), np.zeros((t_len, 6, 6)),
                       np.zeros((t_len, 2)), np.zeros(t_len, int), points, np.zeros(t_len),
                       np.zeros(t_len, bool), np.zeros(t_len, bool), np.zeros(t_len, bool), still,
                       np.zeros(t_len, bool))
    out.valid[0] = True  # frame 0 is the clip's origin by definition
    out.inliers[0] = points[0]
    for t, (sol, obj, img) in frames.items():
        rvec, tvec = sol.pose()
        r = cv2.Rodrigues(rvec)[0]
        out.rotation[t], out.translation[t] = r.T, -r.T @ tvec
        out.covariance[t] = _covariance(obj, img, sol, k_model, min_sigma_px)
        out.variance[t] = (np.trace(out.covariance[t][3:, 3:]) / 3, np.trace(out.covariance[t][:3, :3]) / 3)
        res, _ = _reprojection(obj[sol.inliers], img[sol.inliers], rvec, tvec, k_model)
        out.inliers[t], out.rmse_px[t] = len(sol.inliers), float(np.sqrt(np.mean(res ** 2) * 2))
        out.rotation_only[t], out.valid[t] = sol.rotation_only, True
    return out


def relink_lost_frames(geo: GeometryPose, step: Callable[[int], GeometryPose | None], held: np.ndarray) -> None:
    """Frames the clip's geometry lost (not valid: degenerate or gated; not still, not held) solved
    from the frame before them instead of from frame 0, in place: T_first_from_t =
    T_first_from_(t-1) T_(t-1)_from_t, where frame t-1 has a geometric pose (frame 0 always, or one
    relinked) and is not held. step(t) -> the two-frame GeometryPose of frames (t-1, t) (e.g. PnP
    on fresh corners of t-1 followed to t), or None. Covariances and variances add (the step's
    carried into frame 0's axes). The frames relinked are marked in geo.relinked.

    Why: on a slow camera (10 Hz) a clip spans 0.8 s and turns 25-33 degrees on the validation desk;
    the tracks that frame 0 seeded are gone by its last frames (PnP inliers 0 by frame 7), which then
    took the pose head's rotation, a quarter of the camera's at that rate (docs/results/session35)."""
    for t in range(1, len(geo.valid)):
        if geo.valid[t] or geo.still[t] or held[t] or held[t - 1] or not geo.valid[t - 1]:
            continue  # never from a frame the images cannot show (its pose is held, not measured)
        pair = step(t)
        if pair is None or not pair.valid[1]:
            continue
        before = geo.rotation[t - 1]
        geo.rotation[t] = before @ pair.rotation[1]
        geo.translation[t] = geo.translation[t - 1] + before @ pair.translation[1]
        axes = np.kron(np.eye(2), before)  # ROS order: (x y z) and (rx ry rz) both turn with frame t-1
        geo.covariance[t] = geo.covariance[t - 1] + axes @ pair.covariance[1] @ axes.T
        geo.variance[t] = geo.variance[t - 1] + pair.variance[1]
        geo.inliers[t], geo.points[t], geo.rmse_px[t] = pair.inliers[1], pair.points[1], pair.rmse_px[1]
        geo.rotation_only[t] = pair.rotation_only[1]
        geo.valid[t], geo.relinked[t] = True, True  # gated stays: the gate fired (pose_geometry_gated counts it)


def gate_outliers(head_rotation: np.ndarray, head_variance: np.ndarray, geo: GeometryPose,
                  chi2_max: float, head_translation: np.ndarray | None = None) -> np.ndarray:
    """(T,) bool: the valid geometry frames whose rotation differs from the head's by more than
    chi2_max: |log(R_head^T R_geo)|^2 / (var_head + var_geo), rotation variances in rad^2 per axis
    (isotropic), is chi-square with 3 dof when both are right. With head_translation ((T, 3)), also
    those whose measured translation (not rotation-only) differs from the head's by more than chi2_max:
    |t_head - t_geo|^2 / (var_head + var_geo), translation variances in m^2 per axis, 3 dof; and then
    every measured frame before the last one so gated. Frame 0 (the origin) is never gated;
    chi2_max <= 0 gates nothing.
    Why the translation: a camera spinning in place on a small image (128x96 at 240 deg/s): the tracks of
    points leaving its view lag behind the turn, and PnP on the model's near-flat depth explained them by
    a translation instead (1.8 m in a quarter of a second with 3 cm of its own sd; the head 4 cm, sd 19
    cm) and a turn within the head's wide rotation variance, so the odometry read 4 m of travel at 27
    sd (session 68). Why the frames before: each is solved from frame 0 on the same tracks, so the trade
    grows with the motion and stays under the gate in the frames before the one it fails in (0.2 m at
    frame 1, each sd 1 cm): the same wrong measurement, gated alone it still published 0.9 m at 7 sd."""
    gated = np.zeros(len(head_rotation), bool)
    if chi2_max <= 0:
        return gated
    for t in np.flatnonzero(geo.valid[1:]) + 1:
        angle = np.linalg.norm(cv2.Rodrigues(np.asarray(head_rotation[t], float).T @ geo.rotation[t])[0])
        gated[t] = angle ** 2 / max(float(head_variance[t, 0] + geo.variance[t, 0]), 1e-12) > chi2_max
    if head_translation is None:
        return gated
    # A rotation-only frame's zero translation is no measurement: the geometry saw none above noise.
    measured = geo.valid & ~geo.rotation_only
    miss = np.sum((np.asarray(head_translation, float) - geo.translation) ** 2, axis=1)
    spread = np.maximum(np.asarray(head_variance, float)[:, 1] + geo.variance[:, 1], 1e-12)
    far = np.flatnonzero(measured[1:] & (miss[1:] / spread[1:] > chi2_max)) + 1
    if len(far):
        gated[1:far[-1] + 1] |= measured[1:far[-1] + 1]
    return gated


def fuse(head_rotation: np.ndarray, head_translation: np.ndarray, head_variance: np.ndarray,
         geo_rotation: np.ndarray, geo_translation: np.ndarray, geo_variance: np.ndarray,
         geo_valid: np.ndarray | None = None, keep_sizes: bool = False
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inverse-variance fusion of two T_first_from_t sequences, frame by frame.

    rotations (T, 3, 3), translations (T, 3), variances (T, 2) (rotation rad^2, translation m^2,
    isotropic). Rotation: the head's rotation moved toward the geometry's along the geodesic, by
    the geometry's weight var_head / (var_head + var_geo) (a weighted mean on the tangent space);
    translation: the weighted mean; with keep_sizes, the weighted mean's direction at the weighted
    mean of the two sizes (two translations pointing different ways average to a shorter one than
    either measured, and a camera does not move less because its two estimates disagree on where).
    Frames where geo_valid is False keep the head's values.
    Returns (rotation, translation, variance) with the fused variance 1 / (1/var_h + 1/var_g)."""
    head_variance = np.asarray(head_variance, float)
    geo_variance = np.maximum(np.asarray(geo_variance, float), 1e-12)
    valid = np.ones(len(head_rotation), bool) if geo_valid is None else np.asarray(geo_valid, bool)
    weight = head_variance / (head_variance + geo_variance)  # (T, 2): the geometry's share
    rotation = np.array(head_rotation, float, copy=True)
    translation = np.array(head_translation, float, copy=True)
    variance = np.array(head_variance, float, copy=True)
    for t in np.flatnonzero(valid):
        delta = cv2.Rodrigues(np.asarray(head_rotation[t], float).T @ geo_rotation[t])[0]
        rotation[t] = head_rotation[t] @ cv2.Rodrigues(weight[t, 0] * delta)[0]
        translation[t] = (1 - weight[t, 1]) * head_translation[t] + weight[t, 1] * geo_translation[t]
        size = float(np.linalg.norm(translation[t])) if keep_sizes else 0.0
        if size > 0:
            translation[t] *= ((1 - weight[t, 1]) * np.linalg.norm(head_translation[t])
                               + weight[t, 1] * np.linalg.norm(geo_translation[t])) / size
        variance[t] = head_variance[t] * geo_variance[t] / (head_variance[t] + geo_variance[t])
    return rotation, translation, variance


def head_overruled(outputs: dict, geo: GeometryPose) -> bool:
    """Whether the pose head's translation of the clip's last frame (outputs pose_translation
    (1, T, 3)) points more than 90 degrees away from the geometry's, where the geometry solved that
    frame and both moved. Why: the head is a prior learned from its training recordings' motion;
    pointing against the geometry, it is describing motion it learned, not this one (the HoloLens
    walk played backwards: 140 degrees on most clips), and a team should see how often fusion
    overrules it (pose_head_overruled on /diagnostics)."""
    head = np.asarray(outputs["pose_translation"][0][-1], float)
    solved = np.asarray(geo.translation[-1], float)
    return bool(geo.valid[-1] and np.linalg.norm(head) > 0 and np.linalg.norm(solved) > 0 and head @ solved < 0)


# How far (rad) a clip's unwrapped rotation vectors may step beyond the frame's own turn before the
# smoothing leaves its rotations as solved: along a fixed axis the two are equal, noise adds a degree
# or two; near a full turn a one-degree tilt steps them by tens of degrees.
UNWRAP_TOLERANCE = np.radians(10.0)


def unwrapped_rotation_vectors(rotation: np.ndarray) -> np.ndarray | None:
    """(T, 3, 3) rotations -> their rotation vectors made continuous along the clip, or None where no
    continuous sequence exists. Where a vector (angle in [0, pi]) jumps from the one before by more
    than pi, it is replaced by the same rotation with 2 pi k added to its angle (v (1 + 2 pi k / |v|)),
    k the whole number that puts it nearest the one before. A clip turning less than 180 degrees has
    no such jump, and its vectors are returned as they are."""
    out = np.stack([cv2.Rodrigues(np.asarray(r, float))[0].ravel() for r in rotation])
    unwrapped = False
    for t in range(1, len(out)):
        if np.linalg.norm(out[t] - out[t - 1]) <= np.pi:  # (then the one before is not 0: |out[t]| <= pi)
            continue
        angle = float(np.linalg.norm(out[t]))
        # The candidates sit on the axis at angle + 2 pi k. A full turn (the identity) has no axis of
        # its own: the one before's keeps the clip's turn going (60 degrees a frame read 0 at frame 6).
        axis = out[t] / angle if angle > 1e-9 else out[t - 1] / np.linalg.norm(out[t - 1])
        k = round((float(axis @ out[t - 1]) - angle) / (2 * np.pi))
        out[t], unwrapped = axis * (angle + 2 * np.pi * k), True
    if unwrapped:
        # Near a full turn the vectors are singular (a rotation a degree off the axis sits far from the
        # axis' 2 pi): a step that is not about the frame's own turn leaves a kink no polynomial fits
        # (a noisy clip at 60 degrees a frame came out 110 degrees off).
        turns = [np.linalg.norm(cv2.Rodrigues(np.asarray(a, float).T @ np.asarray(b, float))[0])
                 for a, b in zip(rotation[:-1], rotation[1:])]
        if np.any(np.linalg.norm(np.diff(out, axis=0), axis=1) > np.asarray(turns) + UNWRAP_TOLERANCE):
            return None
    return out


def smooth_clip_motion(rotation: np.ndarray, translation: np.ndarray, variance: np.ndarray, order: int,
                       stamps_ns: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A clip's T_first_from_t (rotation (T, 3, 3), translation (T, 3)) replaced by the polynomial of
    degree `order` in t through the origin (frame 0 is the identity) that fits the per-frame values
    best, each frame weighted by its inverse variance (variance (T, 2): rotation rad^2, translation
    m^2). Rotations are fitted as rotation vectors, exact enough for the few degrees a clip turns,
    unwrapped along the clip first: a vector's angle wraps at pi, and a clip turning past 180 degrees
    (26 degrees a frame: a fast spin, or a low frame rate) was fitted through the jump, up to 137
    degrees off; where they cannot be made continuous (a frame near a full turn), the rotations are
    kept as solved.
    Why: every frame is solved on its own, so its error is independent of its neighbours', while a
    camera's motion over a clip (8 frames, a quarter of a second at 30 Hz) is smooth; the error of
    the clip's last frame is carried into every later clip by the chain. order 0: unchanged.
    The variances stay the per-frame ones: the fit's own would be smaller, but only as right as the
    smooth-motion assumption, so the published covariance stays the conservative one.
    stamps_ns: (T,) the frames' times; the polynomial is in time, so a clip with a dropped frame
    is fitted where its frames really were (None or not increasing: evenly spaced)."""
    t_len = len(rotation)
    if order <= 0 or t_len <= order + 1:
        return rotation, translation
    steps = np.arange(t_len, dtype=float)
    if stamps_ns is not None and np.all(np.diff(np.asarray(stamps_ns, np.int64)) > 0):
        steps = (np.asarray(stamps_ns, np.int64) - int(stamps_ns[0])).astype(float)
    steps /= steps[-1]
    basis = np.stack([steps ** (p + 1) for p in range(order)], axis=1)  # (T, order): 0 at t = 0
    rotvec = unwrapped_rotation_vectors(rotation)
    fitted = []
    for values, var in ((rotvec, variance[:, 0]), (np.asarray(translation, float), variance[:, 1])):
        if values is None:  # no continuous rotation vectors to fit: the rotations as solved
            fitted.append(None)
            continue
        w = np.sqrt(1.0 / np.maximum(np.asarray(var, float), 1e-12))[1:, None]
        coef = np.linalg.lstsq(basis[1:] * w, values[1:] * w, rcond=None)[0]
        fitted.append(basis @ coef)
    return rotation if rotvec is None else np.stack([cv2.Rodrigues(v)[0] for v in fitted[0]]), fitted[1]


# A step's rotation from the bearings is kept only where this quantile of its inliers' residual is under
# pose_rotation_step_px (rule 68a).
ROTATION_STEP_QUANTILE = 90
# Inliers of a bearing step: residual under this many times the median residual, and never under
# ROTATION_STEP_FLOOR_PX (noise-free tracks would otherwise keep too few).
ROTATION_STEP_SPREAD = 3.0
ROTATION_STEP_FLOOR_PX = 0.5
# ... and only where its inliers span at least this many model pixels across their narrowest direction (RMS):
# tracks bunched on one spot leave the turn about their ray unmeasured, and still fit to 0 px (a review
# found a step 96 degrees off from ten tracks on one pixel).
ROTATION_STEP_MIN_SPAN_PX = 4.0


def fit_turn(xy_prev: np.ndarray, xy_next: np.ndarray, k: np.ndarray, min_points: int
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The turn prev_from_next (3, 3) that best explains the same points in two frames (xy_prev, xy_next:
    (N, 2) pixels of the camera k), from their bearings: Kabsch, refitted twice on the points it
    explains (ROTATION_STEP_SPREAD x the median residual, at least ROTATION_STEP_FLOOR_PX). -> (turn,
    keep: (N,) bool the points of the last selection, residual: (N,) px of every point in the next frame
    under the turn, infinite behind it), or None where fewer than min_points remain."""
    b_prev, b_next = bearings(xy_prev, k), bearings(xy_next, k)
    keep = np.ones(len(b_prev), bool)
    for _ in range(2):  # fit, select, refit, select: two passes of selection
        rotation = kabsch_rotation(b_next[keep], b_prev[keep])
        residual = _turned_residual(rotation, b_prev, xy_next, k)
        keep = residual < max(ROTATION_STEP_SPREAD * np.median(residual), ROTATION_STEP_FLOOR_PX)
        if keep.sum() < min_points:
            return None
    rotation = kabsch_rotation(b_next[keep], b_prev[keep])
    return rotation, keep, _turned_residual(rotation, b_prev, xy_next, k)


def bearing_step(xy_prev: np.ndarray, xy_next: np.ndarray, k_model: np.ndarray, max_px: float,
                 min_tracks: int = 8) -> np.ndarray | None:
    """The rotation prev_from_next (3, 3) of a camera that only turned between two frames, from the
    bearings of the same tracks in both (xy_prev, xy_next: (N, 2) model pixels): fit_turn. None where
    fewer than min_tracks remain, or where the rotation does not explain them: the
    ROTATION_STEP_QUANTILE of the inliers' residual (px, next frame) above max_px (a translation's
    parallax, or tracks that disagree), or where they span less than ROTATION_STEP_MIN_SPAN_PX."""
    fit = fit_turn(xy_prev, xy_next, k_model, min_tracks) if len(xy_prev) >= min_tracks else None
    if fit is None:
        return None
    rotation, keep, residual = fit
    kept = xy_next[keep]
    if np.linalg.svd(kept - kept.mean(axis=0), compute_uv=False)[-1] / np.sqrt(len(kept)) < ROTATION_STEP_MIN_SPAN_PX:
        return None
    return rotation if np.percentile(residual[keep], ROTATION_STEP_QUANTILE) < max_px else None


def _turned_residual(prev_from_next: np.ndarray, b_prev: np.ndarray, xy_next: np.ndarray, k_model) -> np.ndarray:
    """(N,) px between xy_next and the directions b_prev turned into the next camera and projected;
    infinite where one falls behind it."""
    projected = (k_model @ (prev_from_next.T @ b_prev.T)).T
    with np.errstate(divide="ignore", invalid="ignore"):
        residual = np.linalg.norm(projected[:, :2] / projected[:, 2:3] - xy_next, axis=1)
    return np.where(projected[:, 2] > 0, residual, np.inf)


# A step between two frames whose stamps differ from the clip's median step by more than this share of it is off
# the camera's period: stamps that cannot be the capture times. Why: a camera stamped on arrival bunches frames
# 1 ms apart; the image's own rotation over such a step, divided by 1 ms, published a 33x yaw rate with a small
# covariance. Ordinary jitter stays under it (TUM fr1's Kinect: at most 25 % off its 32 ms).
OFF_PERIOD_SHARE = 0.5


def off_period_frames(stamps_ns, frames: int) -> np.ndarray:
    """(T,) bool: the frames at either end of a step whose stamps are off the clip's period (OFF_PERIOD_SHARE).
    Steps measured from the images (bearing steps, step rotations) skip them, so that the fit in stamp time
    stands there. All False without stamps or with fewer than 3."""
    off = np.zeros(frames, bool)
    if stamps_ns is None or len(stamps_ns) < 3:
        return off
    dt = np.diff(np.asarray(stamps_ns, np.int64)).astype(float)
    step_off = np.abs(dt - np.median(dt)) > OFF_PERIOD_SHARE * np.median(dt)
    off[1:] |= step_off
    off[:-1] |= step_off
    return off


def rotation_from_bearing_steps(rotation: np.ndarray, xy: np.ndarray, visible: np.ndarray, k_model: np.ndarray,
                                max_px: float, usable: np.ndarray | None = None, skip: np.ndarray | None = None
                                ) -> tuple[np.ndarray, int]:
    """A clip's rotations first_from_t (T, 3, 3) with each step from frame t-1 to t replaced by the
    bearing_step of the tracks visible in both (xy: (Q, T, 2) model pixels, visible: (Q, T) > 0.5,
    usable: (Q,) bool or None), where one is measured and neither frame is in skip ((T,) bool);
    the clip's rotations are then the chained steps. -> (rotations, steps replaced).
    Why (rules 68-68a): each frame's solved rotation rests on the model's depth and is noisy, while a
    camera that only turns moves the tracks' bearings by the turn alone, which they measure without
    depth. Only where a turn is all there is: a sideways translation moves the image as a turn does,
    and bare bearings read it as one (rules 66-67, docs/results/session58/RULES.md)."""
    rotation = np.asarray(rotation, float)
    seen = (np.asarray(visible) > 0.5) & np.isfinite(xy).all(axis=2)  # a NaN or inf position is no track
    if usable is not None:
        seen = seen & np.asarray(usable, bool)[:, None]
    skip = np.zeros(len(rotation), bool) if skip is None else np.asarray(skip, bool)
    out, replaced = [rotation[0]], 0
    for t in range(1, len(rotation)):
        step = rotation[t - 1].T @ rotation[t]
        both = seen[:, t - 1] & seen[:, t]
        measured = None if skip[t] or skip[t - 1] else bearing_step(xy[both, t - 1], xy[both, t], k_model, max_px)
        if measured is not None:
            step, replaced = measured, replaced + 1
        out.append(out[-1] @ step)
    return np.stack(out), replaced


def hold_unseen(rotation: np.ndarray, translation: np.ndarray, variance: np.ndarray, unseen: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """T_first_from_t (rotation (T, 3, 3), translation (T, 3), variance (T, 2)) with each unseen frame
    (unseen: (T,) bool; frame 0, the clip's origin, never is) held at the pose of the last frame
    seen before it: no motion is measured. Its variance is that frame's plus UNSEEN_VARIANCE for
    each frame since, so the covariance says that any motion could have happened, and keeps
    saying it frame after frame (odometry derives the twist's covariance from the difference
    between consecutive frames'). Copies; the inputs are not changed."""
    rotation, translation = np.array(rotation, float), np.array(translation, float)
    variance = np.array(variance, float)
    last = 0
    for t in range(1, len(rotation)):
        if unseen[t]:
            rotation[t], translation[t] = rotation[last], translation[last]
            variance[t] = variance[last] + (t - last) * np.asarray(UNSEEN_VARIANCE)
        else:
            last = t
    return rotation, translation, variance


# A pose head frame beyond these is no motion of a camera within one clip (under 2 s): a wrong output
# (fp16 saturates at 65504; an engine built wrong), held as a non-finite one is. 100 m in a clip is 180 km/h
# for 2 s; the head's rotations come from a 6-D Gram-Schmidt, orthonormal to about 1e-3 in fp16.
HEAD_MAX_TRANSLATION_M = 100.0
HEAD_MAX_ROTATION_ERROR = 0.1  # max |R^T R - I| (and det R > 0.5)


def finite_head(outputs: dict) -> tuple[dict, np.ndarray, np.ndarray]:
    """outputs with the pose head's unusable frames held at the frame before them (frame 0: the clip's
    origin) with the largest variance (LOG_VARIANCE_LIMITS' upper), so that the geometry decides them where
    it can and a hold where it cannot; -> (outputs, (T,) bool frames not finite (a NaN or inf in
    pose_rotation, pose_translation or pose_log_variance, batch 1), (T,) bool frames finite but no motion:
    a rotation that is none or a translation over HEAD_MAX_TRANSLATION_M). One NaN frame (fp16 on a GPU can
    overflow) made the fusion's smoothing or the odometry's SVD raise, and the clip's pose and tracks were
    lost; as no motion from the clip's first frame it sent the camera back to that frame. A finite 65504 m
    went into the odometry, TF and path with pose_source head (a 93 km jump), and stayed there."""
    r, t, lv = (np.array(outputs[k][0], float) for k in ("pose_rotation", "pose_translation", "pose_log_variance"))
    nonfinite = ~(np.isfinite(r).all(axis=(1, 2)) & np.isfinite(t).all(axis=1) & np.isfinite(lv).all(axis=1))
    with np.errstate(invalid="ignore", over="ignore"):
        error = np.abs(np.einsum("tji,tjk->tik", r, r) - np.eye(3)).max(axis=(1, 2))
        implausible = ~nonfinite & ((error > HEAD_MAX_ROTATION_ERROR) | ~(np.linalg.det(np.nan_to_num(r)) > 0.5)
                                    | (np.linalg.norm(t, axis=1) > HEAD_MAX_TRANSLATION_M))
    bad = nonfinite | implausible
    if not bad.any():
        return outputs, nonfinite, implausible
    for i in np.flatnonzero(bad):  # in order: a run of bad frames holds the last good one
        r[i], t[i] = (r[i - 1], t[i - 1]) if i else (np.eye(3), np.zeros(3))
        lv[i] = LOG_VARIANCE_LIMITS[1]
    outputs = {**outputs, "pose_rotation": r[None], "pose_translation": t[None], "pose_log_variance": lv[None]}
    return outputs, nonfinite, implausible


def _combine(mode: str, head_r, head_t, head_var, geo: GeometryPose, fuse_sizes: bool
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """clip_pose's (rotation, translation, variance) of the head and the geometry in `mode`:
    geometry | fused."""
    if mode == "geometry":  # the geometry's own values, the head's only where it is degenerate
        valid = geo.valid
        return (np.where(valid[:, None, None], geo.rotation, head_r), np.where(valid[:, None], geo.translation, head_t),
                np.where(valid[:, None], geo.variance, head_var))
    rotation, translation, variance = fuse(head_r, head_t, head_var, geo.rotation, geo.translation,
                                           geo.variance, geo.valid, keep_sizes=fuse_sizes)
    # Where the image did not move, the geometry's (near) identity alone: blended by variance,
    # a confident head's phantom motion would still leak in (8 cm in 3 s on a real still frame).
    own = geo.still & geo.valid
    return (np.where(own[:, None, None], geo.rotation, rotation), np.where(own[:, None], geo.translation, translation),
            np.where(own[:, None], geo.variance, variance))


def clip_pose(outputs: dict, k_model: np.ndarray, mode: str = "fused", usable: np.ndarray | None = None,
              track_xy: np.ndarray | None = None, gate_chi2: float = GATE_CHI2_999, smoothing_order: int = 0,
              stamps_ns: np.ndarray | None = None, unseen: np.ndarray | None = None,
              relink: Callable[[int], GeometryPose | None] | None = None, fuse_sizes: bool = False,
              rotation_step_px: float = 0.0, **solver) -> tuple[np.ndarray, np.ndarray, np.ndarray, GeometryPose | None]:
    """The clip's pose from engine outputs (batch 1) in `mode`: head | geometry | fused.

    outputs: depth (1, T, H, W), track_xy (1, Q, T, 2), track_visibility (1, Q, T),
    pose_rotation (1, T, 3, 3), pose_translation (1, T, 3), pose_log_variance (1, T, 2).
    track_xy: optional (Q, T, 2) replacement (e.g. the pipeline's refined tracks).
    gate_chi2: the outlier gate (gate_outliers); gated frames count as degenerate (geo.gated).
    smoothing_order, stamps_ns: the resulting motion smoothed over the clip's frames in time
    (smooth_clip_motion); 0: as solved.
    unseen: (T,) bool, frames whose motion from the clip's first frame the images cannot show (a
    blind camera): held (hold_unseen) in every mode, whatever the head or PnP made of them, and
    left out of the smoothing.
    relink: step(t) of relink_lost_frames (frames lost from frame 0 solved from frame t-1), or None.
    rotation_step_px > 0: the rotation's steps between consecutive frames the geometry called
    rotation-only then measured by the tracks' bearings where a turn explains them to this many px
    (rotation_from_bearing_steps; their number in geo.rotation_steps); 0: as fused and smoothed.
    Returns (rotation (T,3,3), translation (T,3), log_variance (T,2), GeometryPose or None): the
    OdometryChain.add_clip inputs. `geometry` uses the head where the geometry is degenerate."""
    if mode not in MODES:
        raise ValueError(f"pose mode must be one of {MODES}, got {mode!r}")
    head_r, head_t = outputs["pose_rotation"][0], outputs["pose_translation"][0]
    head_logvar = np.asarray(outputs["pose_log_variance"][0], float)
    head_var = np.exp(np.clip(head_logvar, *LOG_VARIANCE_LIMITS))
    held = np.zeros(len(head_r), bool) if unseen is None else np.asarray(unseen, bool).copy()
    held[0] = False
    if mode == "head" or "depth" not in outputs or "track_xy" not in outputs:
        if not held.any():
            return head_r, head_t, head_logvar, None
        rotation, translation, variance = hold_unseen(head_r, head_t, head_var, held)
        return rotation, translation, np.log(variance), None
    xy = outputs["track_xy"][0] if track_xy is None else track_xy
    geo = solve_clip_motion(outputs["depth"][0, 0], xy, outputs["track_visibility"][0], k_model, usable,
                            prior=(head_r, head_t, head_var) if mode == "fused" else None, **solver)
    # A frame whose tracks did not move is not a PnP failure, whatever the head says: the pose head
    # reads a still camera's clips as fast motion, and with confidence (model card, session 21).
    geo.gated = gate_outliers(head_r, head_var, geo, gate_chi2, head_t) & ~geo.still
    geo.valid = geo.valid & ~geo.gated
    if relink is not None:
        relink_lost_frames(geo, relink, held)
    rotation, translation, variance = _combine(mode, head_r, head_t, head_var, geo, fuse_sizes)
    # Unseen frames held before the smoothing (their variance gives them no weight) and after it
    # (at the smoothed pose of the last frame seen).
    rotation, translation, variance = hold_unseen(rotation, translation, variance, held)
    rotation, translation = smooth_clip_motion(rotation, translation, variance, smoothing_order, stamps_ns)
    rotation, translation, variance = hold_unseen(rotation, translation, variance, held)
    if rotation_step_px > 0:
        # Not where the geometry called the image still: its identity is its own decision there, and
        # the tracks it overruled (something crossing the view) would be read as a turn (rule 68a).
        turned = geo.rotation_only & geo.valid & ~geo.still
        turned[0] = True  # the clip's origin
        skip = held | ~turned | off_period_frames(stamps_ns, len(turned))
        rotation, geo.rotation_steps = rotation_from_bearing_steps(
            rotation, xy, outputs["track_visibility"][0], k_model, rotation_step_px, usable, skip=skip)
    return rotation, translation, np.log(np.maximum(variance, 1e-30)), geo
