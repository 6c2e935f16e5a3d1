"""training.average_checkpoints: the weight-space average of a model and one fine-tuned from it."""

from __future__ import annotations

import torch

from fourds_ros.model import FourDS, ModelConfig, default_heads, init_weights, load_checkpoint, save_checkpoint
from training.average_checkpoints import main


def _micro(seed: int, heads: int = 2) -> FourDS:
    cfg = ModelConfig(size="micro", num_frames=4, image_size=(32, 32), patch_size=(2, 16, 16),
                      heads=default_heads(32, heads))
    return init_weights(FourDS(cfg), seed=seed)


def test_the_average_is_each_weight_moved_alpha_of_the_way(tmp_path, capsys):
    start, tuned = _micro(0), _micro(1)
    a, b = save_checkpoint(start, tmp_path / "a"), save_checkpoint(tuned, tmp_path / "b")
    for alpha in (0.0, 0.25, 1.0):
        assert main([str(a), str(b), "--alpha", str(alpha), "--out", str(tmp_path / f"m{alpha}")]) == 0
        got = load_checkpoint(tmp_path / f"m{alpha}").state_dict()
        for name, w in start.state_dict().items():
            torch.testing.assert_close(got[name], (1 - alpha) * w + alpha * tuned.state_dict()[name])
    # the two models differ, so the average is neither of them
    quarter = load_checkpoint(tmp_path / "m0.25").state_dict()
    for model in (start, tuned):
        assert any(not torch.equal(quarter[n], w) for n, w in model.state_dict().items())
    assert "0.75 x" in capsys.readouterr().out


def test_models_of_different_configs_or_a_bad_alpha_are_refused(tmp_path, capsys):
    a = save_checkpoint(_micro(0), tmp_path / "a")
    other = save_checkpoint(_micro(1, heads=4), tmp_path / "other")
    assert main([str(a), str(other), "--out", str(tmp_path / "x")]) == 2
    assert "different configs" in capsys.readouterr().err
    assert main([str(a), str(a), "--alpha", "1.5", "--out", str(tmp_path / "x")]) == 2
    assert "alpha must be in [0, 1]" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_an_out_it_cannot_write_is_one_line(tmp_path, capsys):
    """An --out under a file (or /sys) was a NotADirectoryError / PermissionError traceback."""
    a = save_checkpoint(_micro(0), tmp_path / "a")
    (tmp_path / "a_file").write_text("")
    assert main([str(a), str(a), "--out", str(tmp_path / "a_file" / "avg")]) == 2
    assert "a_file" in capsys.readouterr().err
