"""The head registry, as timm registers models: one `HeadEntry` per readout head. No torch, no rclpy.

An entry is everything the rest of the package needs to know about a head: its config class (the
value of `ModelConfig.heads[name]`), how to build its module, how to turn the module's result into
named outputs, the outputs' symbolic shapes, the extra engine inputs it needs, and plain string
keys for the ROS messages and evaluation metrics its outputs become. `FourDS`, `ModelConfig` and
`EngineSpec` loop over the registry, so a new head is one `register_head(HeadEntry(...))` next to
its module (see heads.py) plus its tests.

This module imports nothing from the package: config.py looks heads up here, and heads.py (which
imports config.py for its config classes) registers the built-in entries, so there is no cycle.

Symbolic shapes are comma-separated dims: an integer is fixed, a letter is one of
  B batch, T clip frames, H W model-input image rows and columns, Q query points
(EngineSpec.num_queries); `resolve_shape` turns them into numbers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

# Names FourDS and the engines already use for themselves; a head must not take them.
RESERVED_INPUTS = ("video",)


def _single_output(entry: HeadEntry, module, features, video, inputs) -> dict:
    """Default `run`: the module takes the readout features and returns its outputs, either one
    tensor (a head with one output) or a dict keyed by output name."""
    result = module(features)
    return result if isinstance(result, Mapping) else {next(iter(entry.outputs)): result}


def parse_shape(symbolic: str) -> tuple[int | str, ...]:
    """'B,Q,3' -> ('B', 'Q', 3); ValueError for an empty dim or one that is neither an integer
    nor a single letter (a typo there would otherwise only show up in an engine build)."""
    dims: list[int | str] = []
    for token in symbolic.split(","):
        token = token.strip()
        if token.isdigit():
            dims.append(int(token))
        elif len(token) == 1 and token.isalpha():
            dims.append(token)
        else:
            raise ValueError(f"bad symbolic shape {symbolic!r}: dim {token!r} is not an integer or a letter")
    return tuple(dims)


def resolve_shape(symbolic: str, dims: Mapping[str, int]) -> tuple[int, ...]:
    """'B,Q,3' with {'B': 1, 'Q': 64} -> (1, 64, 3); ValueError naming a letter dims lacks."""
    shape = []
    for dim in parse_shape(symbolic):
        if isinstance(dim, str) and dim not in dims:
            raise ValueError(f"shape {symbolic!r} uses {dim!r}, which is not one of {sorted(dims)}")
        shape.append(dims[dim] if isinstance(dim, str) else dim)
    return tuple(shape)


@dataclass(frozen=True)
class HeadEntry:
    """One readout head.

    name: key in ModelConfig.heads and FourDS.heads (and so in state-dict keys: heads.<name>.*).
    config: the head's config dataclass.
    build(config, encoder_width, clip (T, H, W), token_grid (t, h, w)) -> nn.Module.
    outputs: {output name: (symbolic shape, meaning)}, in the order engines list them.
    run(entry, module, features, video, inputs) -> {output name: tensor}: features (B, T, h*w, D)
      from EncoderToReadout, video (B, T, H, W, 3), inputs the extra inputs by name. The default
      calls module(features) (see _single_output).
    inputs: extra model/engine inputs besides video, {name: (symbolic shape, meaning)}.
    check(config, clip (T, H, W)): raises ValueError when the config cannot run on that clip.
    messages: ROS outputs these outputs become (topics relative to the node's namespace, "tf" for
      the broadcast transform); metrics: evaluation report keys that score them. Both are
      documentation the ROS and evaluation layers check against; the model never imports them.
    """

    name: str
    config: type
    build: Callable[..., Any]
    outputs: Mapping[str, tuple[str, str]]
    run: Callable[..., dict] = _single_output
    inputs: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    check: Callable[[Any, tuple[int, int, int]], None] | None = None
    messages: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()

    def __post_init__(self):
        if not self.name.isidentifier():
            raise ValueError(f"head name {self.name!r} must be an identifier (it names module attributes)")
        if not dataclasses.is_dataclass(self.config):
            raise TypeError(f"head {self.name!r}: config must be a dataclass (it is saved in config.json)")
        if not self.outputs:
            raise ValueError(f"head {self.name!r} has no outputs")
        for shape, _ in (*self.outputs.values(), *self.inputs.values()):
            parse_shape(shape)
        reserved = set(self.inputs) & set(RESERVED_INPUTS)
        if reserved:
            raise ValueError(f"head {self.name!r}: input names {sorted(reserved)} are reserved")
        # Own copies, so that later edits to the caller's dicts cannot reach a checked entry. Plain
        # dicts, not MappingProxyType: torch.compile(fullgraph=True) cannot trace a mapping proxy.
        object.__setattr__(self, "outputs", dict(self.outputs))
        object.__setattr__(self, "inputs", dict(self.inputs))
        object.__setattr__(self, "messages", tuple(self.messages))
        object.__setattr__(self, "metrics", tuple(self.metrics))


# Registration order is the order of OUTPUTS and HEAD_TYPES (depth, tracks, pose for the built-ins).
HEADS: dict[str, HeadEntry] = {}


def register_head(entry: HeadEntry) -> HeadEntry:
    """Add a head. ValueError when its name, an output name or an input name with another shape
    is taken: FourDS merges every head's outputs (and inputs) into one dict."""
    if entry.name in HEADS:
        raise ValueError(f"head {entry.name!r} is already registered")
    for other in HEADS.values():
        clash = set(entry.outputs) & set(other.outputs)
        if clash:
            raise ValueError(f"head {entry.name!r}: outputs {sorted(clash)} already belong to head {other.name!r}")
        for name in set(entry.inputs) & set(other.inputs):
            if entry.inputs[name][0] != other.inputs[name][0]:
                raise ValueError(f"head {entry.name!r}: input {name!r} has another shape in head {other.name!r}")
    HEADS[entry.name] = entry
    return entry


def unregister_head(name: str) -> HeadEntry:
    """Remove a head (a test's toy head, a plugin being reloaded)."""
    return HEADS.pop(get_head(name).name)


def get_head(name: str) -> HeadEntry:
    """The entry for `name`, or ValueError listing the known heads."""
    try:
        return HEADS[name]
    except KeyError:
        raise ValueError(f"unknown head {name!r}; known heads: {', '.join(HEADS) or 'none'}") from None


def head_outputs(heads: Iterable[str]) -> dict[str, tuple[str, str]]:
    """{output name: (symbolic shape, meaning)} of the given heads, in head order."""
    return {n: spec for head in heads for n, spec in get_head(head).outputs.items()}


def head_inputs(heads: Iterable[str]) -> dict[str, tuple[str, str]]:
    """The extra inputs (besides video) the given heads need, first use first."""
    return {n: spec for head in heads for n, spec in get_head(head).inputs.items()}


class RegistryView(Mapping):
    """A read-only mapping recomputed from HEADS on every access, so the module-level names kept
    for compatibility (OUTPUTS, HEAD_OUTPUTS, HEAD_TYPES) also show heads registered later."""

    def __init__(self, build: Callable[[], dict], name: str):
        self._build, self._name = build, name

    def __getitem__(self, key):
        return self._build()[key]

    def __iter__(self) -> Iterator:
        return iter(self._build())

    def __len__(self) -> int:
        return len(self._build())

    def __repr__(self) -> str:
        return f"{self._name}({self._build()!r})"
