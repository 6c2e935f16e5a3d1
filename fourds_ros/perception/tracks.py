"""Track bookkeeping across overlapping clips: query points in, stable track ids out.

The engine tracks a fixed number Q of query points per clip. Each clip:
  1. every live track whose last observed frame is inside the new clip (the overlap) becomes a
     query at that frame and position, so it keeps its id;
  2. free slots, up to `max_tracks`, are seeded with new tracks at the clip's first frame
     (`mode`: a regular grid, OpenCV Shi-Tomasi corners, or points given on a topic), away from
     the live ones; remaining slots are padding and never published;
  3. with a refiner (track_refine.py), the head's positions are refined on the camera image
     against each track's template, kept from its query frame;
  4. a track whose step from one frame to the next departs from the median step of all visible
     tracks by more than `max_deviation` model pixels is taken to have jumped onto another point
     (typically after its own point left the image: the head then latches onto the most similar
     patch still in view) and is invisible from that frame on;
  5. with the image fallback, a track the model loses (it calls the point invisible, or the
     point leaves the model's window) is followed on the camera image instead: moved by the
     scene's motion (a similarity fitted to the model's visible tracks) and matched against its
     template, visible where it matches. It is not queried while on the image, goes back to the
     model when it is matched inside the window at a clip's end, and is dropped when it leaves
     the image or stays unmatched. Why: the model sees only its centre crop (a third of a 3:2
     image is outside it) and the head calls points invisible that the image still shows;
  6. after inference a track is lost (and its slot re-seeded next clip) when it is not visible
     in the clip's last frame and not followed on the image.
Coordinates: queries are (t, y, x) in model-input pixels; published u, v are input-image pixels.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import dataclass, field

import cv2
import numpy as np

from .preprocess import PixelMap, sample_nearest
from .settings import TrackSettings
from .track_refine import gray8, make_refiner

# Track ids are published as uint32 (PointCloud2 track_id) and as int32 (the track's Marker.id): below
# 2^31 they fit both, and a track's marker has its track_id (from 2^31 it went negative, and with
# ROS_PYTHON_CHECK_FIELDS=1 the marker raised and the clip's outputs were lost).
TRACK_ID_LIMIT = 2**31


@dataclass
class Track:
    id: int
    x: float  # model-input pixels at frame `frame_index`
    y: float
    frame_index: int
    trail: deque = field(default_factory=lambda: deque(maxlen=8))  # (u, v) input pixels
    template: np.ndarray | None = None  # camera-image patch at the query (TemplateRefiner)
    on_image: bool = False  # the model lost it: followed on the camera image alone, not queried
    unmatched: int = 0  # consecutive frames its template did not match while on_image
    # A topic query's (u, v) input pixels and stamp (ns), from its seeding until first carried on: one seeded
    # on an unseen frame is queued again (`update`), not lost.
    request: tuple[float, float, int] | None = None


# A topic query stamped this far past the clip's newest frame is on another clock than the camera's (a client's
# wall-clock now() beside a bag's stamps, sim time on one side only): seeded as an unstamped one (0) and counted.
# Why: it waited for a frame that never comes, uncounted. 10 s: past any clip's lateness (hop 7 at 5 Hz with a clip
# waiting: 3 s).
STAMP_OFF_CLOCK_NS = 10_000_000_000


def query_frame(clip_stamps: list[int] | None, stamp_ns: int) -> int:
    """The clip frame a topic query stamped stamp_ns is seeded on: the newest frame stamped at or before it (the
    image the client picked the pixel on); the first frame for one older than the clip, for stamp 0 (no image
    named) and for a clip without stamps. Why: every query was seeded on the clip's first (oldest) frame, 0-13
    frames before the image the client clicked, and on a moving camera the track followed another point for
    good (18 px off at 3 px a frame, in a 64 px image)."""
    if not clip_stamps or stamp_ns <= 0:
        return 0
    return max(0, int(np.searchsorted(np.asarray(clip_stamps, np.int64), stamp_ns, side="right")) - 1)


@dataclass
class TrackSet:
    """Tracks in one frame. ids (N,) uint32; u, v (N,) float32 input pixels; xyz (N, 3) float32
    camera optical frame (NaN where depth is unknown or the track is not visible); visible (N,) bool;
    confidence (N,) float32."""

    ids: np.ndarray
    u: np.ndarray
    v: np.ndarray
    xyz: np.ndarray
    visible: np.ndarray
    confidence: np.ndarray

    def __len__(self) -> int:
        return int(self.ids.size)


class TrackManager:
    """settings: the node's track_* parameters (settings.TrackSettings); num_queries: the engine's
    fixed query count; model_hw: the model input size."""

    def __init__(self, num_queries: int, model_hw: tuple[int, int], settings: TrackSettings = TrackSettings(),
                 max_unmatched: int = 8):
        self.settings = settings
        self.num_queries = num_queries
        self.max_tracks = max(0, min(settings.max_tracks, num_queries))
        self.model_hw = model_hw
        self.mode = settings.query_mode
        self.min_visibility = settings.min_visibility
        self.trail_length = settings.trail_length
        self.refiner = make_refiner(settings.refinement, settings.lk_check_px)
        self.max_deviation = settings.max_deviation_px
        self.image_fallback = settings.image_fallback
        self.uses_images = self.refiner is not None  # needs the frames' gray (the fallback needs the refiner)
        self.max_unmatched = int(max_unmatched)
        self.tracks: dict[int, Track] = {}
        self.next_id = 0
        self.pending_topic_queries: list[tuple[float, float, int]] = []  # (u, v) input pixels, stamp ns
        # add_topic_queries runs on the subscription thread, make_queries / update on the inference
        # thread: a query appended between _seed_candidates' read and clear vanished, uncounted.
        self._queries_lock = threading.Lock()
        # Topic queries not seeded, by why (mode 'topic', on /diagnostics): a point a client asked to
        # track and never sees tracked is otherwise a silent loss.
        self.queries_refused: Counter[str] = Counter()
        self.queries_off_clock = 0  # topic queries stamped on another clock: seeded as unstamped (STAMP_OFF_CLOCK_NS)
        self.lost = 0
        # Min distance between seeds and live tracks, model pixels.
        h, w = model_hw
        self.spacing = max(1.0, float(np.sqrt(h * w / max(self.max_tracks, 1))) * 0.7)

    def reset(self) -> None:
        self.tracks.clear()

    def step_counts(self) -> dict[str, int]:
        """What placed the track steps so far, for /diagnostics (flow refinement only; else {}):
        track_steps, of them track_steps_lk_lost (LK failed) and track_steps_head_taken (the
        head's position, confirmed by the template, replaced a lost LK step). Why: on a scene
        unlike the training data the head may place almost none, and a team should see that the
        published tracks are then LK's (models/fourds_default/README.md, session 27)."""
        if self.refiner is None or not self.refiner.flow:
            return {}
        return dict(self.refiner.counts)

    def query_counts(self) -> dict[str, int]:
        """Topic queries not seeded so far, by why, for /diagnostics (mode 'topic'; else {}):
        over_capacity (more were pending than the engine's num_queries: the oldest went),
        outside_model_window (outside the image, or beside the model's window: the model sees the
        centre crop of a wider image), on_robot (exclude_boxes), near_a_live_track (within
        track_spacing: already tracked), over_max_tracks."""
        if self.mode != "topic":
            return {}
        reasons = ("over_capacity", "outside_model_window", "on_robot", "near_a_live_track", "over_max_tracks")
        return {**{f"track_queries_refused_{r}": self.queries_refused[r] for r in reasons},
                "track_queries_stamp_off_clock": self.queries_off_clock}

    def _new_id(self) -> int:
        """The next id not in use, wrapping at TRACK_ID_LIMIT (the published track_id and Marker.id must
        hold it): counting on, the ids passed 2^32 after months of a covered lens seeding new tracks
        every clip (hours with 4096 tracks at hop 1), and every clip then failed to pack them."""
        while self.next_id in self.tracks:
            self.next_id = (self.next_id + 1) % TRACK_ID_LIMIT
        new, self.next_id = self.next_id, (self.next_id + 1) % TRACK_ID_LIMIT
        return new

    def add_topic_queries(self, uv: np.ndarray, requeue: bool = False, stamps_ns=None) -> None:
        """(N, 2) input-image pixels, seeded as new tracks (mode 'topic') on the frame each is stamped with
        (stamps_ns: (N,) ns, the image the client picked them on; 0 or None: the next clip's first frame;
        query_frame). requeue: queries asked for before those pending (seeded on an unseen frame), put before them."""
        uv = np.asarray(uv, dtype=float).reshape(-1, 2)
        stamps = np.zeros(len(uv), np.int64) if stamps_ns is None else np.broadcast_to(np.asarray(stamps_ns, np.int64),
                                                                                        (len(uv),))
        queries = [(float(u), float(v), int(stamp)) for (u, v), stamp in zip(uv, stamps)]
        with self._queries_lock:
            pending = self.pending_topic_queries
            if requeue:
                pending[:0] = queries
            else:
                pending.extend(queries)
            over = max(0, len(pending) - self.num_queries)
            self.queries_refused["over_capacity"] += over  # only the newest num_queries can be seeded
            del pending[:over]

    def count_refused(self, reason: str, n: int) -> None:
        """n topic queries refused for `reason` (queries_refused), from any thread."""
        with self._queries_lock:
            self.queries_refused[reason] += n

    def _topic_candidates(self, pmap: PixelMap, clip_stamps: list[int] | None) -> tuple[np.ndarray, np.ndarray, list]:
        """The pending topic queries this clip can seed -> ((N, 2) (x, y) model pixels, (N,) clip frame of each
        (query_frame), their (u, v, stamp) requests). A query stamped after the clip's newest frame stays pending
        for a later clip."""
        newest = clip_stamps[-1] if clip_stamps else None
        with self._queries_lock:  # swapped out whole: one added meanwhile waits for the next clip
            due, later = [], []
            for query in self.pending_topic_queries:
                if newest is not None and query[2] > newest + STAMP_OFF_CLOCK_NS:
                    self.queries_off_clock += 1
                    query = (*query[:2], 0)
                (later if newest is not None and query[2] > newest else due).append(query)
            self.pending_topic_queries = later
        if not due:
            return np.zeros((0, 2)), np.zeros(0, int), []
        uv = np.array([q[:2] for q in due])
        frames = np.array([query_frame(clip_stamps, q[2]) for q in due], int)
        return np.stack(pmap.to_model(uv[:, 0], uv[:, 1]), axis=1), frames, due

    def _seed_candidates(self, first_frame: np.ndarray, pmap: PixelMap, allowed_fraction: float = 1.0) -> np.ndarray:
        """(N, 2) (x, y) model pixels, best first (the grid or the corners: mode 'topic' seeds its queries,
        _topic_candidates). first_frame: (H, W, 3) float32 model image; allowed_fraction: of the image where
        tracks may be (the grid is that much denser)."""
        h, w = self.model_hw
        if self.mode == "features":
            import cv2

            grey = cv2.cvtColor((first_frame * 255).astype(np.uint8), cv2.COLOR_RGB2GRAY)
            corners = cv2.goodFeaturesToTrack(grey, maxCorners=self.num_queries * 2, qualityLevel=0.01,
                                              minDistance=max(1.0, self.spacing * 0.5))
            if corners is not None and len(corners):
                return corners.reshape(-1, 2).astype(float)
            # A textureless frame has no corners: fall back to the grid.
        n = max(int(np.ceil(self.max_tracks / max(allowed_fraction, 1e-3))), 1)
        rows = max(1, int(round(np.sqrt(n * h / w))))
        cols = max(1, int(np.ceil(n / rows)))
        ys = (np.arange(rows) + 0.5) * h / rows - 0.5
        xs = (np.arange(cols) + 0.5) * w / cols - 0.5
        gx, gy = np.meshgrid(xs, ys)
        return np.stack([gx.ravel(), gy.ravel()], axis=1)

    def make_queries(self, clip_indices: list[int], first_frame: np.ndarray, pmap: PixelMap,
                     excluded: np.ndarray | None = None, clip_stamps: list[int] | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
        """-> query_points (Q, 3) float32 (t, y, x) model pixels, slot_ids (Q,) int64 (-1: padding).
        excluded: (H, W) bool model pixels where no track is seeded (the robot itself; exclusion.py).
        clip_stamps: the clip's frames' stamps (ns), which place topic queries on the frame they were asked on."""
        h, w = self.model_hw
        position = {idx: t for t, idx in enumerate(clip_indices)}
        queries, ids = [], []
        for track in list(self.tracks.values()):
            t = position.get(track.frame_index)
            if track.on_image and t is not None:
                continue  # followed on the image by `update`, not by the model
            if t is None or len(ids) >= self.max_tracks:
                del self.tracks[track.id]  # no overlap with this clip: cannot continue it
                self.lost += 1
                continue
            queries.append((t, track.y, track.x))
            ids.append(track.id)
        self._seed(queries, ids, clip_indices, first_frame, pmap, excluded, clip_stamps)
        slot_ids = np.full(self.num_queries, -1, dtype=np.int64)
        slot_ids[: len(ids)] = ids
        points = np.zeros((self.num_queries, 3), dtype=np.float32)
        points[:, 1:] = ((h - 1) / 2, (w - 1) / 2)  # padding: a valid point, never published
        if queries:
            points[: len(queries)] = np.asarray(queries, dtype=np.float32)
        return points, slot_ids

    def _seed(self, queries: list, ids: list, clip_indices: list[int], first_frame: np.ndarray, pmap: PixelMap,
              excluded: np.ndarray | None, clip_stamps: list[int] | None) -> None:
        """New tracks, appended to `queries` ((t, y, x)) and `ids` (the live tracks' so far), up to max_tracks and
        apart from the live ones by the spacing: the topic's queries, or the grid's or the corners' candidates."""
        # (x, y) of live tracks, those followed on the image included, and of accepted seeds. The
        # followed ones count against max_tracks too: it bounds the tracks published.
        taken = [(q[2], q[1]) for q in queries] + [(t.x, t.y) for t in self.tracks.values() if t.on_image]
        n_live = len(taken)
        live = np.zeros((max(self.max_tracks, n_live), 2))
        live[:n_live] = np.reshape(taken, (-1, 2))
        allowed = 1.0 if excluded is None else 1.0 - float(excluded.mean())
        if self.mode == "topic":
            candidates, seed_t, requests = self._topic_candidates(pmap, clip_stamps)
        else:
            candidates = self._seed_candidates(first_frame, pmap, allowed).reshape(-1, 2)
            seed_t, requests = np.zeros(len(candidates), int), None
        inside = in_window(candidates, self.model_hw)
        robot = np.zeros(len(candidates), bool) if excluded is None else inside & on_robot(excluded, candidates)
        spacing2 = self.spacing ** 2 * allowed  # max_tracks share the allowed part of the image
        refused = Counter(outside_model_window=int((~inside).sum()), on_robot=int(robot.sum()))
        keep = inside & ~robot
        kept, kept_t = candidates[keep], seed_t[keep]
        kept_requests = None if requests is None else [r for r, k in zip(requests, keep) if k]
        for i, (x, y) in enumerate(kept):
            if n_live >= self.max_tracks:
                refused["over_max_tracks"] += len(kept) - i
                break
            if n_live and (((live[:n_live] - (x, y)) ** 2).sum(axis=1) < spacing2).any():
                refused["near_a_live_track"] += 1
                continue
            t = int(kept_t[i])
            track = Track(self._new_id(), float(x), float(y), clip_indices[t], deque(maxlen=self.trail_length))
            if kept_requests is not None:
                track.request = kept_requests[i]
            self.tracks[track.id] = track
            queries.append((t, y, x))
            ids.append(track.id)
            live[n_live] = (x, y)
            n_live += 1
        if self.mode == "topic":  # grid and corner seeds are candidates, not requests: only these count
            with self._queries_lock:  # add_topic_queries counts on another thread
                self.queries_refused.update(refused)

    def refine(self, slot_ids: np.ndarray, xy: np.ndarray, visibility: np.ndarray, images: ClipImages,
               clip_indices: list[int], pmap: PixelMap) -> np.ndarray:
        """The head's positions refined on the camera image; call before `update`.

        xy: (Q, T, 2) model pixels (x, y); visibility: (Q, T); images: the clip's T camera
        images. -> (Q, T, 2) model pixels after each track's query frame: with track_refinement
        flow, LK from the track's position in the previous frame wherever it succeeds; elsewhere
        the head's position refined against the track's template where the head calls the point
        visible and the template matches; otherwise the track's previous position moved by its
        nearest LK-followed neighbours (with template, the head's position; track_refine.py).
        Without a refiner, xy unchanged."""
        if self.refiner is None:
            return xy
        refined = np.array(xy, dtype=np.float32, copy=True)
        position = {idx: t for t, idx in enumerate(clip_indices)}
        rows, query_t, templates, start = [], [], [], []
        for q in np.flatnonzero(slot_ids >= 0):
            track = self.tracks.get(int(slot_ids[q]))
            t0 = position.get(track.frame_index) if track is not None else None
            if t0 is None:
                continue
            uv0 = pmap.to_input(track.x, track.y)
            if track.template is None:  # a new track, or one whose query had no usable patch
                track.template = self.refiner.template(images.gray(t0), *uv0)
            if track.template is None and not self.refiner.flow:
                continue
            rows.append(q)
            query_t.append(t0)
            templates.append(track.template)
            start.append(uv0)
        if not rows:
            return refined
        rows, query_t = np.array(rows), np.array(query_t)
        head_u, head_v = pmap.to_input(np.asarray(xy[rows, :, 0], float), np.asarray(xy[rows, :, 1], float))
        uv = np.stack([head_u, head_v], -1)  # (N, T, 2) camera pixels, refined frame by frame below
        uv[np.arange(len(rows)), query_t] = start  # each track starts at its query point
        for t in range(1, len(clip_indices)):
            act = np.flatnonzero(query_t < t)
            if not act.size:
                continue
            previous = images.gray8(t - 1) if self.refiner.flow else None
            uv[act, t] = self.refiner.follow(previous, images.gray8(t), uv[act, t - 1],
                                             np.stack([head_u[act, t], head_v[act, t]], -1),
                                             visibility[rows[act], t] >= self.min_visibility,
                                             [templates[i] for i in act])
            mx, my = pmap.to_model(uv[act, t, 0], uv[act, t, 1])
            refined[rows[act], t] = np.stack([mx, my], -1)
        return refined

    def update(self, slot_ids: np.ndarray, xy: np.ndarray, visibility: np.ndarray,
               confidence: np.ndarray, clip_indices: list[int], output_t: list[int], pmap: PixelMap,
               images: ClipImages | None = None, unseen: np.ndarray | None = None,
               excluded: np.ndarray | None = None, off_robot: np.ndarray | None = None) -> list[TrackSet]:
        """Engine outputs for one clip -> a TrackSet (xyz still NaN) for each frame in output_t.

        xy: (Q, T, 2) model pixels (x, y); visibility, confidence: (Q, T); images: the clip's
        camera images (required with image_fallback); unseen: (T,) bool, frames too dark or flat
        to see (a covered lens): no track is visible there, and a track queried on one is no
        point at all (invisible throughout, so it is lost and re-seeded on a frame that shows
        something; a topic query is queued again for that). Left to the model, a covered lens kept
        62 of 63 tracks "visible". excluded: (H, W) bool model pixels showing the robot itself: a
        track there is invisible. off_robot:
        (H_in, W_in) bool input pixels off the robot (the same boxes), for the tracks the image
        fallback follows outside the model's window, where `excluded` has no pixels: one there on
        the robot is invisible and dropped."""
        if self.image_fallback and images is None:
            raise ValueError("update needs the clip's images to follow tracks on the image")
        n_frames = len(clip_indices)
        position = {idx: t for t, idx in enumerate(clip_indices)}
        used = np.flatnonzero(slot_ids >= 0)
        on_image = [t for t in self.tracks.values() if t.on_image and t.frame_index in position]
        tracks = [self.tracks.get(int(i)) for i in slot_ids[used]] + on_image
        n_model = used.size  # rows [0, n_model) are the model's queries, the rest are on the image
        ids = np.array([int(i) for i in slot_ids[used]] + [t.id for t in on_image], dtype=np.uint32)
        query_t = np.array([position.get(t.frame_index, 0) if t is not None else 0 for t in tracks], dtype=np.int64)
        xy = np.concatenate([np.asarray(xy, np.float64)[used], np.full((len(on_image), n_frames, 2), np.nan)])
        vis = np.concatenate([visibility[used], np.zeros((len(on_image), n_frames))])
        conf = np.concatenate([confidence[used], np.zeros((len(on_image), n_frames))]).astype(np.float32)
        visible, conf = self._seen(tracks[:n_model], xy, vis, conf, query_t, excluded)
        if self.max_deviation > 0:
            visible[:n_model] &= ~motion_outliers(xy[:n_model], visible[:n_model], query_t[:n_model],
                                                  self.max_deviation)
        # Seeded on an unseen frame: no point to follow. (A track the image fallback carries over
        # an unseen frame was last matched on a frame that showed it: it stays.)
        unseen = np.zeros(n_frames, bool) if unseen is None else np.asarray(unseen, bool)
        void = np.zeros(len(tracks), bool)
        void[:n_model] = unseen[query_t[:n_model]]
        visible[:, unseen] = False  # the model's tracks are lost there (the image fallback may keep them)
        dropped = np.zeros(len(tracks), bool)
        if self.image_fallback:
            for row, track in enumerate(on_image, n_model):
                xy[row, query_t[row]] = (track.x, track.y)
                visible[row, query_t[row]] = True  # it was matched there, or it would have been dropped
            dropped = self._follow_on_image(tracks, n_model, query_t, xy, visible, conf, images, pmap, unseen)
        visible[:, unseen] = visible[void] = False  # no template match on sensor noise counts either
        conf[:, unseen] = conf[void] = 0.0
        dropped |= void
        self._requeue([tracks[i] for i in np.flatnonzero(void)])
        u, v = pmap.to_input(xy[..., 0], xy[..., 1])
        if off_robot is not None:  # nor one on the robot: the fallback moved some, out of the model's window too
            robot = ~sample_nearest(off_robot, u, v, True)
            visible &= ~robot
            dropped |= robot[:, -1]
        out = _track_sets(tracks, ids, u, v, visible, conf, output_t)
        self._carry_or_lose(tracks, xy[:, -1], visible[:, -1], dropped, clip_indices[-1])
        return out

    def _seen(self, model_tracks: list[Track | None], xy: np.ndarray, vis: np.ndarray, conf: np.ndarray,
              query_t: np.ndarray, excluded: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """(N, T) visible and confidence of the clip's tracks (xy, vis, conf: (N, T[, 2]); the model's first):
        the head's visibility, in the model's window, finite, off the robot. A non-finite confidence is no point
        seen and reads 0 (NaN was published on visible tracks, into a consumer's weighting). A topic query seeded
        this clip is tracked from the frame it was asked on (query_frame), not before it."""
        sure = np.isfinite(conf)
        conf = np.where(sure, conf, np.float32(0.0))
        visible = (vis >= self.min_visibility) & in_window(xy, self.model_hw) & np.isfinite(xy).all(-1) & sure
        visible &= ~on_robot(excluded, xy)
        asked = np.flatnonzero([t is not None and t.request is not None for t in model_tracks])
        visible[asked] &= np.arange(xy.shape[1])[None, :] >= query_t[asked, None]
        return visible, conf

    def _requeue(self, void: list[Track | None]) -> None:
        """Topic queries seeded on an unseen frame (void: no point to follow) are asked again next clip:
        the frames after may show the point, and dropped they were neither tracked nor counted."""
        requests = [t.request for t in void if t is not None and t.request is not None]
        if requests:
            self.add_topic_queries(np.array([r[:2] for r in requests]), requeue=True, stamps_ns=[r[2] for r in requests])

    def _carry_or_lose(self, tracks: list[Track | None], xy_last: np.ndarray, visible_last: np.ndarray,
                       dropped: np.ndarray, last_index: int) -> None:
        """After a clip: a track seen in its last frame, or still followed on the image, moves on to
        that frame (xy_last: (N, 2) model pixels); any other is lost, its slot re-seeded next clip."""
        for i, track in enumerate(tracks):
            if track is None:
                continue
            if visible_last[i] or (track.on_image and not dropped[i]):
                track.x, track.y = float(xy_last[i, 0]), float(xy_last[i, 1])
                track.frame_index = last_index
                track.request = None  # carried on: the query was served
                if track.on_image and visible_last[i] and in_window(xy_last[i], self.model_hw, VIEW_MARGIN):
                    track.on_image = False  # matched in view again: the model takes it back next clip
            else:
                del self.tracks[track.id]
                self.lost += 1

    def _follow_on_image(self, tracks: list[Track | None], n_model: int, query_t: np.ndarray, xy: np.ndarray,
                         visible: np.ndarray, conf: np.ndarray, images: ClipImages, pmap: PixelMap,
                         unseen: np.ndarray) -> np.ndarray:
        """Follow the tracks the model lost on the camera image, in place of its outputs.

        A model track is lost at frame t when it was seen at t - 1 and at t the model calls it
        invisible (or jumped), or the scene's motion takes it to within VIEW_MARGIN of the model
        window's edge or outside. From then on, and for tracks already on the image, each frame's
        position is the previous one moved by the scene's motion (scene_motion: a similarity
        fitted to the model's visible tracks), refined against the track's template; the track is
        visible where the template matches. It is dropped when it leaves the image or goes
        unmatched for more than max_unmatched frames.
        An unseen frame (too dark or flat: `update`) loses no model track: the model, which sees
        the frames after it, keeps them, and a track counts as seen before it where it was seen
        before the unseen run. (One dark frame mid-clip handed every track to the image, where
        they lagged the scene, were lost near the border, and took the next clip's query slots.)
        Only unseen frames to the clip's end hand them over: the model cannot show them again.
        xy: (N, T, 2) model pixels, visible, conf: (N, T); rows [0, n_model) are the model's;
        unseen: (T,) bool. -> dropped (N,) bool."""
        n_frames = xy.shape[1]
        h_in, w_in = images.frames[0].shape[:2]
        rows = np.arange(len(tracks))
        followed = rows >= n_model
        dropped = np.zeros(len(tracks), bool)
        has_template = np.array([t is not None and t.template is not None for t in tracks], bool)
        was_seen = np.zeros(len(tracks), bool)
        for t in range(1, n_frames):
            seen = np.flatnonzero(~followed[:n_model] & visible[:n_model, t - 1] & visible[:n_model, t]
                                  & (query_t[:n_model] < t))  # the model's tracks in both frames
            motion = scene_motion(*(np.stack(pmap.to_input(xy[seen, k, 0], xy[seen, k, 1]), -1)
                                    for k in (t - 1, t)))
            u, v = pmap.to_input(xy[:, t - 1, 0], xy[:, t - 1, 1])  # (N,) where each was, moved by the scene
            if motion is not None:
                u, v = motion @ np.stack([u, v, np.ones_like(u)])
            active = has_template & ~dropped & (t > query_t)
            if not unseen[t - 1]:
                was_seen = visible[:, t - 1] | (query_t == t - 1)
            kept_by_model = unseen[t] and not unseen[t:].all()
            lost = ~followed & (rows < n_model) & was_seen & (not kept_by_model) & \
                ~(visible[:, t] & in_window(np.stack(pmap.to_model(u, v), -1), self.model_hw, VIEW_MARGIN))
            for i in np.flatnonzero(active & lost):
                followed[i], tracks[i].on_image, tracks[i].unmatched = True, True, 0
            for i in np.flatnonzero(active & followed):
                track = tracks[i]
                matched = False
                on_image = 0 <= u[i] <= w_in - 1 and 0 <= v[i] <= h_in - 1
                if on_image:
                    ru, rv, score = self.refiner.refine(images.gray(t), track.template, float(u[i]), float(v[i]))
                    matched = score >= self.refiner.min_score  # False for NaN: no match was tried
                    track.unmatched = 0 if matched else track.unmatched + 1
                    xy[i, t] = pmap.to_model(ru, rv)
                    conf[i, t] = score if matched else 0.0
                visible[i, t] = matched
                if not on_image or track.unmatched > self.max_unmatched:
                    dropped[i] = True
                    xy[i, t:], visible[i, t:], conf[i, t:] = xy[i, t - 1], False, 0.0  # published where last seen
        return dropped

    def trails(self) -> dict[int, list[tuple[float, float]]]:
        """Recent (u, v) input pixels per live track id, oldest first."""
        return {tid: list(t.trail) for tid, t in self.tracks.items() if len(t.trail) >= 2}


def _track_sets(tracks: list, ids: np.ndarray, u: np.ndarray, v: np.ndarray, visible: np.ndarray, conf: np.ndarray,
                output_t: list[int]) -> list[TrackSet]:
    """A TrackSet (xyz still NaN) for each frame in output_t (u, v: (N, T) input pixels; visible,
    conf: (N, T)); each track seen there extends its trail. A position not finite is NaN, no position: a
    head giving inf published rows of inf pixels (invisible, yet a consumer's projection met them)."""
    u, v = (np.where(np.isfinite(a), a, np.nan) for a in (u, v))
    out = []
    for t in output_t:
        for i, track in enumerate(tracks):
            if track is not None and visible[i, t]:
                track.trail.append((float(u[i, t]), float(v[i, t])))
        out.append(TrackSet(ids.copy(), u[:, t].astype(np.float32), v[:, t].astype(np.float32),
                            np.full((ids.size, 3), np.nan, np.float32), visible[:, t].copy(),
                            conf[:, t].astype(np.float32)))
    return out


class ClipImages:
    """A clip's camera images, (H, W, 3) uint8 RGB, converted to gray once and only when used: gray8(t)
    (H, W) uint8 for LK and corners, gray(t) (H, W) float32 for the templates. grays: (H, W) uint8
    (gray8) already made for some frames (None where not), e.g. on arrival."""

    def __init__(self, frames: list[np.ndarray], grays: list[np.ndarray | None] | None = None):
        self.frames = frames
        self._gray8: dict[int, np.ndarray] = {t: g for t, g in enumerate(grays or []) if g is not None}
        self._gray: dict[int, np.ndarray] = {}
        self._corners: dict[int, dict[int, np.ndarray]] = {}

    def corners(self, count: int) -> dict[int, np.ndarray]:
        """{frame: (M, 2) Shi-Tomasi corners} detected so far by the clip's passes that seed `count` corners
        off the same mask (epipolar.follow_corner_steps' seeded). Why: the pose's relinked steps seed frame t - 1
        and its epipolar direction every second frame, with the same settings: the shipped HoloLens sample's clips
        detected about 2 frames twice, 18 ms a clip of CPU (8 % of its time outside the engine; session 73)."""
        return self._corners.setdefault(count, {})

    def gray8(self, t: int) -> np.ndarray:
        if t not in self._gray8:
            self._gray8[t] = gray8(self.frames[t])
        return self._gray8[t]

    def gray(self, t: int) -> np.ndarray:
        if t not in self._gray:
            self._gray[t] = self.gray8(t).astype(np.float32)
        return self._gray[t]

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, t: int) -> np.ndarray:
        """images[t] is gray8(t): a sequence of grays made only for the frames read (as
        epipolar.follow_corners reads every second one)."""
        return self.gray8(t)


# A track within this many model pixels of the window's edge is out of the model's view: one cell
# of the tracks head's matching map (stride 4), whose features there see mostly padding.
VIEW_MARGIN = 4.0
# Outlier threshold of the scene-motion fit, input pixels.
SCENE_MOTION_RANSAC_PX = 3.0


def on_robot(excluded: np.ndarray | None, xy: np.ndarray) -> np.ndarray:
    """(..., 2) model pixels -> (...) bool: on the robot itself (excluded: (H, W) model-pixel mask of
    exclude_boxes, or None for none)."""
    if excluded is None:
        return np.zeros(xy.shape[:-1], bool)
    return sample_nearest(excluded, xy[..., 0], xy[..., 1], False)


def in_window(xy: np.ndarray, model_hw: tuple[int, int], margin: float = 0.0) -> np.ndarray:
    """(..., 2) model pixels (x, y) -> (...) bool: inside the model image, `margin` from its edge."""
    h, w = model_hw
    x, y = xy[..., 0], xy[..., 1]
    return (x >= margin - 0.5) & (x <= w - 0.5 - margin) & (y >= margin - 0.5) & (y <= h - 0.5 - margin)


def scene_motion(before: np.ndarray, after: np.ndarray) -> np.ndarray | None:
    """The image motion of the scene between two frames: (N, 2) input pixels of the same tracks
    before and after -> 2x3 similarity (rotation, scale, translation; RANSAC), or None from fewer
    than MIN_TRACKS_FOR_MEDIAN tracks. A similarity, not a translation: a turning camera rotates
    the image, and a point leaving the view sits where that matters most, at the edge."""
    if len(before) < MIN_TRACKS_FOR_MEDIAN:
        return None
    motion, _ = cv2.estimateAffinePartial2D(before.astype(np.float32), after.astype(np.float32),
                                            method=cv2.RANSAC, ransacReprojThreshold=SCENE_MOTION_RANSAC_PX)
    return motion


# Fewer tracks than this in a step give no reliable median motion; no track is judged there.
MIN_TRACKS_FOR_MEDIAN = 4


def motion_outliers(xy: np.ndarray, visible: np.ndarray, query_t: np.ndarray, max_deviation: float) -> np.ndarray:
    """Tracks that jumped: (N, T) bool, True from the first frame where a track's step departs
    from the median step of the visible tracks by more than `max_deviation` (and after it).

    xy: (N, T, 2) model pixels; visible: (N, T) bool; query_t: (N,) each track's query frame in
    the clip (visible by definition). Why the median step: in a mostly static scene the camera
    moves every point by about the same few pixels per frame, and a track that switched to another
    point steps far off that. Points on independently moving objects step off it too, so the
    threshold is set well above the head's frame-to-frame noise (docs/perception_node.md).
    """
    n, t = visible.shape
    if n == 0 or t < 2:
        return np.zeros((n, t), bool)
    step = xy[:, 1:] - xy[:, :-1]  # (N, T-1, 2): into frames 1..T-1
    into = np.arange(1, t)[None, :]
    from_seen = visible[:, :-1] | (into - 1 == query_t[:, None])
    judged = visible[:, 1:] & from_seen & (into > query_t[:, None]) & np.isfinite(step).all(-1)
    jumped = np.zeros((n, t), bool)
    for j in range(t - 1):
        rows = np.flatnonzero(judged[:, j])
        if rows.size < MIN_TRACKS_FOR_MEDIAN:
            continue
        median = np.median(step[rows, j], axis=0)
        far = np.linalg.norm(step[rows, j] - median, axis=-1) > max_deviation
        jumped[rows[far], j + 1] = True
    return np.logical_or.accumulate(jumped, axis=1)
