"""Our checkpoint format: a directory with `config.json` (ModelConfig) and `model.safetensors`.

Loading checks every key and shape against the config before anything is copied, and names the
offending key, so a wrong or corrupt checkpoint fails with a message rather than a traceback
deep inside torch. The keys and shapes are compared first from the safetensors header and a
model built on the meta device, so a config naming a larger model than its weights (a typo,
a wrong file) fails by name instead of allocating that model first.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor

from .config import ModelConfig
from .fourds import FourDS

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded; the message says what was expected."""


def check_state_dict(expected: dict[str, torch.Size], found: dict[str, Tensor], source: str) -> None:
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    problems = []
    if missing:
        problems.append(f"missing keys: {missing[:8]}{' ...' if len(missing) > 8 else ''}")
    if extra:
        problems.append(f"unexpected keys: {extra[:8]}{' ...' if len(extra) > 8 else ''}")
    for key in sorted(set(expected) & set(found)):
        if tuple(found[key].shape) != tuple(expected[key]):
            problems.append(
                f"key {key!r} has shape {tuple(found[key].shape)}, expected {tuple(expected[key])}"
            )
        elif not found[key].is_floating_point():
            problems.append(f"key {key!r} has dtype {found[key].dtype}, expected a float tensor")
    if problems:
        raise CheckpointError(f"{source}: " + "; ".join(problems))


def _fsync(path: str | Path, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | Path, write: Callable[[str], object]) -> Path:
    """`write(tmp)` writes a temporary file in `path`'s directory, which then replaces `path`,
    so readers see the old file or the new one, never half of one.

    The data are fsynced before the rename and the directory after it: otherwise a power loss
    soon after can leave the renamed name pointing at empty or partial data (the rename reaches
    the disk before the data on common filesystems). On any failure the temporary file is
    deleted and `path` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file normal permissions
        _fsync(tmp)
        os.replace(tmp, path)
        _fsync(path.parent, directory=True)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def save_checkpoint(model: FourDS, directory: str | Path, metadata: dict | None = None,
                    dtype: torch.dtype | None = None) -> Path:
    """dtype: store floating-point weights in this type (float16 halves a shipped model; loading
    casts back to the model's float32 parameters). ValueError, with nothing written, where a finite weight
    is not finite in `dtype` (float16 ends at 65504): such a file was written, then refused by
    load_checkpoint, over the model it was converted from."""
    directory = Path(directory)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    if dtype is not None:
        cast = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
        lost = [k for k, v in state.items() if v.is_floating_point() and torch.isfinite(v).all()
                and not torch.isfinite(cast[k]).all()]
        if lost:
            top = max(float(state[k].abs().max()) for k in lost)
            raise ValueError(f"{len(lost)} weight tensor(s) ({', '.join(lost[:3])}{', ...' if len(lost) > 3 else ''}) "
                             f"hold values up to {top:.3g}, past {dtype}'s range ({torch.finfo(dtype).max:.3g})")
        state = cast
    meta = {k: str(v) for k, v in (metadata or {}).items()}
    atomic_write(directory / WEIGHTS_FILE, lambda p: save_file(state, p, metadata=meta))
    atomic_write(
        directory / CONFIG_FILE,
        lambda p: Path(p).write_text(json.dumps(model.config.to_dict(), indent=2) + "\n"),
    )
    return directory


def load_config(directory: str | Path) -> ModelConfig:
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(f"{directory}: no {CONFIG_FILE} (expected a fourds_ros model dir)")
    try:
        return ModelConfig.from_dict(json.loads(path.read_text()))
    # AttributeError, KeyError, ZeroDivisionError: a field of the wrong kind ("heads" a list, a patch
    # size of 0) fails inside the checks; it is still the file's fault, said as one
    except (json.JSONDecodeError, TypeError, ValueError, AttributeError, KeyError, ZeroDivisionError) as e:
        raise CheckpointError(f"{path}: invalid model config: {type(e).__name__}: {e}") from e


def _build(config: ModelConfig, config_path: Path) -> FourDS:
    try:
        return FourDS(config)
    except (TypeError, ValueError, RuntimeError) as e:  # e.g. a whole number given as 32.0
        raise CheckpointError(f"{config_path}: describes a model that cannot be built: {e}") from e


def _read_weights(weights: Path, read: Callable[[], dict[str, Tensor]]) -> dict[str, Tensor]:
    try:
        return read()
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{weights}: unreadable safetensors file ({e})") from e


def _header_tensors(weights: Path) -> dict[str, Tensor]:
    """The tensors in `weights` as meta tensors of their shapes, read from the header: nothing is loaded.
    Float placeholders: the dtypes are checked on the loaded tensors."""
    with safe_open(str(weights), framework="pt") as f:
        keys = f.keys()  # a safe_open is not iterable
        return {k: torch.empty(f.get_slice(k).get_shape(), device="meta") for k in keys}


def read_metadata(directory: str | Path) -> dict[str, str]:
    """The metadata stored in a model directory's weights file (training steps, stored dtype, ...)."""
    weights = Path(directory) / WEIGHTS_FILE
    return _read_weights(weights, lambda: _metadata(weights))


def _metadata(weights: Path) -> dict[str, str]:
    with safe_open(str(weights), framework="pt") as f:
        return dict(f.metadata() or {})


def load_checkpoint(directory: str | Path, device: str | torch.device = "cpu") -> FourDS:
    """Build the model from config.json and load model.safetensors, validated key by key."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"model directory {directory} does not exist")
    config = load_config(directory)
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise CheckpointError(f"{directory}: no {WEIGHTS_FILE}")
    # Keys and shapes first, from the header against a model on the meta device (no memory): a config
    # describing a larger model than its weights would otherwise allocate all of it (GBs) before failing.
    header = _read_weights(weights, lambda: _header_tensors(weights))
    with torch.device("meta"):
        expected = {k: v.shape for k, v in _build(config, directory / CONFIG_FILE).state_dict().items()}
    check_state_dict(expected, header, str(weights))
    state = _read_weights(weights, lambda: load_file(str(weights), device=str(device)))
    check_state_dict(expected, state, str(weights))  # the dtypes
    for key, value in state.items():
        if not torch.isfinite(value).all():
            raise CheckpointError(f"{weights}: key {key!r} contains NaN or Inf")
    model = _build(config, directory / CONFIG_FILE)
    model.load_state_dict(state)
    return model.to(device).eval()
