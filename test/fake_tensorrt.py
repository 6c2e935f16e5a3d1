"""TEST DOUBLE for the `tensorrt` module (TensorRT cannot be installed on the test machines).

`FakeTensorRT` mimics the TensorRT 10/11 Python API surface that fourds_ros.engine.tensorrt_backend
uses and records every call in `calls`, so tests can check the call sequence (strongly typed
network, workspace limit, timing cache, build, deserialize, I/O by name, execute_async_v3).
The "engine" it builds is the ONNX path plus a version tag; executing it reads the inputs from the
bound addresses, runs the graph in real ONNX Runtime and writes the outputs to the bound
addresses, so the backend's buffer plumbing is exercised for real. Nothing here is TensorRT.
"""

from __future__ import annotations

import ctypes
import enum
import json
import types

import numpy as np

MAGIC = b"FAKETRT1"


class NetworkDefinitionCreationFlag(enum.IntEnum):
    EXPLICIT_BATCH = 0
    STRONGLY_TYPED = 1


class MemoryPoolType(enum.IntEnum):
    WORKSPACE = 0


class BuilderFlag(enum.IntEnum):
    TF32 = 6  # "Enabled by default" (TensorRT's BuilderFlag docs): fp32 matmuls round inputs to 10 bits


class TensorIOMode(enum.Enum):
    NONE = 0
    INPUT = 1
    OUTPUT = 2


class DataType(enum.Enum):
    FLOAT = 0
    HALF = 1
    INT32 = 3
    BOOL = 4
    BF16 = 7
    INT64 = 8


_ONNX_TO_DTYPE = {1: DataType.FLOAT, 10: DataType.HALF, 6: DataType.INT32, 7: DataType.INT64}
_NUMPY = {DataType.FLOAT: np.float32, DataType.HALF: np.float16, DataType.INT32: np.int32,
          DataType.INT64: np.int64}


class FakeTensorRT(types.ModuleType):
    """A module object to put in sys.modules["tensorrt"] or pass as `tensorrt=`."""

    def __init__(self, version: str = "10.3.0"):
        super().__init__("tensorrt")
        self.__version__ = version
        self.calls: list[str] = []
        self.NetworkDefinitionCreationFlag = NetworkDefinitionCreationFlag
        self.MemoryPoolType = MemoryPoolType
        self.BuilderFlag = BuilderFlag
        self.TensorIOMode = TensorIOMode
        self.DataType = DataType
        fake = self

        class Logger:
            WARNING = 2
            ERROR = 1

            def __init__(self, severity=2):
                self.severity = severity

        class Network:
            def __init__(self, flags):
                self.flags = flags
                self.io = None

        class OnnxParser:
            def __init__(self, network, logger):
                fake.calls.append("OnnxParser")
                self.network, self.errors = network, []

            def parse_from_file(self, path):
                import onnx

                fake.calls.append("parse_from_file")
                try:
                    model = onnx.load(path)
                except Exception as e:
                    self.errors = [f"cannot read {path}: {e}"]
                    return False

                def describe(values):
                    return [(v.name, [d.dim_value for d in v.type.tensor_type.shape.dim],
                             _ONNX_TO_DTYPE[v.type.tensor_type.elem_type].name) for v in values]

                self.network.io = {"onnx": str(path), "inputs": describe(model.graph.input),
                                   "outputs": describe(model.graph.output)}
                return True

            @property
            def num_errors(self):
                return len(self.errors)

            def get_error(self, i):
                return self.errors[i]

        class TimingCache:
            def __init__(self, data: bytes):
                self.entries = int(data[9:] or 0) if data else 0

            def serialize(self):
                return b"FAKECACHE" + str(self.entries).encode()

        class BuilderConfig:
            def __init__(self):
                self.workspace, self.timing_cache = None, None
                self.flags = {BuilderFlag.TF32}  # TensorRT's default

            def set_flag(self, flag):
                self.flags.add(BuilderFlag(flag))

            def clear_flag(self, flag):
                fake.calls.append(f"clear_flag({BuilderFlag(flag).name})")
                self.flags.discard(BuilderFlag(flag))

            def get_flag(self, flag):
                return BuilderFlag(flag) in self.flags

            def set_memory_pool_limit(self, pool, size):
                fake.calls.append(f"set_memory_pool_limit({MemoryPoolType(pool).name})")
                self.workspace = size

            def create_timing_cache(self, data):
                # As the real binding: bytes it cannot read give None (a nullptr from a noexcept C++ call), no raise
                fake.calls.append(f"create_timing_cache({len(data)} bytes)")
                data = bytes(data)
                return None if data and not data.startswith(b"FAKECACHE") else TimingCache(data)

            def set_timing_cache(self, cache, ignore_mismatch):
                if not isinstance(cache, TimingCache):  # bound to setTimingCache(ITimingCache const&, bool)
                    raise TypeError("set_timing_cache(): incompatible function arguments")
                fake.calls.append("set_timing_cache")
                self.timing_cache = cache
                return True

            def get_timing_cache(self):
                return self.timing_cache

        class Builder:
            def __init__(self, logger):
                fake.calls.append("Builder")

            def create_network(self, flags=0):
                fake.calls.append(f"create_network({flags})")
                return Network(flags)

            def create_builder_config(self):
                fake.calls.append("create_builder_config")
                return BuilderConfig()

            def build_serialized_network(self, network, config):
                fake.calls.append("build_serialized_network")
                strongly_typed = bool(network.flags & (1 << int(NetworkDefinitionCreationFlag.STRONGLY_TYPED)))
                if network.io is None or config.workspace is None or not strongly_typed:
                    return None
                config.timing_cache.entries += 1
                fake.built_flags = set(config.flags)
                body = json.dumps({"version": fake.__version__, **network.io}).encode()
                return MAGIC + body

        class Engine:
            def __init__(self, meta):
                self.meta = meta
                self.io = [(n, s, d, TensorIOMode.INPUT) for n, s, d in meta["inputs"]]
                self.io += [(n, s, d, TensorIOMode.OUTPUT) for n, s, d in meta["outputs"]]

            @property
            def num_io_tensors(self):
                return len(self.io)

            def _find(self, name):
                return next(t for t in self.io if t[0] == name)

            def get_tensor_name(self, i):
                return self.io[i][0]

            def get_tensor_mode(self, name):
                return self._find(name)[3]

            def get_tensor_shape(self, name):
                return tuple(self._find(name)[1])

            def get_tensor_dtype(self, name):
                return DataType[self._find(name)[2]]

            def create_execution_context(self):
                fake.calls.append("create_execution_context")
                return Context(self)

        class Context:
            def __init__(self, engine):
                import onnxruntime as ort

                self.engine, self.addresses = engine, {}
                self.session = ort.InferenceSession(engine.meta["onnx"], providers=["CPUExecutionProvider"])

            def set_tensor_address(self, name, ptr):
                fake.calls.append(f"set_tensor_address({name})")
                self.addresses[name] = ptr

            def _view(self, name):
                _, shape, dtype, _ = self.engine._find(name)
                np_dtype = np.dtype(_NUMPY[DataType[dtype]])
                count = int(np.prod(shape))
                raw = (ctypes.c_byte * (count * np_dtype.itemsize)).from_address(self.addresses[name])
                return np.frombuffer(raw, dtype=np_dtype).reshape(shape)

            def execute_async_v3(self, stream_handle):
                fake.calls.append("execute_async_v3")
                inputs = {n: self._view(n).copy() for n, _, _, m in self.engine.io if m == TensorIOMode.INPUT}
                names = [n for n, _, _, m in self.engine.io if m == TensorIOMode.OUTPUT]
                for name, value in zip(names, self.session.run(names, inputs)):
                    self._view(name)[...] = value
                return True

        class Runtime:
            def __init__(self, logger):
                fake.calls.append("Runtime")

            def deserialize_cuda_engine(self, data):
                fake.calls.append("deserialize_cuda_engine")
                data = bytes(data)
                if not data.startswith(MAGIC):
                    fake.log.append("Serialization assertion magicTagRead == kMAGIC_TAG failed")
                    return None
                try:
                    meta = json.loads(data[len(MAGIC):])
                except ValueError:
                    fake.log.append("engine plan is truncated")
                    return None
                if meta["version"] != fake.__version__:
                    fake.log.append("Serialization assertion: version tag does not match")
                    return None
                return Engine(meta)

        self.log: list[str] = []
        self.Logger = Logger
        self.Builder = Builder
        self.OnnxParser = OnnxParser
        self.Runtime = Runtime
