"""Checkpoint selection on validation clips: a tie keeps the earlier step, every --select-no-worse metric is
enforced (and one the clips never give is refused), the pose score includes the translation direction, and a
perfect rotation scores 0 degrees."""
import pytest
import torch


def _run(monkeypatch, metrics, **kwargs):
    from training.selection import CheckpointSelection

    scores = iter(metrics)
    monkeypatch.setattr("training.selection.evaluate", lambda model, batches: next(scores))
    selection = CheckpointSelection([], **kwargs)
    for step in range(len(metrics)):
        selection.consider(torch.nn.Linear(1, 1), step * 10)
    return selection


def test_a_tie_keeps_the_earlier_step(monkeypatch):
    """A later step that only equals the best so far does not replace it: the start (--init) wins a tie."""
    same = {"depth_abs_rel_scaled": 0.3, "depth_abs_rel": 1.4}
    sel = _run(monkeypatch, [dict(same), dict(same), dict(same)], heads=("depth",), start_is_candidate=True)
    assert sel.best_step == 0 and sel.best_score == pytest.approx(1.0)


def test_every_no_worse_metric_is_enforced(monkeypatch):
    """Two guarded metrics: a step that keeps the first and worsens the second is no candidate."""
    sel = _run(monkeypatch, [{"depth_abs_rel_scaled": 0.30, "depth_abs_rel": 1.40},
                             {"depth_abs_rel_scaled": 0.10, "depth_abs_rel": 1.41}],
               heads=("depth",), no_worse=("depth_abs_rel", "depth_abs_rel_scaled")[::-1])
    assert [c["candidate"] for c in sel.history] == [True, False] and sel.best_step == 0


def test_pose_selection_scores_the_translation_direction(monkeypatch):
    """The pose head's score includes pose_direction_deg (the docstring and the card say so): a step that
    only turns the translation direction right scores below the start and is chosen."""
    start = {"pose_rotation_deg": 1.0, "pose_translation_m": 0.02, "pose_direction_deg": 40.0}
    better = {**start, "pose_direction_deg": 20.0}
    sel = _run(monkeypatch, [start, better], heads=("pose",), start_is_candidate=True)
    assert sel.history[1]["score"] == pytest.approx((1 + 1 + 0.5) / 3) and sel.best_step == 10


def test_a_no_worse_metric_the_clips_never_give_is_refused(monkeypatch):
    """--select-no-worse pose_rotation_deg on a depth-only model guarded nothing, silently: refused at the
    start's scoring (train_readouts prints it as an error before training)."""
    with pytest.raises(ValueError, match="pose_rotation_deg"):
        _run(monkeypatch, [{"depth_abs_rel_scaled": 0.3, "depth_abs_rel": 1.4}], heads=("depth",),
             no_worse=("pose_rotation_deg",))


def test_a_perfect_rotation_scores_zero_degrees():
    """batch_metrics' pose_rotation_deg: geodesic_angle's clamp margin (kept in the loss) read identity
    against identity as 0.0816 degrees, a floor under the selection's rotation metric."""
    from training.readouts_model import batch_metrics

    eye = torch.eye(3).expand(2, 4, 3, 3).clone()
    out = {"pose_rotation": eye, "pose_translation": torch.zeros(2, 4, 3)}
    batch = {"pose_rotation": eye.clone(), "pose_translation": torch.zeros(2, 4, 3)}
    assert batch_metrics(out, batch)["pose_rotation_deg"] < 1e-3


def test_a_resumed_selection_keeps_the_best_score(monkeypatch):
    """restore(state()): a later step scoring worse than the stopped run's best is not chosen (best_score restored)."""
    from training.selection import CheckpointSelection

    scores = iter([{"depth_abs_rel_scaled": 0.30, "depth_abs_rel": 1.4},   # step 0: reference
                   {"depth_abs_rel_scaled": 0.15, "depth_abs_rel": 1.4},   # step 10: best (score 0.75)
                   {"depth_abs_rel_scaled": 0.24, "depth_abs_rel": 1.4}])  # step 20, after the resume: worse
    monkeypatch.setattr("training.selection.evaluate", lambda model, batches: next(scores))
    first = CheckpointSelection([], heads=("depth",))
    first.consider(torch.nn.Linear(1, 1), 0)
    first.consider(torch.nn.Linear(1, 1), 10)
    resumed = CheckpointSelection([], heads=("depth",))
    resumed.restore(first.state(), first.best_state)
    resumed.consider(torch.nn.Linear(1, 1), 20)
    assert resumed.best_step == 10 and resumed.best_score == pytest.approx(0.75)
