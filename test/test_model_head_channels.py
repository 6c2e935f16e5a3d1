"""Each head output reads its own readout channels: the pose head's 11 are 6-D rotation, translation, then log
variance (log_variance from overlapping channels fed odometry covariance from the translation); the tracks head's
visibility and confidence logits are not swapped."""

from __future__ import annotations

import torch

from fourds_ros.model import FourDS, ModelConfig, PoseHeadConfig, init_weights


def test_pose_outputs_read_their_own_readout_channels():
    cfg = ModelConfig(size="micro", num_frames=4, image_size=(32, 32), heads={"pose": PoseHeadConfig(32, 2)})
    model = init_weights(FourDS(cfg), seed=0).eval()
    head = model.heads["pose"].readout.head
    with torch.no_grad():
        head.weight.zero_()
        head.bias.copy_(torch.arange(11, dtype=torch.float32) / 10)  # channel c outputs c / 10 on every frame
        out = model(torch.rand(1, 4, 32, 32, 3))
    expected_lv = torch.tensor([0.9, 1.0]).expand(1, 4, 2)
    torch.testing.assert_close(out["pose_log_variance"], expected_lv)
    torch.testing.assert_close(out["pose_translation"][:, 1:], torch.tensor([0.6, 0.7, 0.8]).expand(1, 3, 3))
    torch.testing.assert_close(out["pose_translation"][:, 0], torch.zeros(1, 3))  # frame 0 is the reference


def test_track_visibility_and_confidence_read_their_own_logits():
    from fourds_ros.model import TrackHeadConfig

    cfg = ModelConfig(size="micro", num_frames=4, image_size=(32, 32), heads={"tracks": TrackHeadConfig()})
    model = init_weights(FourDS(cfg), seed=0).eval()
    last = model.heads["tracks"].refine[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.tensor([0.0, 0.0, 2.0, -2.0]))  # (dx, dy, visible, confidence) logits
        out = model(torch.rand(1, 4, 32, 32, 3), query_points=torch.tensor([[[0.0, 10.0, 12.0]]]))
    torch.testing.assert_close(out["track_visibility"], torch.full((1, 1, 4), torch.sigmoid(torch.tensor(2.0)).item()))
    torch.testing.assert_close(out["track_confidence"], torch.full((1, 1, 4), torch.sigmoid(torch.tensor(-2.0)).item()))
