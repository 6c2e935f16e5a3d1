"""The head registry (fourds_ros/model/registry.py), as timm tests its model registry: every
registered head builds on a tiny config and returns exactly the outputs its entry declares, an
unknown name lists the known ones, and a head registered here, in the test, is built by FourDS,
listed by EngineSpec and exported to ONNX with no other change."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from fourds_ros.engine.base import EngineSpec
from fourds_ros.model import (
    HEAD_OUTPUTS,
    HEADS,
    OUTPUTS,
    FourDS,
    HeadEntry,
    ModelConfig,
    default_heads,
    get_head,
    init_weights,
    register_head,
)
from fourds_ros.model.config import HEAD_TYPES
from fourds_ros.model.registry import resolve_shape, unregister_head

# The tiny test size (width 64), a clip every built-in head divides, and distinct dim values so a
# swapped dim shows up as a wrong shape.
TINY = {"size": "tiny", "num_frames": 4, "image_size": (32, 48)}
DIMS = {"B": 2, "T": 4, "H": 32, "W": 48, "Q": 5}


def tiny_head_config(name: str):
    """The built-in heads' tiny configs; a new head's default config (give it defaults or add it
    to default_heads so that this test covers it)."""
    return default_heads(64, 2).get(name) or get_head(name).config()


def extra_inputs(entry_inputs: dict, dims: dict) -> dict[str, torch.Tensor]:
    # Values in [0, 1): valid query points (t, y, x) near the origin, and harmless for a toy input.
    gen = torch.Generator().manual_seed(0)
    return {n: torch.rand(resolve_shape(s, dims), generator=gen) for n, (s, _) in entry_inputs.items()}


def test_builtin_heads_and_compatibility_names():
    assert list(HEADS) == ["depth", "tracks", "pose"]
    assert dict(HEAD_OUTPUTS) == {name: tuple(e.outputs) for name, e in HEADS.items()}
    assert dict(HEAD_TYPES) == {name: e.config for name, e in HEADS.items()}
    assert list(OUTPUTS) == [n for e in HEADS.values() for n in e.outputs]
    assert dict(get_head("tracks").inputs) == {"query_points": get_head("tracks").inputs["query_points"]}
    for entry in HEADS.values():  # how outputs become messages and metrics is documented
        assert entry.messages and entry.metrics


@pytest.mark.parametrize("name", list(HEADS))
def test_every_registered_head_builds_and_matches_its_entry(name):
    entry = get_head(name)
    cfg = ModelConfig(**TINY, heads={name: tiny_head_config(name)})
    model = init_weights(FourDS(cfg), seed=0).eval()
    assert model.output_names == list(entry.outputs)
    assert model.input_names == ["video", *entry.inputs]
    assert {k.split(".")[1] for k in model.state_dict() if k.startswith("heads.")} == {name}
    video = torch.rand(DIMS["B"], 4, 32, 48, 3, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = model(video, **extra_inputs(entry.inputs, DIMS))
    assert list(out) == list(entry.outputs)
    for out_name, (shape, _) in entry.outputs.items():
        assert tuple(out[out_name].shape) == resolve_shape(shape, DIMS), out_name
        assert torch.isfinite(out[out_name]).all(), out_name
    spec = EngineSpec(cfg, num_queries=DIMS["Q"])
    assert spec.output_names == list(entry.outputs)
    assert spec.input_names == ["video", *entry.inputs]
    assert spec.output_shapes == {n: resolve_shape(s, {**DIMS, "B": 1}) for n, (s, _) in entry.outputs.items()}


def test_unknown_head_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown head 'segmentation'; known heads: depth, tracks, pose"):
        get_head("segmentation")
    with pytest.raises(ValueError, match="known heads: depth, tracks, pose"):
        ModelConfig(**TINY, heads={"segmentation": default_heads(64, 2)["pose"]})
    with pytest.raises(ValueError, match="known heads: depth, tracks, pose"):
        ModelConfig.from_dict({**TINY, "heads": {"segmentation": {"num_params": 8, "num_heads": 2}}})


def test_per_head_config_checks_come_from_the_entries():
    heads = default_heads(64, 2)
    with pytest.raises(ValueError, match="depth decoding_patch_size must divide"):
        ModelConfig(**TINY, heads={"depth": heads["depth"].__class__(64, 2, decoding_patch_size=(3, 8, 8))})
    with pytest.raises(ValueError, match="tracks feature_stride 6 must divide the image size 32x48"):
        ModelConfig(**TINY, heads={"tracks": heads["tracks"].__class__(feature_stride=6)})
    with pytest.raises(TypeError, match="head 'pose' needs a PoseHeadConfig"):
        ModelConfig(**TINY, heads={"pose": heads["tracks"]})


# A toy head, registered only inside the tests below.
@dataclass(frozen=True)
class ToyConfig:
    classes: int = 2


class ToyHead(nn.Module):
    def __init__(self, cfg: ToyConfig, width: int):
        super().__init__()
        self.score = nn.Linear(width, cfg.classes)

    def forward(self, features: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        score = self.score(features).mean(dim=2)  # (B, T, h*w, D) -> (B, T, classes)
        return score if bias is None else score + bias[:, None]


TOY = HeadEntry(
    name="toy", config=ToyConfig,
    build=lambda cfg, width, clip, grid: ToyHead(cfg, width),
    outputs={"toy_score": ("B,T,2", "toy class scores per frame")},
    messages=("toy/scores",), metrics=("toy_accuracy",),
)
# The same with an extra input, to show that inputs travel by name too.
TOY_BIASED = HeadEntry(
    name="toy_biased", config=ToyConfig,
    build=lambda cfg, width, clip, grid: ToyHead(cfg, width),
    outputs={"toy_biased_score": ("B,T,2", "toy class scores plus a bias")},
    run=lambda entry, module, features, video, inputs: {"toy_biased_score": module(features, inputs["toy_bias"])},
    inputs={"toy_bias": ("B,2", "a bias added to every frame's scores")},
)


@pytest.fixture
def toy_heads():
    for entry in (TOY, TOY_BIASED):
        register_head(entry)
    yield
    for entry in (TOY, TOY_BIASED):
        unregister_head(entry.name)


def test_a_registered_toy_head_is_built_listed_and_serialised(toy_heads):
    heads = {"depth": default_heads(64, 2)["depth"], "toy": ToyConfig()}
    cfg = ModelConfig(**TINY, heads=heads)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    model = init_weights(FourDS(cfg), seed=0).eval()
    assert isinstance(model.heads["toy"], ToyHead)
    assert model.output_names == ["depth", "toy_score"] and "toy_score" in OUTPUTS
    with torch.no_grad():
        out = model(torch.rand(2, 4, 32, 48, 3))
    assert tuple(out["toy_score"].shape) == (2, 4, 2)
    spec = EngineSpec(cfg)
    assert spec.input_names == ["video"]
    assert spec.output_names == ["depth", "toy_score"]
    assert spec.output_shapes["toy_score"] == (1, 4, 2)


def test_a_toy_head_exports_to_onnx_under_its_names(toy_heads, tmp_path):
    pytest.importorskip("onnxruntime")
    import onnxruntime as ort

    from fourds_ros.engine.export import example_inputs, export_onnx

    model = init_weights(FourDS(ModelConfig(**TINY, heads={"toy": ToyConfig(classes=2)})), seed=0).eval()
    path = export_onnx(model, tmp_path / "toy.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["toy_score"]
    inputs = example_inputs(EngineSpec(model.config))
    (score,) = session.run(None, inputs)
    with torch.no_grad():
        expected = model(torch.from_numpy(inputs["video"]))["toy_score"].numpy()
    np.testing.assert_allclose(score, expected, atol=1e-5)


def test_a_toy_head_input_is_named_by_its_entry(toy_heads):
    cfg = ModelConfig(**TINY, heads={"toy_biased": ToyConfig()})
    model = init_weights(FourDS(cfg), seed=0).eval()
    assert model.input_names == ["video", "toy_bias"]
    assert EngineSpec(cfg).input_shapes == {"video": (1, 4, 32, 48, 3), "toy_bias": (1, 2)}
    video = torch.rand(2, 4, 32, 48, 3)
    with torch.no_grad():
        plain = model.heads["toy_biased"](model.features(video))
        out = model(video, toy_bias=torch.ones(2, 2))
    torch.testing.assert_close(out["toy_biased_score"], plain + 1)
    with pytest.raises(ValueError, match=r"toy_bias must be \(B, 2\) as a bias"):
        model(video)
    with pytest.raises(ValueError, match="toy_bias and video batch sizes differ"):
        model(video, toy_bias=torch.ones(1, 2))
    with pytest.raises(TypeError, match="inputs no head takes: \\['toy_bais'\\]"):
        model(video, toy_bais=torch.ones(2, 2))


def test_a_toy_head_input_reaches_the_head_on_every_backend(toy_heads, tmp_path):
    """The torch engine passed the model query_points only: a head's own input (toy_bias) never
    arrived, and the same spec that ran in ONNX Runtime raised in torch."""
    pytest.importorskip("onnxruntime")
    from fourds_ros.engine.export import example_inputs, export_onnx, onnxruntime_outputs
    from fourds_ros.engine.torch_backend import TorchEngine

    model = init_weights(FourDS(ModelConfig(**TINY, heads={"toy_biased": ToyConfig()})), seed=0).eval()
    spec = EngineSpec(model.config)
    inputs = example_inputs(spec, seed=2)
    graph = onnxruntime_outputs(export_onnx(model, tmp_path / "toy.onnx"), inputs)
    torch_out = TorchEngine(model, spec)(inputs)
    np.testing.assert_allclose(torch_out["toy_biased_score"], graph["toy_biased_score"], atol=1e-5)


def test_registration_rejects_clashes_and_bad_entries(toy_heads):
    with pytest.raises(ValueError, match="'toy' is already registered"):
        register_head(TOY)
    with pytest.raises(ValueError, match=r"outputs \['depth'\] already belong to head 'depth'"):
        register_head(HeadEntry("toy2", ToyConfig, TOY.build, {"depth": ("B,T,H,W", "")}))
    with pytest.raises(ValueError, match="input 'query_points' has another shape in head 'tracks'"):
        register_head(HeadEntry("toy2", ToyConfig, TOY.build, {"toy2_out": ("B,T", "")},
                                inputs={"query_points": ("B,Q,2", "")}))
    with pytest.raises(ValueError, match="bad symbolic shape 'B,T,HW'"):
        HeadEntry("toy2", ToyConfig, TOY.build, {"toy2_out": ("B,T,HW", "")})
    with pytest.raises(ValueError, match="reserved"):
        HeadEntry("toy2", ToyConfig, TOY.build, {"toy2_out": ("B,T", "")}, inputs={"video": ("B,T", "")})
    with pytest.raises(TypeError, match="config must be a dataclass"):
        HeadEntry("toy2", dict, TOY.build, {"toy2_out": ("B,T", "")})
    assert "toy2" not in HEADS


@pytest.mark.parametrize("stride", [2, 4, 8])
def test_every_tracks_stride_a_config_accepts_runs(stride):
    cfg = ModelConfig(**TINY, heads={"tracks": default_heads(64, 2)["tracks"].__class__(feature_stride=stride)})
    model = init_weights(FourDS(cfg), seed=0).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 4, 32, 48, 3), torch.zeros(1, 3, 3))
    assert out and all(v.shape[:2] == (1, 3) and torch.isfinite(v).all() for v in out.values())


@pytest.mark.parametrize("head, field, value, says", [
    ("tracks", "window_radius", -1, ">= 0"),  # loaded, configured, and put out NaN tracks
    ("tracks", "softargmax_temperature", "2", "finite number"),  # a TypeError at the first forward
    ("tracks", "feature_stride", 4.0, "whole number"),
    ("tracks", "softargmax_temperature", -1.0, ">= 0"),  # silently the learned temperature
    ("depth", "num_heads", True, "whole number"),
    ("depth", "decoding_patch_size", [2, 8], "3 whole numbers"),
    ("pose", "num_params", 0, ">= 1"),
])
def test_a_hand_edited_head_config_is_refused_at_load_naming_its_key(tmp_path, head, field, value, says):
    from fourds_ros.model import CheckpointError
    from fourds_ros.model.checkpoint import load_config

    config = ModelConfig(**TINY, heads=default_heads(64, 2)).to_dict()
    config["heads"][head][field] = value
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=f"{field} must be .*{re.escape(says)}"):
        load_config(tmp_path)


def test_configs_that_could_not_run_are_refused_when_made():
    """Accepted before, then failed at the first forward (or, in `auto`, inside the ONNX export):
    an odd tracks stride (the stem halves the image, then strides by stride // 2) and a
    readout_depth that selects no encoder state."""
    tracks = default_heads(64, 2)["tracks"].__class__
    with pytest.raises(ValueError, match="even number"):
        ModelConfig(**TINY, heads={"tracks": tracks(feature_stride=3)})
    with pytest.raises(ValueError, match="even number"):
        ModelConfig(**TINY, heads={"tracks": tracks(feature_stride=1)})
    with pytest.raises(ValueError, match="selects no state"):
        ModelConfig(**{**TINY, "readout_depth": 0.05})
    smallest = ModelConfig(**{**TINY, "readout_depth": 0.34})  # the first state that exists, of tiny's
    with torch.no_grad():
        init_weights(FourDS(smallest), seed=0).eval()(torch.rand(1, 4, 32, 48, 3))
