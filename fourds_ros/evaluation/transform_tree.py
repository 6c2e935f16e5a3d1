"""A recording's coordinate frames, as /tf and /tf_static carry them, looked up at any stamp. No rclpy.

tf2_ros's buffer does this on a ROS install; it has no PyPI wheel, and `fourds-ros bag import`
(bag_import.py) must run without ROS. It follows tf2's rules where they matter for scoring a
recording: a frame has one parent (tf2 takes each sample's own; a second one is refused here,
ParentConflict, as a lookup through such a frame would depend on which came last); a static
transform holds at every stamp; a dynamic one is interpolated between the two samples around the
stamp (translation linearly, rotation by slerp, scipy.spatial.transform.Slerp) however far apart
they are, and, unlike tf2, it may be taken from the nearest sample up to `max_extrapolation_ns`
beyond the first or last one (a pose source at 100 Hz starts or stops a few milliseconds away from
the camera's first or last frame).

Matrices are 4x4 parent_from_child (a point in the child frame -> the parent frame), as
geometry_msgs/TransformStamped carries them (header.frame_id = parent, child_frame_id = child).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np


class TransformError(ValueError):
    """Frames that cannot be joined (no common root) or a frame given two parents."""


class ParentConflict(TransformError):
    """A transform that gives `child` a second parent (`other`) besides the one it has (`kept`)."""

    def __init__(self, child: str, kept: str, other: str):
        super().__init__(f"frame {child!r} has two parents, {kept!r} and {other!r}")
        self.child, self.kept, self.other = child, kept, other


@dataclass
class _Edge:
    parent: str
    static: np.ndarray | None = None
    stamps: list[int] = field(default_factory=list)
    matrices: list[np.ndarray] = field(default_factory=list)
    sources: set = field(default_factory=set)  # the topics its dynamic samples came from
    max_gap_ns: float = float("inf")  # a longer gap between two samples is a dropout: no pose inside it


# The shortest gap between two samples of one transform that is a dropout of its source (no pose inside it), whatever
# its rate: five samples of a 120 Hz motion-capture rig (42 ms) interpolate as well as one of a 10 Hz odometry.
MIN_DROPOUT_NS = 100_000_000


class TransformTree:
    def __init__(self, max_extrapolation_ns: int = 20_000_000):
        self.max_extrapolation_ns = int(max_extrapolation_ns)
        self._edges: dict[str, _Edge] = {}  # child -> its edge to its parent
        self._sorted = False  # the gaps are measured on the first lookup

    def add(self, parent: str, child: str, stamp_ns: int, parent_from_child: np.ndarray, static: bool = False,
            source: str = "") -> None:
        """One transform. TransformError when `child` already has another parent (not a tree)."""
        parent, child = parent.lstrip("/"), child.lstrip("/")  # tf2 drops a leading slash too
        if parent == child:
            raise TransformError(f"a transform from {child!r} to itself")
        edge = self._edges.setdefault(child, _Edge(parent))
        if edge.parent != parent:
            raise ParentConflict(child, edge.parent, parent)
        matrix = np.asarray(parent_from_child, np.float64)
        if static:
            edge.static = matrix
        else:
            if edge.stamps and stamp_ns < edge.stamps[-1]:
                self._sorted = False
            edge.stamps.append(int(stamp_ns))
            edge.sources.add(source)
            edge.matrices.append(matrix)

    def frames(self) -> set[str]:
        return set(self._edges) | {e.parent for e in self._edges.values()}

    def lookup(self, target: str, source: str, stamp_ns: int) -> np.ndarray | None:
        """(4, 4) target_from_source at `stamp_ns`; None where a dynamic transform on the way has no
        sample near enough; TransformError where the two frames are not joined."""
        self._sort()
        from_source, from_target = self._paths(target, source)
        root_from_source = self._chain(from_source, stamp_ns)
        root_from_target = self._chain(from_target, stamp_ns)
        if root_from_source is None or root_from_target is None:
            return None
        return np.linalg.inv(root_from_target) @ root_from_source

    def chain_frames(self, target: str, source: str) -> set[str]:
        """The frames whose transform to their parent a lookup of target_from_source composes
        (TransformError where the two are not joined): a frame's parent matters to it only there."""
        from_source, from_target = self._paths(target, source)
        return set(from_source) | set(from_target)

    def _paths(self, target: str, source: str) -> tuple[list[str], list[str]]:
        """The frames from source, and from target, up to (not including) their nearest common ancestor."""
        target, source = target.lstrip("/"), source.lstrip("/")
        up_target, up_source = self._ancestors(target), self._ancestors(source)
        common = next((f for f in up_source if f in up_target), None)
        if common is None:
            raise TransformError(f"frames {target!r} and {source!r} are not joined by any transform; frames "
                                 f"in the recording: {sorted(self.frames()) or 'none'}")
        return up_source[:up_source.index(common)], up_target[:up_target.index(common)]

    def _ancestors(self, frame: str) -> list[str]:
        """frame, its parent, its parent's parent, ... up to a root."""
        chain = [frame]
        while chain[-1] in self._edges:
            chain.append(self._edges[chain[-1]].parent)
            if len(chain) > len(self._edges) + 1:
                raise TransformError(f"the transforms above {frame!r} form a loop")
        return chain

    def _chain(self, frames: list[str], stamp_ns: int) -> np.ndarray | None:
        """common_from_frames[0]: the product of the edges from frames[0] up through frames[-1]'s parent."""
        out = np.eye(4)
        for frame in frames:
            step = self._at(self._edges[frame], stamp_ns)
            if step is None:
                return None
            out = step @ out
        return out

    def _at(self, edge: _Edge, stamp_ns: int) -> np.ndarray | None:
        if edge.static is not None:
            return edge.static
        stamps = edge.stamps
        i = bisect.bisect_left(stamps, stamp_ns)
        if i < len(stamps) and stamps[i] == stamp_ns:
            return edge.matrices[i]
        if i == 0 or i == len(stamps):  # before the first sample or after the last
            nearest = 0 if i == 0 else len(stamps) - 1
            close = abs(stamps[nearest] - stamp_ns) <= self.max_extrapolation_ns
            return edge.matrices[nearest] if close else None
        if stamps[i] - stamps[i - 1] > edge.max_gap_ns:  # the source was silent here (a mocap dropout)
            return None
        return interpolate(edge.matrices[i - 1], edge.matrices[i], (stamp_ns - stamps[i - 1]) / (stamps[i] - stamps[i - 1]))

    def sources(self, child: str) -> set:
        edge = self._edges.get(child.lstrip("/"))
        return set() if edge is None or edge.static is not None else edge.sources

    def _sort(self) -> None:
        if self._sorted:
            return
        self._sorted = True
        for edge in self._edges.values():
            if len(set(edge.stamps)) > 2:  # five of the source's own sample intervals, at least 2x the extrapolation
                step = float(np.median(np.diff(np.unique(edge.stamps))))  # a stamp sent twice (TF_REPEATED_DATA): no step
                edge.max_gap_ns = max(5 * step, 2 * self.max_extrapolation_ns, MIN_DROPOUT_NS)
            order = np.argsort(edge.stamps, kind="stable")
            edge.stamps = [edge.stamps[k] for k in order]
            edge.matrices = [edge.matrices[k] for k in order]


def interpolate(a: np.ndarray, b: np.ndarray, fraction: float) -> np.ndarray:
    """The rigid transform `fraction` of the way from a to b (0: a, 1: b): translation linearly,
    rotation along the shortest arc."""
    from scipy.spatial.transform import Rotation, Slerp

    out = np.eye(4)
    out[:3, :3] = Slerp([0.0, 1.0], Rotation.from_matrix(np.stack([a[:3, :3], b[:3, :3]])))(fraction).as_matrix()
    out[:3, 3] = (1.0 - fraction) * a[:3, 3] + fraction * b[:3, 3]
    return out
