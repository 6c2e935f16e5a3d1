"""One inference interface for every backend (torch, ONNX Runtime, TensorRT). No rclpy.

An engine runs the whole FourDS model (encoder + enabled heads) on one clip with fixed shapes:
  video:        (1, T, H, W, 3) float32 in [0, 1]
  query_points: (1, Q, 3) float32 (t, y, x) in model-input pixels, only with the tracks head
(the extra inputs of the enabled heads' registry entries) and returns the named outputs of
fourds_ros.model.OUTPUTS as float32 numpy arrays.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from ..model import ModelConfig
from ..model.registry import head_inputs, head_outputs, resolve_shape

DEFAULT_NUM_QUERIES = 64


class EngineError(RuntimeError):
    """An engine that cannot be created or run; the message says why."""


class EngineInputError(ValueError):
    """Inputs that do not match the engine's named, fixed-shape inputs."""


def check_query_points(queries: np.ndarray, clip_thw: tuple[int, int, int]) -> None:
    """EngineInputError unless every query (t, y, x) is finite, t a frame of the clip and (y, x) within one
    image size of the image (a tracker carries a point the head put off the image into its next clip's
    queries: eval's BADJA tracker does). Why: every backend ran NaN queries into NaN tracks, and a frame
    past the clip or a pixel far off the image into plausible wrong ones."""
    t, h, w = clip_thw
    bounds = np.array([[0.0, -h, -w], [t - 1.0, 2.0 * h, 2.0 * w]], np.float32)
    bad = ~(np.isfinite(queries) & (queries >= bounds[0]) & (queries <= bounds[1])).all(-1)
    if bad.any():
        first = np.argwhere(bad)[0]
        raise EngineInputError(f"input 'query_points': {int(bad.sum())} queries not finite, or outside the clip's "
                               f"frames 0..{t - 1} or pixels {-h}..{2 * h} (y), {-w}..{2 * w} (x); the first "
                               f"(t, y, x): {queries[tuple(first)].tolist()}")


def check_num_queries(num_queries) -> int:
    """num_queries as int, or ValueError: 0 queries crashed the ONNX export with SIGFPE (no log,
    a temp folder left in the cache)."""
    if isinstance(num_queries, bool) or not isinstance(num_queries, (int, np.integer)) or num_queries < 1:
        raise ValueError(f"num_queries must be an integer >= 1, got {num_queries!r}")
    return int(num_queries)


@dataclass(frozen=True)
class EngineSpec:
    """The fixed I/O contract of an engine, derived from the model config."""

    config: ModelConfig
    num_queries: int = DEFAULT_NUM_QUERIES

    def __post_init__(self):
        check_num_queries(self.num_queries)

    @property
    def dims(self) -> dict[str, int]:
        """Values of the registry's symbolic dims (registry.py) for this engine: batch 1."""
        t, h, w, _ = self.config.clip_shape
        return {"B": 1, "T": t, "H": h, "W": w, "Q": self.num_queries}

    @property
    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes = {"video": (1, *self.config.clip_shape)}
        dims = self.dims
        for name, (shape, _) in head_inputs(self.config.heads).items():
            shapes[name] = resolve_shape(shape, dims)
        return shapes

    @property
    def input_names(self) -> list[str]:
        return list(self.input_shapes)

    @property
    def output_names(self) -> list[str]:
        return list(head_outputs(self.config.heads))

    @property
    def output_shapes(self) -> dict[str, tuple[int, ...]]:
        dims = self.dims
        return {name: resolve_shape(shape, dims) for name, (shape, _) in head_outputs(self.config.heads).items()}


class InferenceEngine(ABC):
    backend: str = "?"

    def __init__(self, spec: EngineSpec):
        self.spec = spec

    @property
    def config(self) -> ModelConfig:
        return self.spec.config

    @property
    def input_names(self) -> list[str]:
        return self.spec.input_names

    @property
    def output_names(self) -> list[str]:
        return self.spec.output_names

    def describe(self) -> str:
        return self.backend

    def check_inputs(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The inputs as every backend runs them (C-contiguous), or EngineInputError naming what is wrong: a
        missing or extra name, dtype, shape, or a video outside [0, 1] or NaN. Why here: torch's model
        checked the range and ONNX Runtime and TensorRT ran a 0-255 or NaN clip into plausible wrong depth,
        so a team that tested on torch and deployed on `auto` got no error; and a reversed view
        (video[:, ::-1]) ran on ONNX Runtime and was a raw error from torch.from_numpy on the others."""
        import torch

        from ..model.fourds import check_video

        expected = self.spec.input_shapes
        if set(inputs) != set(expected):
            raise EngineInputError(
                f"{self.backend} engine takes inputs {sorted(expected)}, got {sorted(inputs)}"
            )
        checked = {}
        for name, shape in expected.items():
            arr = inputs[name]
            if not isinstance(arr, np.ndarray) or arr.dtype != np.float32:
                got = getattr(arr, "dtype", type(arr).__name__)
                raise EngineInputError(f"input {name!r} must be a float32 numpy array, got {got}")
            if tuple(arr.shape) != shape:
                raise EngineInputError(f"input {name!r} must have shape {shape}, got {tuple(arr.shape)}")
            checked[name] = np.ascontiguousarray(arr)
        try:
            if "video" in checked:
                check_video(torch.from_numpy(checked["video"]), self.config)  # shares the memory
        except ValueError as exc:
            raise EngineInputError(f"input 'video': {exc}") from None
        if "query_points" in checked:
            check_query_points(checked["query_points"], self.config.clip_shape[:3])
        return checked

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.check_outputs(self.run(self.check_inputs(inputs)))

    def check_outputs(self, outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The outputs, or EngineError naming one missing or of another shape than the model's. Why: an
        engine built for another model or size (a stale cache, a wrong file) gave depth of half the size,
        and the pipeline published it with the model grid's K, counting nothing."""
        for name, shape in self.spec.output_shapes.items():
            got = outputs.get(name)
            if got is None or tuple(got.shape) != shape:
                raise EngineError(f"the {self.backend} engine's output {name!r} is "
                                  f"{'missing' if got is None else tuple(got.shape)}, not the model's {shape}: "
                                  "an engine built for another model?")
        return outputs

    @abstractmethod
    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Inputs already checked. Returns every name in output_names as float32 numpy."""


def device_scope(device, cuda=None):
    """The CUDA device `device` current (or nothing, off CUDA): TensorRT's build, deserialization and
    runs, and a CUDA graph's capture stream, work on the current device, not on one they are given,
    so `cuda:1` worked on GPU 0 without it. cuda: torch.cuda, or a test double of its graph API."""
    import torch

    if torch.device(device).type != "cuda":
        return contextlib.nullcontext()
    return (cuda or torch.cuda).device(device)
