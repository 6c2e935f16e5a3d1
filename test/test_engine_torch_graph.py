"""The torch engine's CUDA graph path (engine/torch_backend.py), run here on the CPU with
FakeCudaGraphs, a TEST DOUBLE of torch.cuda's graph API: CUDA cannot run on this machine. The double
keeps a CUDA graph's memory semantics: replay reruns what was captured on the very tensors the
capture read and writes its results into the very tensors the capture returned, in place. So an
engine that forgot to copy a new clip in (stale inputs) or to copy the outputs out (overwritten by
the next replay) gives wrong answers here as it would on a GPU. What it cannot show: that the real
capture accepts every op of the model, which `bash tools/gpu_bench.sh` checks on a GPU (the node's
torch fp16 engine against the eager reference)."""

from __future__ import annotations

import contextlib
import logging
import sys

import numpy as np
import pytest
import torch

from fourds_ros.engine import create_engine
from fourds_ros.engine.export import example_inputs
from fourds_ros.engine.torch_backend import GraphedForward, TorchEngine


class FakeCudaGraphs:
    """TEST DOUBLE of torch.cuda's graph API: Stream, current_stream, stream, CUDAGraph, graph."""

    def __init__(self, fail_capture: bool = False, corrupt_replay: bool = False, empty_capture: bool = False):
        """empty_capture: the capture records no kernel (a model on another device than the current
        one: its kernels run eagerly on that device's stream), so replay leaves the outputs as the
        capture wrote them, for the captured clip."""
        self.fail_capture, self.corrupt_replay, self.empty_capture = fail_capture, corrupt_replay, empty_capture
        self.warmup_calls = self.captures = self.replays = 0

    class Stream:
        def wait_stream(self, other):
            pass

    def current_stream(self):
        return self.Stream()

    @contextlib.contextmanager
    def stream(self, side):
        yield

    class CUDAGraph:
        def replay(self):
            self.rerun()

    @contextlib.contextmanager
    def graph(self, g):
        if self.fail_capture:
            raise RuntimeError("operation not permitted when stream is capturing (test double)")
        yield
        # What the capture recorded: GraphedForward's forward on its own input tensors, writing into
        # the outputs it kept (read from the capturing frame: the double cannot record kernels).
        frame = sys._getframe(2)  # GraphedForward.__init__ (contextmanager's __exit__ is frame 1)
        graphed, forward = frame.f_locals["self"], frame.f_locals["forward"]
        self.captures += 1

        def rerun():
            self.replays += 1
            if self.empty_capture:
                return
            with torch.inference_mode():
                fresh = forward(graphed.inputs)
            for name, t in graphed.outputs.items():
                t.copy_(fresh[name] * (2.0 if self.corrupt_replay else 1.0))
        g.rerun = rerun


def test_graphed_forward_copies_each_call_in_and_its_outputs_out():
    cuda = FakeCudaGraphs()
    calls = []

    def forward(t):
        calls.append(1)
        return {"y": t["x"] * 2 + 1}

    graphed = GraphedForward(forward, {"x": torch.zeros(4)}, cuda=cuda, warmup=3)
    assert len(calls) == 4 and cuda.captures == 1  # 3 warm-up runs, then the one captured
    a, b = torch.arange(4.0), torch.full((4,), 5.0)
    out_a = graphed({"x": a})
    out_b = graphed({"x": b})
    assert torch.equal(out_a["y"], a * 2 + 1) and torch.equal(out_b["y"], b * 2 + 1)  # neither stale nor overwritten
    assert cuda.replays == 2


@pytest.fixture(scope="module")
def torch_engine_inputs(tiny_model_dir):
    eager = create_engine(tiny_model_dir, backend="torch", num_queries=4)
    inputs = example_inputs(eager.spec, seed=3)
    other = example_inputs(eager.spec, seed=4)
    return eager, inputs, other


def graph_engine(eager, cuda) -> TorchEngine:
    """The same model and spec as `eager`, on the CPU, with the graph path on and the double."""
    import copy

    return TorchEngine(copy.deepcopy(eager.model), eager.spec, cuda_graph=True, cuda=cuda)


def test_a_captured_engine_gives_the_eager_outputs_clip_after_clip(torch_engine_inputs):
    eager, inputs, other = torch_engine_inputs
    cuda = FakeCudaGraphs()
    engine = graph_engine(eager, cuda)
    assert engine.describe() == "torch (cpu, fp32)"  # not captured before the first clip
    clips = (inputs, other, inputs)
    outs = [engine(clip) for clip in clips]  # all kept before any is compared: none may be overwritten
    for clip, out in zip(clips, outs):
        ref = eager(clip)
        for name in ref:
            np.testing.assert_allclose(out[name], ref[name], rtol=1e-5, atol=1e-5)
    assert cuda.captures == 1 and engine.describe() == "torch (cpu, fp32, CUDA graph)"
    assert cuda.replays == 4  # the parity check's and one a clip
    # The model's input checks, which would sync the host inside a graph, run on the host copy.
    bad = {**inputs, "video": inputs["video"] * 3}
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        engine(bad)


@pytest.mark.parametrize("failure", ["fail_capture", "corrupt_replay", "empty_capture"])
def test_an_engine_whose_graph_fails_or_disagrees_runs_eager_and_says_so(torch_engine_inputs, failure, caplog):
    eager, inputs, other = torch_engine_inputs
    cuda = FakeCudaGraphs(**{failure: True})
    engine = graph_engine(eager, cuda)
    with caplog.at_level(logging.WARNING, logger="fourds_ros.engine.torch_backend"):
        first = engine(inputs)
    assert "running eager" in caplog.text
    for clip, out in ((inputs, first), (other, engine(other))):
        ref = eager(clip)
        for name in ref:
            np.testing.assert_allclose(out[name], ref[name], rtol=1e-5, atol=1e-5)
    assert engine.graphed is None and engine.describe() == "torch (cpu, fp32)"
    assert cuda.captures <= 1 and engine.model.check_inputs  # tried once, inputs checked as before


def test_on_the_cpu_the_engine_never_captures(tiny_model_dir):
    engine = create_engine(tiny_model_dir, backend="torch", num_queries=4)
    assert engine.graphed is None
