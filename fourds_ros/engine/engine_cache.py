"""The engine cache: where exported ONNX files and TensorRT engines live, how they are keyed, and
how they are written (atomically, so a crash or a second process never leaves half a file).

Layout under the cache directory:
  onnx/<checkpoint key>/model.onnx (+ model.onnx.data for large models)
  tensorrt/<engine key>.engine and tensorrt/timing.cache
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .base import EngineError

CACHE_ENV = "FOURDS_ROS_CACHE_DIR"
# Bumped when the export changes in a way that makes old cached graphs wrong.
EXPORT_FORMAT_VERSION = 1


class CacheDirError(EngineError):
    """The cache directory is missing and cannot be created, or cannot be written."""


def default_cache_dir() -> Path:
    """$FOURDS_ROS_CACHE_DIR, else ~/.cache/fourds_ros/engines."""
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path.home() / ".cache" / "fourds_ros" / "engines"


def ensure_writable_dir(path: str | Path) -> Path:
    """Create `path` if needed and prove it is writable; raise CacheDirError saying why not."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as e:
        raise CacheDirError(f"engine cache directory {path} cannot be created: a path component is a file ({e})") from e
    except OSError as e:
        raise CacheDirError(f"engine cache directory {path} cannot be created: {e.strerror or e}") from e
    if not path.is_dir():
        raise CacheDirError(f"engine cache directory {path} is not a directory")
    try:
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise CacheDirError(f"engine cache directory {path} is not writable: {e.strerror or e}") from e
    return path


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it onto `path`, on error delete it.

    os.replace is atomic within one filesystem, so readers see the old file or the new one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    return Path(path)


def digest(*parts: bytes | str, files: tuple[Path, ...] = ()) -> str:
    """sha256 hex of the parts and the bytes of `files` (streamed, each length-prefixed)."""
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    for file in files:
        h.update(Path(file).stat().st_size.to_bytes(8, "little"))
        with open(file, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                h.update(chunk)
    return h.hexdigest()


def onnx_files(onnx_path: str | Path) -> tuple[Path, ...]:
    """The ONNX file and its external-data file (when the export wrote one)."""
    onnx_path = Path(onnx_path)
    data = onnx_path.with_name(onnx_path.name + ".data")
    return (onnx_path, data) if data.exists() else (onnx_path,)


def checkpoint_key(model_dir: str | Path, precision: str, num_queries: int) -> str:
    """Key of an exported graph: checkpoint bytes, export precision, query count, exporter."""
    import onnx
    import torch

    from ..model.checkpoint import CONFIG_FILE, WEIGHTS_FILE

    model_dir = Path(model_dir)
    return digest(
        f"precision={precision}", f"num_queries={num_queries}",
        f"torch={torch.__version__}", f"onnx={onnx.__version__}", f"format={EXPORT_FORMAT_VERSION}",
        files=(model_dir / CONFIG_FILE, model_dir / WEIGHTS_FILE),
    )[:32]


def tensorrt_engine_key(
    onnx_path: str | Path,
    tensorrt_version: str,
    gpu_name: str,
    compute_capability: tuple[int, int],
    precision: str,
) -> str:
    """Key of a TensorRT engine: ONNX bytes (with external data), TensorRT version, GPU name and
    compute capability, precision. Any change gives a new engine file."""
    return digest(
        f"tensorrt={tensorrt_version}", f"gpu={gpu_name}",
        "sm={}.{}".format(*compute_capability), f"precision={precision}",
        files=onnx_files(onnx_path),
    )[:32]
