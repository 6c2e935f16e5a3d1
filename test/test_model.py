"""The model family: registry, encoder semantics, masking, heads' output contracts, bad input."""

from __future__ import annotations

import math

import pytest
import torch

from fourds_ros.model import (
    ENCODER_SIZES,
    FourDS,
    ModelConfig,
    count_parameters,
    default_heads,
    encoder_spec,
    init_weights,
    make_mask,
)
from fourds_ros.model.heads import rotation_from_6d

# Encoder parameters at 16x224x224 from the issue (S 22.5M ... e 3.81B), within 1%.
EXPECTED_PARAMS = {"S": 22.5e6, "B": 87.4e6, "L": 305e6, "H": 634e6, "G": 1.85e9, "e": 3.81e9}


@pytest.mark.parametrize("size", list(ENCODER_SIZES))
def test_every_size_builds_on_meta(size):
    with torch.device("meta"):
        model = FourDS(ModelConfig(size=size, heads=default_heads(64, 2)))
    n = count_parameters(model.encoder)
    print(f"4DS-{size}: {n:,} encoder parameters")
    if size in EXPECTED_PARAMS:
        assert abs(n - EXPECTED_PARAMS[size]) / EXPECTED_PARAMS[size] < 0.01
    if size == "j":
        assert 21e9 < n < 23e9  # documented ViT-22B shape
    assert len(model.encoder.blocks) == encoder_spec(size).depth


def test_paper_names_and_unknown_size():
    assert encoder_spec("4DS-B") == ENCODER_SIZES["B"]
    with pytest.raises(ValueError, match="unknown 4DS size 'Q'.*known sizes"):
        ModelConfig(size="Q")


def small_model(**kw) -> FourDS:
    cfg = ModelConfig(size="micro", num_frames=4, image_size=(32, 48), heads=default_heads(32, 2), **kw)
    return init_weights(FourDS(cfg), seed=0).eval()


def test_state_list_follows_official_indexing():
    model = small_model()
    video = torch.rand(2, 4, 32, 48, 3)
    out = model.encoder(video)
    depth = model.encoder.spec.depth
    assert len(out.states) == depth + 1
    assert torch.equal(out.states[0], out.states[1])  # embedded tokens, twice
    # states[i] is the input of block i-1: running that block gives states[i+1].
    x = model.encoder.blocks[0](out.states[1])
    assert torch.allclose(x, out.states[2])
    # The last block's output is not in the list but is returned for MAE.
    assert torch.allclose(model.encoder.blocks[-1](out.states[-1]), out.output)
    # Truncated run: same prefix, fewer blocks, no output.
    short = model.encoder(video, num_states=2)
    assert len(short.states) == 2 and short.output is None
    assert torch.equal(short.states[1], out.states[1])


def test_masking_keeps_exact_fraction_and_restores_order():
    grid = (8, 14, 14)
    n = 8 * 14 * 14
    for kind in ("random", "tube"):
        mask = make_mask(kind, 3, grid, 0.95, generator=torch.Generator().manual_seed(0))
        kept = mask.ids_keep.shape[1]
        expected = round(n * 0.05) if kind == "random" else round(196 * 0.05) * 8
        assert kept == expected
        assert int((~mask.masked).sum(1).unique()) == kept
        order = torch.cat([mask.ids_keep[:1], torch.nonzero(mask.masked[0])[:, 0][None]], 1)
        assert torch.equal(torch.gather(order, 1, mask.ids_restore[:1]), torch.arange(n)[None])
    tube = make_mask("tube", 1, grid, 0.9).masked.view(8, 196)
    assert (tube == tube[0]).all(), "tube masking masks the same positions in every frame"


def test_truncated_runs_are_prefixes_and_run_only_the_blocks_they_need():
    """num_states=k gives states[:k] of the full run by running blocks 0..k-3 (states[k-1] is
    the input of block k-2, which need not run); every block runs when all states are asked."""
    model = small_model().eval()
    video = torch.rand(1, 4, 32, 48, 3)
    depth = model.encoder.spec.depth
    ran = []
    for i, block in enumerate(model.encoder.blocks):
        block.register_forward_hook(lambda module, args, out, i=i: ran.append(i))
    with torch.no_grad():
        full = model.encoder(video)
        assert ran == list(range(depth))
        for k in range(1, depth + 1):
            ran.clear()
            short = model.encoder(video, num_states=k)
            assert ran == list(range(max(0, k - 2))) and short.output is None
            assert len(short.states) == k
            assert all(torch.equal(a, b) for a, b in zip(short.states, full.states))


def test_checkpointed_blocks_give_the_same_output_and_gradients():
    from fourds_ros.model.blocks import run_blocks

    blocks = small_model().encoder.blocks
    x = torch.rand(2, 5, 32)
    results = []
    for checkpoint in (False, True):
        inputs = []
        y = run_blocks(blocks, x, checkpoint, inputs=inputs)
        grads = torch.autograd.grad(y.square().sum(), list(blocks.parameters()))
        results.append((y, grads))
        assert len(inputs) == len(blocks) and inputs[0] is x
    (y0, g0), (y1, g1) = results
    assert torch.equal(y0, y1) and all(torch.equal(a, b) for a, b in zip(g0, g1))


def test_shape_annotations_hold_for_real_tensors():
    """The jaxtyping shapes in the encoder's and masking's signatures (as the official code's
    Float['*B T H W C']) resolve, and the tensors that flow through them have those ranks and
    dtypes. The modules import jaxtyping only for type checkers, so its names are given here."""
    import typing

    import jaxtyping

    from fourds_ros.model.blocks import run_blocks
    from fourds_ros.model.encoder import Encoder
    from fourds_ros.model.masking import TokenMask, gather_tokens

    names = {"Bool": jaxtyping.Bool, "Float": jaxtyping.Float, "Int": jaxtyping.Int}

    def hints_of(obj):
        return typing.get_type_hints(obj, localns=names)

    model = small_model()
    video = torch.rand(2, 4, 32, 48, 3)
    mask = make_mask("random", 2, model.config.token_grid, 0.5)
    with torch.no_grad():
        kept, _ = model.encoder.embed_kept(video, mask.ids_keep)
        out = model.encoder(video)
    checks = [
        (hints_of(Encoder.embed_kept), {"video": video, "ids_keep": mask.ids_keep}, kept),
        (hints_of(gather_tokens), {"tokens": out.states[0], "ids": mask.ids_keep}, kept),
        (hints_of(run_blocks), {"x": out.states[-1]}, out.output),
        (hints_of(TokenMask), {"ids_keep": mask.ids_keep, "ids_restore": mask.ids_restore,
                                            "masked": mask.masked}, None),
    ]
    for hints, args, result in checks:
        for name, value in args.items():
            assert isinstance(value, hints[name]), (name, hints[name])
        if result is not None:
            ret = hints["return"]
            ret = typing.get_args(ret)[0] if typing.get_origin(ret) is tuple else ret
            assert isinstance(result, ret), ret
    assert not isinstance(video, hints_of(run_blocks)["x"])  # rank 5 is not (B, N, D)


def test_encoder_drops_masked_tokens():
    model = small_model()
    video = torch.rand(2, 4, 32, 48, 3)
    grid = model.config.token_grid
    mask = make_mask("random", 2, grid, 0.5)
    out = model.encoder(video, mask=mask)
    assert out.output.shape == (2, mask.ids_keep.shape[1], 32)
    # Kept tokens are the same embedded tokens as in the unmasked run. The masked path embeds
    # only the kept tubelets (the Conv3d's weights as one linear map per tubelet), so they agree
    # up to float32 summation order, not bit for bit.
    full = model.encoder(video, num_states=1).states[0]
    kept = torch.gather(full, 1, mask.ids_keep[..., None].expand(-1, -1, 32))
    torch.testing.assert_close(out.states[0], kept, atol=1e-5, rtol=1e-5)


def test_position_embedding_interpolates_to_other_grids():
    model = small_model()
    pe = model.encoder.position_embedding((4, 4, 6))
    assert pe.shape == (4, 4, 6, 32)
    assert torch.allclose(model.encoder.position_embedding((2, 2, 3)), model.encoder.posenc)
    out = model.encoder(torch.rand(1, 8, 64, 96, 3))
    assert out.states[0].shape == (1, 4 * 4 * 6, 32)


def test_heads_output_contract():
    model = small_model()
    video = torch.rand(2, 4, 32, 48, 3)
    queries = torch.tensor([[[0, 10.0, 20.0], [3, 5.0, 40.0], [1, 31.0, 0.0]]]).repeat(2, 1, 1)
    with torch.no_grad():
        out = model(video, queries)
    assert set(out) == set(model.output_names)
    assert out["depth"].shape == (2, 4, 32, 48) and (out["depth"] > 0).all()
    assert out["track_xy"].shape == (2, 3, 4, 2)
    for k in ("track_visibility", "track_confidence"):
        assert out[k].shape == (2, 3, 4) and ((out[k] >= 0) & (out[k] <= 1)).all()
    r = out["pose_rotation"]
    assert r.shape == (2, 4, 3, 3)
    eye = torch.eye(3).expand_as(r)
    assert torch.allclose(r @ r.transpose(-1, -2), eye, atol=1e-5)
    assert torch.allclose(torch.det(r), torch.ones(2, 4), atol=1e-5)
    assert torch.allclose(r[:, 0], eye[:, 0]) and torch.equal(out["pose_translation"][:, 0], torch.zeros(2, 3))
    assert out["pose_log_variance"].shape == (2, 4, 2)
    # A query is answered by itself at its own frame (TAP-Vid), whatever the weights.
    rows = torch.arange(3)
    assert torch.equal(out["track_xy"][:, rows, queries[0, :, 0].long()], queries[:, :, [2, 1]])


def test_tracker_follows_a_translated_texture():
    """The correlation tracker's geometry, with features that are the pixels themselves: a random
    texture shifted by a whole number of cells per frame is found at the shifted position."""
    from fourds_ros.model.config import TrackHeadConfig
    from fourds_ros.model.heads import TrackHead

    head = TrackHead(TrackHeadConfig(feature_dim=16, feature_stride=4, window_radius=2), 16, (4, 64, 64), (4, 4))
    head.feature_map = lambda features, video: torch.nn.functional.normalize(
        torch.nn.functional.avg_pool2d(video[0].permute(0, 3, 1, 2), 4).flatten(2).transpose(1, 2)[None], dim=-1)
    torch.nn.init.zeros_(head.refine[-1].weight)
    torch.nn.init.zeros_(head.refine[-1].bias)
    with torch.no_grad():
        head.log_temperature.fill_(8.0)  # near-argmax: cell centres exactly
    base = torch.rand(96, 96, 16)  # 16 "colour" channels: the feature map's width
    video = torch.stack([base[16 - 4 * t: 80 - 4 * t, 16: 80] for t in range(4)])[None]  # content moves down 4 px/frame
    queries = torch.tensor([[[0.0, 29.5, 33.5], [0.0, 17.5, 45.5]]])
    with torch.no_grad():
        xy = head(None, queries, video)["xy"][0]
    expected = queries[0, :, None, [2, 1]] + torch.tensor([0.0, 4.0]) * torch.arange(4.0)[:, None]
    assert (xy - expected).abs().max() < 0.5, xy


@pytest.mark.parametrize("softargmax_temperature, max_pull", [(0.0, None), (50.0, 0.1)])
def test_softargmax_temperature_sets_how_far_a_runner_up_pulls(softargmax_temperature, max_pull):
    """Frame 1 matches the query exactly at one cell and with cosine 0.9 at its right neighbour.
    At the soft learned matching temperature (1.7, where training left it) the runner-up pulls
    the position ~0.44 px towards it; a sharp windowed soft-argmax stays on the best cell."""
    from fourds_ros.model.config import TrackHeadConfig
    from fourds_ros.model.heads import TrackHead

    cfg = TrackHeadConfig(feature_dim=16, feature_stride=4, window_radius=2,
                          softargmax_temperature=softargmax_temperature)
    head = TrackHead(cfg, 16, (2, 64, 64), (4, 4))
    eye = torch.eye(16)
    fmap = torch.zeros(1, 2, 256, 16)
    fmap[..., :] = eye[2]  # every other cell: orthogonal to the query (cosine 0)
    best, runner_up = 8 * 16 + 8, 8 * 16 + 9  # cells (y 8, x 8) and (y 8, x 9)
    fmap[0, 0, best] = eye[0]
    fmap[0, 1, best] = eye[0]
    fmap[0, 1, runner_up] = 0.9 * eye[0] + (1 - 0.81) ** 0.5 * eye[1]
    head.feature_map = lambda features, video: fmap
    torch.nn.init.zeros_(head.refine[-1].weight)
    torch.nn.init.zeros_(head.refine[-1].bias)
    with torch.no_grad():
        head.log_temperature.fill_(math.log(1.7))
    centre = head.to_pixels(torch.tensor(8.0))  # pixel centre of cell 8
    queries = torch.tensor([[[0.0, centre, centre]]])
    with torch.no_grad():
        xy = head(None, queries, torch.zeros(1, 2, 64, 64, 3))["xy"][0, 0, 1]
    pull = float(xy[0] - centre)
    assert abs(float(xy[1] - centre)) < 1e-4
    if max_pull is None:
        # 5x5 window on the best cell: the runner-up at +1 cell, 23 others (cosine 0, weight 1)
        # whose x offsets sum to -1 cell (its column has one fewer).
        expected = 4 * (math.exp(1.7 * 0.9) - 1) / (math.exp(1.7) + math.exp(1.7 * 0.9) + 23)
        assert pull == pytest.approx(expected, rel=1e-3)
    else:
        assert 0 < pull < max_pull


def test_rotation_from_6d_is_identity_at_identity():
    assert torch.allclose(rotation_from_6d(torch.tensor([1.0, 0, 0, 0, 1, 0])), torch.eye(3))


@pytest.mark.parametrize(
    "video, message",
    [
        (torch.rand(1, 4, 32, 48), "got shape"),
        (torch.rand(1, 3, 32, 48, 3), "got shape"),
        (torch.randint(0, 255, (1, 4, 32, 48, 3), dtype=torch.uint8), "divide uint8 by 255"),
        (torch.rand(1, 4, 32, 48, 3) * 255, "got values in"),
        (torch.full((1, 4, 32, 48, 3), float("nan")), "got values in"),
    ],
)
def test_bad_video_is_a_clear_error(video, message):
    model = small_model()
    with pytest.raises(ValueError, match=r"\(B, 4, 32, 48, 3\) float in \[0, 1\]") as e:
        model(video, torch.zeros(1, 1, 3))
    assert message in str(e.value)


def test_tracks_need_query_points():
    model = small_model()
    with pytest.raises(ValueError, match="query_points"):
        model(torch.rand(1, 4, 32, 48, 3))


def test_bad_configs():
    with pytest.raises(ValueError, match="not divisible by patch size"):
        ModelConfig(size="micro", num_frames=5, image_size=(32, 32))
    with pytest.raises(ValueError, match="unknown head 'segmentation'"):
        ModelConfig.from_dict({"size": "micro", "heads": {"segmentation": {"num_params": 8, "num_heads": 2}}})
    cfg = ModelConfig(size="micro", num_frames=4, image_size=(32, 32), heads=default_heads(32, 2))
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    old = cfg.to_dict()  # a checkpoint written by the earlier attention track head
    old["heads"]["tracks"] = {"num_params": 32, "num_heads": 2, "num_frequencies": 16}
    with pytest.raises(ValueError, match="head 'tracks' config .* does not match TrackHeadConfig"):
        ModelConfig.from_dict(old)
