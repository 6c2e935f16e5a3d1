"""The torch backend: eager PyTorch on CPU or CUDA, in fp32, bf16 or fp16; on CUDA, the model
captured once as a CUDA graph and replayed for every clip.

Why a graph on CUDA: at these clip sizes a GPU waits on kernel launches, not arithmetic. On an
H200, eager torch took 8.6-9.3 ms a 16x224x224 S clip in every precision, the same model replayed
as one CUDA graph 2.61 ms in fp16 (docs/benchmarks.md, "Inference engines (CUDA)"). Capture needs
fixed shapes (the engine's are) and no host syncs in the forward (the model's input checks, which
run on the host copy instead). Where capture fails, or a replay of another clip than the captured
one disagrees with the eager forward, the engine says so and stays eager.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from ..model import FourDS
from .base import EngineError, EngineSpec, InferenceEngine, device_scope

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
# The first replay against the eager forward, as relative L2 per output. Half precision alone moves
# outputs by up to 0.0051 against fp32 (docs/benchmarks.md, session 42), and the attention kernel
# chosen under capture may differ from eager's; a graph that lost something (a stale input, a host
# value baked in) is off by a large fraction of the output's size.
GRAPH_PARITY_TOLERANCE = 1e-2
log = logging.getLogger(__name__)


class GraphedForward:
    """forward(inputs) -> outputs (dicts of tensors of fixed shapes) captured once as a CUDA graph.
    Calling it copies the inputs into the tensors the graph reads and returns copies of the tensors
    it writes (the next replay overwrites them). `cuda`: torch.cuda, or a test double of its graph
    API (Stream, current_stream, stream, CUDAGraph, graph)."""

    def __init__(self, forward, example: dict[str, torch.Tensor], cuda=torch.cuda, warmup: int = 3):
        self.inputs = {name: t.clone() for name, t in example.items()}
        side = cuda.Stream()  # warm-up on a side stream before capture, as torch.cuda.graphs asks
        side.wait_stream(cuda.current_stream())
        with cuda.stream(side):
            for _ in range(warmup):
                forward(self.inputs)
        cuda.current_stream().wait_stream(side)
        self.graph = cuda.CUDAGraph()
        with cuda.graph(self.graph):
            self.outputs = forward(self.inputs)

    def __call__(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        for name, t in inputs.items():
            self.inputs[name].copy_(t, non_blocking=True)
        self.graph.replay()
        return {name: t.clone() for name, t in self.outputs.items()}


# torch's thread count before any engine set one (its default: the cores it may use).
TORCH_DEFAULT_THREADS = torch.get_num_threads()


class TorchEngine(InferenceEngine):
    backend = "torch"

    def __init__(self, model: FourDS, spec: EngineSpec, device: str = "cpu", precision: str = "fp32",
                 threads: int | None = None, cuda_graph: bool | None = None, cuda=torch.cuda):
        """cuda_graph: None (default) captures a CUDA graph on a CUDA device; False never; True also
        elsewhere, which only means something with `cuda`, a test double of torch.cuda's graph API."""
        super().__init__(spec)
        # Process-wide in torch (the node has one engine). 0 / None is torch's own default again: a node
        # reconfigured from inference_threads 1 back to 0 kept one thread until it restarted.
        torch.set_num_threads(threads or TORCH_DEFAULT_THREADS)
        if precision not in DTYPES:
            raise EngineError(f"torch precision must be one of {sorted(DTYPES)}, got {precision!r}")
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise EngineError(f"device {device!r} requested but CUDA is not available")
        self.device = torch.device(device)
        self.precision = precision
        self.model = model.to(self.device).eval()
        # "pending": captured on the first clip; then a GraphedForward, or None (eager: CPU, or refused).
        use_graph = self.device.type == "cuda" if cuda_graph is None else cuda_graph
        self.graphed = "pending" if use_graph else None
        self.cuda = cuda

    def describe(self) -> str:
        graph = ", CUDA graph" if isinstance(self.graphed, GraphedForward) else ""
        return f"torch ({self.device.type}, {self.precision}{graph})"

    def _forward(self, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        dtype = DTYPES[self.precision]
        # cache_enabled=False: autocast's weight-cast cache must not outlive a graph capture.
        with torch.autocast(self.device.type, dtype=dtype, enabled=dtype != torch.float32, cache_enabled=False):
            # every input the spec names (query_points and any other head's), as the graphs get them
            return self.model(tensors["video"], **{k: v for k, v in tensors.items() if k != "video"})

    @torch.inference_mode()
    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        host = {k: torch.from_numpy(v) for k, v in inputs.items()}
        if self.graphed == "pending":  # the host copy was checked (check_inputs): no sync in the graph
            self.graphed = self._capture(self._on_device(host))
        if isinstance(self.graphed, GraphedForward):
            out = self.graphed(host)  # copied from the host straight into the tensors the graph reads
        else:
            out = self._forward(self._on_device(host))
        return {k: v.float().cpu().numpy() for k, v in out.items()}

    def _on_device(self, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v.to(self.device) for k, v in tensors.items()}

    def _capture(self, tensors: dict[str, torch.Tensor]) -> GraphedForward | None:
        """The graph of this engine's forward, captured on the first clip and checked against the
        eager forward on another (the first clip inverted): a graph that recorded nothing still
        holds the capture's own outputs, so a check on the captured clip passes it. None (eager
        from now on, said once) where capture fails or the two disagree."""
        probe = {k: 1.0 - v if k == "video" else v for k, v in tensors.items()}
        eager = self._forward(probe)
        self.model.check_inputs = False  # the graph must not sync the host; check_inputs checked the host copy
        try:
            # The capture stream is made on the current device: cuda:1's model captured from device
            # 0 recorded none of its kernels (they ran eagerly on device 1's own stream).
            with device_scope(self.device, self.cuda):
                graphed = GraphedForward(self._forward, tensors, self.cuda)
            replayed = graphed(probe)
        except Exception as exc:  # capture refuses some ops; eager still works
            self.model.check_inputs = True
            log.warning("torch engine: CUDA graph capture failed (%s: %s); running eager", type(exc).__name__, exc)
            return None
        worst = max(float(torch.linalg.vector_norm((replayed[k] - eager[k]).float()) /
                          (torch.linalg.vector_norm(eager[k].float()) + 1e-12)) for k in eager)
        if not worst <= GRAPH_PARITY_TOLERANCE:
            self.model.check_inputs = True
            log.warning("torch engine: the CUDA graph's replay of another clip differs from the eager forward by "
                        "%.2g (relative L2); running eager", worst)
            return None
        log.info("torch engine: CUDA graph captured (first replay within %.1g of eager)", worst)
        return graphed
