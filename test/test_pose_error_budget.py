"""tools/pose_error_budget.py: the chain rebuilt from recorded clip motions, with parts of each
motion replaced by the ground truth, on a synthetic trajectory whose errors are known."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from fourds_ros.perception.odometry import OdometryChain

from .tool_module import load_tool as _load


def load_tool():
    return _load("pose_error_budget.py")


def trajectory(frames: int = 29) -> dict[int, np.ndarray]:
    """world_from_camera poses of a camera that turns and moves along a curve, 30 Hz stamps."""
    poses = {}
    for i in range(frames):
        pose = np.eye(4)
        pose[:3, :3] = cv2.Rodrigues(np.array([0.02 * i, 0.05 * np.sin(0.2 * i), 0.01 * i]))[0]
        pose[:3, 3] = [0.03 * i, 0.1 * np.sin(0.3 * i), 0.01 * i * i / frames]
        poses[int(i * 33_333_333)] = pose
    return poses


def clip_calls(tool, gt: dict, rotation_noise: float, translation_noise: float, seed: int = 0) -> list[tuple]:
    """OdometryChain.add_clip arguments for clips of 8 frames, hop 7, with the ground truth's motion
    perturbed: rotation by a random rotation vector of rotation_noise rad, translation by
    translation_noise m per axis."""
    rng = np.random.default_rng(seed)
    stamps = sorted(gt)
    calls = []
    for first in range(0, len(stamps) - 7, 7):
        window = stamps[first:first + 8]
        rotation, translation = tool.ground_truth_motion(gt, window)
        rotation = np.array([r @ cv2.Rodrigues(rng.normal(0, rotation_noise, 3))[0] for r in rotation])
        translation = translation + rng.normal(0, translation_noise, translation.shape)
        rotation[0], translation[0] = np.eye(3), 0.0  # frame 0 is the clip's origin
        output_t = list(range(8)) if first == 0 else list(range(1, 8))
        calls.append((list(range(first, first + 8)), window, rotation, translation, np.full((8, 2), -6.0), output_t))
    return calls


def test_the_ground_truth_motion_chains_back_to_the_ground_truth():
    tool = load_tool()
    gt = trajectory()
    calls = clip_calls(tool, gt, 0.0, 0.0)
    assert tool.chained_ate(calls, gt, "estimate") < 1e-6


def test_each_replacement_removes_the_error_of_its_part():
    tool = load_tool()
    gt = trajectory()
    translation_only = clip_calls(tool, gt, 0.0, 0.01)
    base = tool.chained_ate(translation_only, gt, "estimate")
    assert base > 0.005
    assert tool.chained_ate(translation_only, gt, "ground-truth translation") < 1e-6
    assert tool.chained_ate(translation_only, gt, "ground-truth rotation") > 0.5 * base  # rotation was exact

    rotation_only = clip_calls(tool, gt, 0.03, 0.0)
    base = tool.chained_ate(rotation_only, gt, "estimate")
    assert base > 0.002
    assert tool.chained_ate(rotation_only, gt, "ground-truth rotation") < 1e-6


def test_the_direction_replacement_keeps_the_estimated_size():
    tool = load_tool()
    rotation = np.tile(np.eye(3), (3, 1, 1))
    translation = np.array([[0.0, 0, 0], [0.2, 0, 0], [0, 0.4, 0]])
    gt_translation = np.array([[0.0, 0, 0], [0, 0, 0.1], [0.05, 0, 0]])
    _, out = tool.replace("ground-truth direction", rotation, translation, rotation, gt_translation)
    np.testing.assert_allclose(out, [[0, 0, 0], [0, 0, 0.2], [0.4, 0, 0]], atol=1e-9)
    _, out = tool.replace("ground-truth size", rotation, translation, rotation, gt_translation)
    np.testing.assert_allclose(out, [[0, 0, 0], [0.1, 0, 0], [0, 0.05, 0]], atol=1e-9)


def with_log_variance(calls: list[tuple], rotation_var: float, translation_var: float) -> list[tuple]:
    return [(i, s, r, t, np.tile(np.log([rotation_var, translation_var]), (len(r), 1)), o)
            for i, s, r, t, _, o in calls]


def test_nees_reads_honest_variances_as_chi_square_and_flags_overconfident_ones():
    """Clip motions perturbed with known noise: variances equal to the noise give a NEES near 3
    (chi-square, 3 degrees of freedom) with about 95 % of clips within the bound; variances 100x too
    small give a NEES 100x larger, and a translation off by one global scale is read after it."""
    tool = load_tool()
    gt = trajectory(frames=701)  # 100 clips
    calls = clip_calls(tool, gt, 0.01, 0.004, seed=3)
    honest = tool.nees(with_log_variance(calls, 0.01 ** 2, 0.004 ** 2), gt)
    assert honest["clips"] == 100
    for part in ("rotation", "translation"):
        assert 2.2 < honest[part]["mean"] < 4.0 and honest[part]["within_95"] > 0.85
    assert abs(honest["scale"] - 1.0) < 0.1
    overconfident = tool.nees(with_log_variance(calls, 0.001 ** 2, 0.0004 ** 2), gt)
    for part in ("rotation", "translation"):
        assert overconfident[part]["mean"] > 50 * honest[part]["mean"] and overconfident[part]["within_95"] < 0.2
    # the model's metres 3x the truth's, and its variance in its own metres: the same translation NEES
    scaled = [(i, s, r, 3.0 * t, lv, o) for i, s, r, t, lv, o in with_log_variance(calls, 0.01 ** 2, (3 * 0.004) ** 2)]
    again = tool.nees(scaled, gt)
    assert abs(again["scale"] - 1 / 3) < 0.05
    assert abs(again["translation"]["mean"] - honest["translation"]["mean"]) < 0.3 * honest["translation"]["mean"]
    # the chain's floor is applied as the chain applies it
    floored = tool.nees(with_log_variance(calls, 0.001 ** 2, 0.0004 ** 2), gt,
                        OdometryChain(rotation_var_floor=0.01 ** 2, translation_var_floor=0.004 ** 2))
    assert np.isclose(floored["rotation"]["mean"], honest["rotation"]["mean"], rtol=1e-9)

    # the chain's factors on the variances, as the chain applies them: x100 variance, NEES / 100
    scaled = tool.nees(with_log_variance(calls, 0.001 ** 2, 0.0004 ** 2), gt,
                       OdometryChain(rotation_var_floor=0.0, translation_var_floor=0.0, rotation_var_scale=100.0,
                                     translation_var_scale=100.0))
    for part in ("rotation", "translation"):
        assert np.isclose(scaled[part]["mean"], honest[part]["mean"], rtol=1e-9)


def test_the_ate_spread_tool_perturbs_by_seed_and_scores_every_run(tiny_model_dir, tmp_path):
    """tools/pose_ate_spread.py: a run's perturbation is its seed's (the same seed, the same outputs;
    relative 0, the engine's own), about `relative` in size, and every run is scored over the starts."""
    from fourds_ros.cli import main as cli
    from fourds_ros.engine import create_engine
    from fourds_ros.engine.export import example_inputs
    from fourds_ros.evaluation.bag import read_bag
    from fourds_ros.perception.settings import PerceptionSettings

    tool = _load("pose_ate_spread.py")
    engine = create_engine(tiny_model_dir, "torch")
    inputs = example_inputs(engine.spec)
    ref = engine(inputs)
    once, again = tool.NoisyEngine(engine, 1e-3, 1)(inputs), tool.NoisyEngine(engine, 1e-3, 1)(inputs)
    other, untouched = tool.NoisyEngine(engine, 1e-3, 2)(inputs), tool.NoisyEngine(engine, 0.0, 1)(inputs)
    for name, value in ref.items():
        assert np.array_equal(once[name], again[name]) and np.array_equal(untouched[name], value)
        assert not np.array_equal(once[name], other[name])
        assert 1e-4 < np.linalg.norm(once[name] - value) / np.linalg.norm(value) < 1e-2
    sample = Path(__file__).resolve().parents[1] / "samples" / "hololens_000"
    assert cli(["bag", "convert", "--format", "hololens", str(sample), str(tmp_path / "bag")]) == 0
    result = tool.spread(read_bag(tmp_path / "bag"), engine, PerceptionSettings(), runs=2, relative=1e-3, starts=2)
    assert result["untouched"] > 0 and len(result["runs"]) == 2 and all(a > 0 for a in result["runs"])
    assert result["range"][0] <= result["range"][1] and result["sd"] >= 0
