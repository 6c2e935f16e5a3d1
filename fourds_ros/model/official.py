"""Import the official 4DS checkpoints (google-deepmind/representations4d .npz files).

The files hold flat '/'-joined Flax variable paths: `params/layers_0/...` (encoder) and
`params/layers_2/...` (readout) for models assembled as nn.Sequential([encoder,
EncoderToReadout, readout]) like `scaling4d_dist_b_depth.npz`, or the encoder alone (paths
`params/encoder/...`, `params/processor/...`) for backbone-only files such as
`scaling4d_dist_b.npz` and `scaling4d_e.npz`. Every array must be consumed exactly once.
"""

from __future__ import annotations

import logging
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .checkpoint import CheckpointError, check_state_dict, save_checkpoint
from .config import ENCODER_SIZES, DepthHeadConfig, ModelConfig
from .fourds import FourDS
from .readout import AttentionReadout

log = logging.getLogger(__name__)


def _declared(path: str | Path) -> int:
    """Bytes the .npz's arrays take as float32, from each member's .npy header, before anything is read.
    ValueError where a member is no plain numeric array (a structured or object dtype: nothing to convert),
    or declares more bytes than the archive holds for it (its header lies: a crafted or cut file)."""
    total = 0
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, _, dtype = read(member)
            if dtype.kind not in "biuf" or dtype.fields is not None:
                raise ValueError(f"{info.filename} is a {dtype} array, not a numeric one")
            count = int(np.prod(shape, dtype=object))
            if count * dtype.itemsize > info.file_size:
                raise ValueError(f"{info.filename} declares {count} values of {dtype} in {info.file_size} bytes")
            total += count * 4
    return total


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    """All arrays of an official .npz, float32. Raises CheckpointError when unreadable, or when its arrays would
    not fit this computer's memory (checked from their headers first: a crafted header asked numpy for 36 TiB,
    and a compressed archive can hold far more than its size)."""
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):  # a .npy: one array, no keys
            raise ValueError("one array, not a .npz archive of named arrays")
        loaded.close()
        need, memory = _declared(path), os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        if need > memory:
            raise ValueError(f"its arrays take {need / 2**30:.1f} GiB as float32, more than this computer's "
                             f"{memory / 2**30:.1f} GiB of memory")
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: np.asarray(z[k], dtype=np.float32) for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, MemoryError) as e:
        raise CheckpointError(f"{path}: not a readable .npz checkpoint ({e})") from e
    if not any(k.startswith("params/") for k in arrays):
        raise CheckpointError(f"{path}: no 'params/...' keys; is this an official 4DS checkpoint?")
    return arrays


def _params(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}


def split_official(arrays: dict[str, np.ndarray]) -> tuple[dict, dict]:
    """-> (encoder arrays, readout arrays) with their Flax prefixes stripped."""
    if any(k.startswith("params/layers_0/") for k in arrays):
        # layers_0 the backbone, layers_2 the readout; anything else under params/ would be dropped unsaid
        stray = [k for k in arrays if k.startswith("params/")
                 and not k.startswith(("params/layers_0/", "params/layers_2/"))]
        if stray:
            raise CheckpointError(f"unrecognised official keys: {stray[:5]}")
        return _params(arrays, "params/layers_0/"), _params(arrays, "params/layers_2/")
    encoder = _params(arrays, "params/")
    stray = [k for k in encoder if not k.startswith(("encoder/", "processor/"))]
    if stray:
        raise CheckpointError(f"unrecognised official keys: {stray[:5]}")
    return encoder, {}


class _Consumer:
    """Hands out arrays by Flax key and reports whatever was never used."""

    def __init__(self, arrays: dict[str, np.ndarray], source: str):
        self.arrays, self.used, self.source = arrays, set(), source

    def take(self, key: str) -> np.ndarray:
        if key not in self.arrays:
            raise CheckpointError(f"{self.source}: missing official key {key!r}")
        self.used.add(key)
        return self.arrays[key]

    def has(self, key: str) -> bool:
        return key in self.arrays

    def finish(self) -> None:
        left = sorted(set(self.arrays) - self.used)
        if left:
            raise CheckpointError(f"{self.source}: unexpected official keys {left[:8]}")


def _t(a: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))


def _dense(c: _Consumer, flax: str, ours: str, out: dict) -> None:
    """Dense / DenseGeneral kernel (in, ...) or (heads, dim, out) -> Linear weight (out, in)."""
    kernel = c.take(f"{flax}/kernel")
    bias = c.take(f"{flax}/bias")
    if kernel.ndim == 3 and bias.ndim == 1:  # attention `out`: (heads, head_dim, out)
        kernel = kernel.reshape(-1, kernel.shape[-1])
    else:  # (in, out) or q/k/v (in, heads, head_dim), flattened head-major
        kernel = kernel.reshape(kernel.shape[0], -1)
    out[f"{ours}.weight"] = _t(kernel.T)
    out[f"{ours}.bias"] = _t(bias.reshape(-1))


def _norm(c: _Consumer, flax: str, ours: str, out: dict) -> None:
    out[f"{ours}.weight"] = _t(c.take(f"{flax}/scale"))
    out[f"{ours}.bias"] = _t(c.take(f"{flax}/bias"))


@dataclass
class OfficialEncoder:
    size: str
    patch_size: tuple[int, int, int]
    posenc_grid: tuple[int, int, int]
    state: dict[str, Tensor]  # keys relative to `encoder.`


def convert_encoder(arrays: dict[str, np.ndarray], source: str = "checkpoint") -> OfficialEncoder:
    c = _Consumer(arrays, source)
    conv = c.take("encoder/patch_embedding/Conv_0/kernel")  # (kt, kh, kw, 3, D)
    if conv.ndim != 5 or conv.shape[3] != 3:
        raise CheckpointError(f"{source}: patch embedding kernel {conv.shape}, expected (kt,kh,kw,3,D)")
    width = conv.shape[4]
    posenc = c.take("encoder/posenc/embeddings")
    blocks = sorted(
        {int(m.group(1)) for k in arrays if (m := re.match(r"processor/layers_(\d+)/", k))}
    )
    depth = len(blocks)
    if blocks != list(range(depth)):
        raise CheckpointError(f"{source}: transformer block indices are not 0..{depth - 1}")
    mlp_dim = arrays.get("processor/layers_0/mlp/dense_in/kernel", np.zeros((0, 0))).shape[-1]
    heads = arrays.get("processor/layers_0/attention/query/kernel", np.zeros((0, 0, 0))).shape[1]
    size = next(
        (n for n, s in ENCODER_SIZES.items()
         if (s.width, s.depth, s.mlp_dim, s.num_heads) == (width, depth, mlp_dim, heads)),
        None,
    )
    if size is None:
        raise CheckpointError(
            f"{source}: encoder width {width}, depth {depth}, mlp {mlp_dim}, heads {heads} "
            "matches no registered 4DS size"
        )
    state = {
        "patch_embedding.proj.weight": _t(conv.transpose(4, 3, 0, 1, 2)),
        "patch_embedding.proj.bias": _t(c.take("encoder/patch_embedding/Conv_0/bias")),
        "posenc": _t(posenc),
    }
    for i in blocks:
        f, o = f"processor/layers_{i}", f"blocks.{i}"
        _norm(c, f"{f}/attention_norm", f"{o}.attention_norm", state)
        for name in ("query", "key", "value", "out"):
            _dense(c, f"{f}/attention/{name}", f"{o}.attention.{name}", state)
        _norm(c, f"{f}/mlp_norm", f"{o}.mlp_norm", state)
        _dense(c, f"{f}/mlp/dense_in", f"{o}.mlp.dense_in", state)
        _dense(c, f"{f}/mlp/dense_out", f"{o}.mlp.dense_out", state)
    c.finish()
    return OfficialEncoder(size, tuple(conv.shape[:3]), tuple(posenc.shape[:3]), state)


@dataclass
class OfficialReadout:
    num_params: int
    num_heads: int
    num_classes: int
    num_frames: int
    input_dim: int
    num_queries: int | None  # learned queries
    query_dim: int | None  # external queries
    state: dict[str, Tensor]  # keys of AttentionReadout

    def build(self, output_shape=None, decoding_patch_size=None) -> AttentionReadout:
        module = AttentionReadout(
            input_dim=self.input_dim, num_params=self.num_params, num_heads=self.num_heads,
            num_classes=self.num_classes, num_frames=self.num_frames,
            num_queries=self.num_queries, query_dim=self.query_dim,
            output_shape=output_shape, decoding_patch_size=decoding_patch_size,
        )
        expected = {k: v.shape for k, v in module.state_dict().items()}
        check_state_dict(expected, self.state, "official readout")
        module.load_state_dict(self.state)
        return module


def convert_readout(arrays: dict[str, np.ndarray], source: str = "checkpoint") -> OfficialReadout:
    c = _Consumer(arrays, source)
    state: dict[str, Tensor] = {}
    _norm(c, "LayerNorm_0", "input_norm", state)
    posenc = c.take("temporal_posenc/embeddings")  # (T, 1, D_in)
    state["temporal_posenc"] = _t(posenc)
    key_kernel = arrays.get("key_embedding/kernel")
    if key_kernel is None or key_kernel.ndim != 3:
        raise CheckpointError(f"{source}: readout key_embedding/kernel missing or not (in, heads, dim)")
    input_dim, num_heads, head_dim = key_kernel.shape
    _dense(c, "key_embedding", "key_embedding", state)
    _dense(c, "value_embedding", "value_embedding", state)
    learned = c.has("query")
    if learned:
        query = c.take("query")
        state["query"] = _t(query.reshape(query.shape[0], -1))
        names = {"Dense_0": "projection", "Dense_1": "head"}
    else:
        names = {"Dense_0": "query_projection", "Dense_1": "projection", "Dense_2": "head"}
    for flax, ours in names.items():
        _dense(c, flax, ours, state)
    _norm(c, "LayerNorm_1", "mlp_norm", state)
    _dense(c, "MLP_0/Dense_0", "mlp.dense_in", state)
    _dense(c, "MLP_0/Dense_1", "mlp.dense_out", state)
    c.finish()
    return OfficialReadout(
        num_params=num_heads * head_dim,
        num_heads=num_heads,
        num_classes=state["head.weight"].shape[0],
        num_frames=posenc.shape[0],
        input_dim=input_dim,
        num_queries=state["query"].shape[0] if learned else None,
        query_dim=None if learned else state["query_projection.weight"].shape[1],
        state=state,
    )


def _depth_patch(readout: OfficialReadout, clip: tuple[int, int, int]) -> tuple[int, int, int] | None:
    """The decoding patch (pt, ph, pw) consistent with a learned-query readout, if any."""
    t, h, w = clip
    for pt in range(1, t + 1):
        for ph in range(1, h + 1):
            if pt * ph * ph != readout.num_classes or t % pt or h % ph or w % ph:
                continue
            if (t // pt) * (h // ph) * (w // ph) == readout.num_queries:
                return (pt, ph, ph)
    return None


def import_official(npz_path: str | Path, out_dir: str | Path | None = None) -> FourDS:
    """Official .npz -> FourDS (encoder, plus the depth head when the file has a depth readout).
    Writes our checkpoint format to out_dir when given."""
    source = str(npz_path)
    arrays = load_npz(npz_path)
    enc_arrays, readout_arrays = split_official(arrays)
    enc = convert_encoder(enc_arrays, source)
    t, h, w = enc.posenc_grid
    pt, ph, pw = enc.patch_size
    clip = (t * pt, h * ph, w * pw)
    heads = {}
    readout = None
    if readout_arrays:
        readout = convert_readout(readout_arrays, source)
        patch = _depth_patch(readout, clip) if readout.num_queries else None
        if patch is None:
            log.warning("%s: readout is not a dense depth readout; importing the backbone only", source)
            readout = None
        else:
            heads["depth"] = DepthHeadConfig(
                readout.num_params, readout.num_heads, decoding_patch_size=patch, activation="identity"
            )
    config = ModelConfig(
        size=enc.size, num_frames=clip[0], image_size=clip[1:], patch_size=enc.patch_size, heads=heads
    )
    model = FourDS(config)
    state = {f"encoder.{k}": v for k, v in enc.state.items()}
    if readout is not None:
        state.update({f"heads.depth.readout.{k}": v for k, v in readout.state.items()})
    check_state_dict({k: v.shape for k, v in model.state_dict().items()}, state, source)
    model.load_state_dict(state)
    model.eval()
    if out_dir is not None:
        save_checkpoint(model, out_dir, metadata={"imported_from": Path(npz_path).name})
    return model
