"""`fourds-ros eval-suite --split config/splits.yaml --fold NAME --data-root DIR --out DIR`: one
model on every labelled recording of a declared split, one table. No rclpy (unless not --offline,
where `evaluate` replays through the node in a subprocess).

Each recording is converted to a bag with the `bag convert` code path (datasets.iter_dataset +
bag.write_bag, compressed: the original JPEG/PNG bytes) into OUT/bags/<name>, scored by the same
`evaluate(...)` as `fourds-ros eval` into OUT/<name>/report.json, and summarised in OUT/suite.md
and OUT/suite.json, each row marked `train` or `validation` by the fold. Validation rows carry
the issue-17 targets, measured against the peers of the same report:
  depth         median-scaled AbsRel <= 0.9 x constant depth's
  metric_depth  metric AbsRel <= 0.9 x constant depth's metric AbsRel
  tracks        AJ >= 1.05 x pyramidal LK's
  pose          ATE <= 0.9 x ORB VO's
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..argtypes import count, frame_count
from .bag import BagError, write_bag
from .datasets import iter_dataset, played_backwards
from .eval_cli import NODE_BACKEND, add_backend_argument, command_params, reported
from .uncertainty import BLOCK_FRAMES, LEVEL

log = logging.getLogger("fourds_ros.eval_suite")

# the labelled formats: depth + pose ground truth ("bag": a recording brought in by `bag import`)
SUITE_FORMATS = ("7scenes", "hololens", "tum", "bag")
DEPTH_FACTOR, AJ_FACTOR, ATE_FACTOR = 0.9, 1.05, 0.9
TARGETS = ("depth", "metric_depth", "tracks", "pose")


class SplitError(ValueError):
    """A split file that does not declare a valid protocol (names, scenes, folds)."""


@dataclass(frozen=True)
class Recording:
    name: str
    format: str
    path: str
    scene: str
    erode_px: int = 0
    reverse: bool = False  # played backwards (datasets.played_backwards): a proxy for unlearned motion


@dataclass(frozen=True)
class Fold:
    name: str
    train: tuple[str, ...]
    validation: tuple[str, ...]


@dataclass(frozen=True)
class Split:
    recordings: tuple[Recording, ...]
    folds: tuple[Fold, ...]
    default_fold: str

    @property
    def scenes(self) -> set[str]:
        return {r.scene for r in self.recordings}

    def fold(self, name: str | None) -> Fold:
        name = name or self.default_fold
        for f in self.folds:
            if f.name == name:
                return f
        raise SplitError(f"no fold {name!r}; the split has {[f.name for f in self.folds]}")


def _recording(entry, index: int) -> Recording:
    if not isinstance(entry, dict):
        raise SplitError(f"recordings[{index}] must be a mapping, got {type(entry).__name__}")
    missing = [k for k in ("name", "format", "path", "scene") if not entry.get(k)]
    unknown = set(entry) - {"name", "format", "path", "scene", "erode_px", "reverse"}
    if missing or unknown:
        raise SplitError(f"recordings[{index}]: missing {missing}, unknown keys {sorted(unknown)}")
    if entry["format"] not in SUITE_FORMATS:
        raise SplitError(f"recordings[{index}] ({entry['name']}): format must be one of {SUITE_FORMATS}")
    if not isinstance(entry.get("reverse", False), bool):
        raise SplitError(f"recordings[{index}] ({entry['name']}): reverse must be true or false")
    erode = entry.get("erode_px", 0)
    if isinstance(erode, bool) or not isinstance(erode, int) or erode < 0:
        raise SplitError(f"recordings[{index}] ({entry['name']}): erode_px must be a whole number of pixels >= 0")
    name = str(entry["name"])  # it names OUT/bags/<name> and OUT/<name>: one folder, never one outside OUT
    if "/" in name or "\\" in name or "\0" in name or name in (".", ".."):
        raise SplitError(f"recordings[{index}] ({name!r}): a name must be one plain folder name, without '/', "
                         "'\\', '.' or '..' (it names the recording's folders under --out)")
    return Recording(name, entry["format"], str(entry["path"]), str(entry["scene"]),
                     erode, bool(entry.get("reverse", False)))


def _fold(entry, index: int, scenes: set[str]) -> Fold:
    if not isinstance(entry, dict) or not entry.get("name"):
        raise SplitError(f"folds[{index}] must be a mapping with a name")
    fold = Fold(str(entry["name"]), tuple(entry.get("train") or ()), tuple(entry.get("validation") or ()))
    unknown = (set(fold.train) | set(fold.validation)) - scenes
    both = set(fold.train) & set(fold.validation)
    left_out = scenes - set(fold.train) - set(fold.validation)
    if unknown or both or left_out or not fold.validation:
        raise SplitError(f"fold {fold.name!r}: unknown scenes {sorted(unknown)}, in train and validation "
                         f"{sorted(both)}, in neither {sorted(left_out)}"
                         + ("" if fold.validation else ", no validation scene"))
    return fold


def load_split(path: str | Path) -> Split:
    """Parse and check a split file (config/splits.yaml documents the format)."""
    import yaml

    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise SplitError(f"{path}: cannot read the split ({exc})") from exc
    if not isinstance(doc, dict) or not doc.get("recordings") or not doc.get("folds"):
        raise SplitError(f"{path}: needs 'recordings' and 'folds' lists")
    recordings = tuple(_recording(e, i) for i, e in enumerate(doc["recordings"]))
    names = [r.name for r in recordings]
    if len(set(names)) != len(names):
        raise SplitError(f"{path}: recording names repeat: {names}")
    # One folder is one scene, whichever way it is played: its frames under a training scene and, reversed, under a
    # validation one scored the images it trained on as validation, with no word (review)
    scene_of: dict[tuple[str, str], str] = {}
    for r in recordings:
        key = (r.format, os.path.normpath(r.path))
        if scene_of.setdefault(key, r.scene) != r.scene:
            raise SplitError(f"{path}: recording folder {r.path!r} is listed under scenes {scene_of[key]!r} and "
                             f"{r.scene!r}; a recording (played either way) belongs to one scene")
    scenes = {r.scene for r in recordings}
    folds = tuple(_fold(e, i, scenes) for i, e in enumerate(doc["folds"]))
    if len({f.name for f in folds}) != len(folds):
        raise SplitError(f"{path}: fold names repeat")
    split = Split(recordings, folds, str(doc.get("default_fold") or folds[0].name))
    split.fold(split.default_fold)  # the declared default must exist
    return split


def check_outputs_apart(recordings: list[Recording], data_root: Path, out: Path) -> None:
    """BagError where a recording the run converts has its converted bag, OUT/bags/<name>, which an earlier
    run's is replaced by, in the recording itself, or holding it or lying in it. Why: a team's own bags listed
    with format: bag under --data-root X and the suite run with --out X: the first row deleted the recording it
    was to evaluate."""
    for rec in recordings:
        source, target = (data_root / rec.path).resolve(), (out / "bags" / rec.name).resolve()
        if source == target or source.is_relative_to(target) or target.is_relative_to(source):
            raise BagError(f"recording {rec.name!r}: its converted bag {out / 'bags' / rec.name} would replace or lie "
                           f"in the recording itself ({data_root / rec.path}); give another --out")


def convert_recording(rec: Recording, data_root: Path, bags_dir: Path, max_frames: int | None) -> int:
    """The `fourds-ros bag convert --compressed` path, into bags_dir/<rec.name> (OUT/bags/<name>). A bag
    left there by an earlier suite run is replaced (it may hold another --max-frames); anything else
    there is an error."""
    bag_path = bags_dir / rec.name
    # behind load_split's check of the name (a Recording may be built directly): the folder that is
    # replaced must lie in bags_dir, never one that a name with '..', an absolute path or a link reaches
    if bag_path.resolve().parent != bags_dir.resolve():
        raise BagError(f"recording {rec.name!r}: {bag_path} is not a folder in {bags_dir}; not writing there")
    if bag_path.exists():
        if not (bag_path / "metadata.yaml").exists():
            raise BagError(f"{bag_path} exists and is not a rosbag2 folder; not overwriting it")
        shutil.rmtree(bag_path)
    bag_path.parent.mkdir(parents=True, exist_ok=True)
    frames = iter_dataset(rec.format, data_root / rec.path, max_frames=max_frames)
    return write_bag(played_backwards(frames) if rec.reverse else frames, bag_path, compressed=True)


def _get(report: dict, *keys):
    for k in keys:
        if not isinstance(report, dict):
            return None
        report = report.get(k)
    return report


def _target(value, peer, factor: float, higher_is_better: bool = False) -> bool | None:
    if value is None or peer is None:
        return None  # not scored: neither a pass nor silently a fail
    return value >= factor * peer if higher_is_better else value <= factor * peer


def _intervals(report: dict) -> dict:
    """Each target's ratio to its peer with how far it moves (uncertainty.py): depth, metric depth
    and AJ with their bootstrap interval; the pose, where measured over start frames, with the
    range of the per-start ratios (ATE over ORB VO's from the same start)."""
    out = {k: {"ratio": v["ratio"], "interval": v["interval"]}
           for k, v in (report.get("uncertainty") or {}).items() if isinstance(v, dict)}
    ours, orb = _get(report, "pose_over_starts", "fourds", "ate"), _get(report, "pose_over_starts", "orb_vo", "ate")
    if ours and orb:
        ratios = [a / b for a, b in zip(ours, orb) if a is not None and b]
        mean_ours, mean_orb = _get(report, "pose_over_starts", "fourds", "ate_mean"), _get(
            report, "pose_over_starts", "orb_vo", "ate_mean")
        if ratios and mean_ours is not None and mean_orb:
            out["pose"] = {"ratio": mean_ours / mean_orb, "interval": (min(ratios), max(ratios)),
                           "over": "start frames"}
    return out


def suite_row(rec: Recording, role: str, report: dict, report_dir: str) -> dict:
    """One table row from one report.json (eval_cli.evaluate's dict)."""
    peers = report.get("peers", {})
    row = {"recording": rec.name, "scene": rec.scene, "role": role, "format": rec.format,
           "frames": _get(report, "bag", "frames"), "report": report_dir,
           "depth_abs_rel": _get(report, "depth", "abs_rel"),
           "constant_abs_rel": _get(peers, "constant_depth", "depth", "abs_rel"),
           "metric_abs_rel": _get(report, "depth", "metric", "abs_rel"),
           "constant_metric_abs_rel": _get(peers, "constant_depth", "depth", "metric", "abs_rel"),
           "aj": _get(report, "tracks", "aj"), "lk_aj": _get(peers, "lk", "tracks", "aj"),
           "ate": _get(report, "pose", "ate_rmse"), "orb_ate": _get(peers, "orb_vo", "pose", "ate_rmse"),
           "ate_still_camera": _get(report, "pose", "ate_still_camera"),
           "ate_se3": _get(report, "pose", "ate_se3_rmse"), "sim3_scale": _get(report, "pose", "sim3_scale"),
           "rotation_ratio": _get(report, "pose", "rotation_ratio"),
           "orb_rotation_ratio": _get(peers, "orb_vo", "pose", "rotation_ratio"),
           "pose_starts": _get(report, "pose_over_starts", "starts"),
           "ate_starts": _get(report, "pose_over_starts", "fourds", "ate_mean"),
           "orb_ate_starts": _get(report, "pose_over_starts", "orb_vo", "ate_mean")}
    row["intervals"] = _intervals(report)
    row["targets"] = None
    if role == "validation":
        targets = {"depth": _target(row["depth_abs_rel"], row["constant_abs_rel"], DEPTH_FACTOR),
                   "metric_depth": _target(row["metric_abs_rel"], row["constant_metric_abs_rel"], DEPTH_FACTOR),
                   "tracks": _target(row["aj"], row["lk_aj"], AJ_FACTOR, higher_is_better=True),
                   # the mean over start frames where measured: one start's ATE hinges on where the clips fall
                   "pose": _target(row["ate"], row["orb_ate"], ATE_FACTOR) if row["pose_starts"] is None
                   else _target(row["ate_starts"], row["orb_ate_starts"], ATE_FACTOR)}
        targets["all"] = all(v is True for v in targets.values())
        row["targets"] = targets
    return row


def _shown(path: str) -> str:
    """A path as the table shows it: relative to the working directory when under it (the
    default model resolves to an absolute path that differs between clones)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


# A model folder may list the scenes (a split's names) that trained it or chose its settings: the shipped model does
TRAINING_SCENES_FILE = "training_scenes.json"


def training_scenes(model_dir: str) -> list[str]:
    """The scenes a model trained on, as its folder records them (TRAINING_SCENES_FILE); [] where it records none.
    A record that is not {"scenes": [names]}: BagError, said in one line (a team edits it by hand)."""
    path = Path(model_dir) / TRAINING_SCENES_FILE
    if not path.is_file():
        return []
    try:
        scenes = json.loads(path.read_text())["scenes"]
    except (ValueError, KeyError, TypeError) as exc:
        raise BagError(f"{path}: not a record of training scenes ({type(exc).__name__}: {exc}); "
                       '{"scenes": ["<scene>", ...]}, the split\'s scene names') from exc
    if not isinstance(scenes, list) or not all(isinstance(name, str) for name in scenes):
        raise BagError(f'{path}: "scenes" must be a list of the split\'s scene names, got {scenes!r}')
    return scenes


def _honesty_note(fold: Fold, model_dir: str) -> str | None:
    """A fold whose validation scenes include one the model trained on (training_scenes) scores scenes it has seen,
    and the table must say so. It was keyed to the shipped split's fold names with --model unset: a team's own split
    validating the kitchen on other frames, or the shipped model named by its path, read "validation, pass" on a
    training scene with no note (review)."""
    seen = sorted(set(fold.validation) & set(training_scenes(model_dir)))
    if seen:
        note = (f"the model was trained on {', '.join(seen)}; on fold {fold.name!r} those validation rows are "
                "training-scene numbers")
        log.warning(note)
        return note
    return None


def run_suite(split: Split, fold: Fold, data_root: str | Path, out: str | Path, offline: bool = False,
              model_dir: str | None = None, max_frames: int | None = None, backend: str = NODE_BACKEND,
              params: dict | None = None, validation_only: bool = False, pose_starts: int = 0) -> dict:
    """Evaluate one model on every recording of the split (validation_only: only the fold's
    validation scenes); returns the suite dict (also written). params: node parameters.
    pose_starts > 1: the validation rows' pose also from each of their first pose_starts frames
    (offline; the pose target then uses the mean, pose_starts.py)."""
    from .eval_cli import check_run, evaluate

    data_root, out = Path(data_root), Path(out)
    model_arg = model_dir
    # a mistyped --model, and options that cannot run together, before any recording is converted
    model_dir = check_run(model_dir, offline, pose_starts, params, int((params or {}).get("hop", 0)))
    note = _honesty_note(fold, model_dir)
    runs = [(rec, "validation" if rec.scene in fold.validation else "train") for rec in split.recordings]
    runs = [(rec, role) for rec, role in runs if role == "validation" or not validation_only]
    check_outputs_apart([rec for rec, _ in runs], data_root, out)
    missing = [f"{rec.name}: {data_root / rec.path}" for rec, _ in runs if not (data_root / rec.path).exists()]
    if missing:
        raise BagError(f"no such recording: {', '.join(missing)}")
    for summary in ("suite.json", "suite.md"):  # an earlier suite's, which a stopped rerun left looking whole
        (out / summary).unlink(missing_ok=True)
    rows = []
    for rec, role in runs:
        t0 = time.perf_counter()
        n = convert_recording(rec, data_root, out / "bags", max_frames)
        log.info("%s (%s): %d frames converted, evaluating", rec.name, role, n)
        report = evaluate(out / "bags" / rec.name, model_dir, out / rec.name, offline=offline, backend=backend,
                          erode_px=rec.erode_px, params=params,
                          pose_starts=pose_starts if role == "validation" or rec.reverse else 0)
        rows.append(suite_row(rec, role, report, rec.name))
        rows[-1]["wall_s"] = time.perf_counter() - t0
    suite = {"fold": asdict(fold), "model": _shown(model_dir), "model_is_default": model_arg is None,
             "mode": "offline" if offline else "dds", "params": dict(params or {}),
             "backend": backend, "max_frames": max_frames, "data_root": str(data_root), "pose_starts": pose_starts,
             "targets": {"depth": f"AbsRel <= {DEPTH_FACTOR} x constant", "metric_depth":
                         f"metric AbsRel <= {DEPTH_FACTOR} x constant's", "tracks": f"AJ >= {AJ_FACTOR} x LK",
                         "pose": f"ATE <= {ATE_FACTOR} x ORB VO"},
             "note": note, "rows": rows}
    write_suite(suite, out)
    return suite


def _f(v, digits: int = 3) -> str:
    return "–" if v is None else f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def _mark(v) -> str:
    return "–" if v is None else "pass" if v else "FAIL"


def _starts(row: dict) -> str:
    """The ATE cell's mean over start frames, where measured (--pose-starts)."""
    if not row.get("pose_starts"):
        return ""
    return f"; mean of {row['pose_starts']} starts {_f(row['ate_starts'])} ({_f(row['orb_ate_starts'])})"


def suite_markdown(suite: dict) -> str:
    fold = suite["fold"]
    lines = [f"# Evaluation suite, fold `{fold['name']}`", "",
             f"Model `{suite['model']}`, {suite['mode']}"
             + (f", first {suite['max_frames']} frames of each recording" if suite["max_frames"] else "")
             + "".join(f", {k}={v}" for k, v in (suite.get("params") or {}).items()) + ".",
             f"Training scenes: {', '.join(fold['train']) or '–'}. "
             f"Validation scenes: {', '.join(fold['validation'])}.",
             *([f"**Note: {suite['note']}.**"] if suite.get("note") else []),
             "Targets (validation rows): " + "; ".join(f"{k}: {v}" for k, v in suite["targets"].items()) + ".", "",
             "| recording | role | frames | depth AbsRel (constant) | metric AbsRel (constant) | tracks AJ (LK) "
             "| ATE m (ORB VO) [still camera] | metric odometry ATE m, SE(3) (Sim(3) scale) "
             "| rotation ratio (ORB VO) | depth | metric | tracks | pose |",
             "|---" * 13 + "|"]
    for r in suite["rows"]:
        t = r["targets"] or {}
        marks = [_mark(t.get(k)) for k in TARGETS] if r["targets"] else ["(train)"] * 4
        lines.append(f"| {r['recording']} | {r['role']} | {_f(r['frames'])} "
                     f"| {_f(r['depth_abs_rel'])} ({_f(r['constant_abs_rel'])}) "
                     f"| {_f(r['metric_abs_rel'])} ({_f(r['constant_metric_abs_rel'])}) "
                     f"| {_f(r['aj'])} ({_f(r['lk_aj'])}) | {_f(r['ate'])} ({_f(r['orb_ate'])}){_starts(r)} [{_f(r.get('ate_still_camera'))}] "
                     f"| {_f(r.get('ate_se3'))} ({_f(r.get('sim3_scale'), 2)}) | {_f(r['rotation_ratio'], 2)} ({_f(r['orb_rotation_ratio'], 2)}) | " + " | ".join(marks) + " |")
    val = [r for r in suite["rows"] if r["role"] == "validation"]
    lines += ["", f"Validation rows meeting every target: {sum(r['targets']['all'] for r in val)} of {len(val)}.", "",
              *_interval_lines(suite["rows"]),
              "[still camera]: the ATE of a camera that never moves (Sim(3) alignment gives every estimate "
              "at most this); an ATE near it measured little translation.",
              "Metric odometry: the model's ATE with its metres kept (a rigid alignment only), as a robot fusing "
              "the odometry meets it, and the scale the Sim(3) alignment of the ATE column applied (1: right "
              "metres). The targets are on the ATE column, where ORB VO, which measures no metres, gets the same "
              "Sim(3) alignment.",
              "Each row's full report: `<recording>/report.md` beside this file when the suite was run.", ""]
    return "\n".join(lines)


def _interval_lines(rows: list[dict]) -> list[str]:
    """How sure each ratio is: the table of uncertainty.py's intervals (and the pose's range over
    start frames)."""
    def cell(row: dict, target: str) -> str:
        v = (row.get("intervals") or {}).get(target)
        if not v:
            return "–"
        interval = v.get("interval")
        return _f(v["ratio"], 2) + (f" [{_f(interval[0], 2)}, {_f(interval[1], 2)}]" if interval else "")

    if not any(r.get("intervals") for r in rows):
        return []
    lines = [f"Ratios to the peers [{round(100 * LEVEL)} % bootstrap interval: frames in blocks of "
             f"{BLOCK_FRAMES} for depth, points for AJ; the pose: the range over start frames]. Targets: depth "
             f"and metric <= {DEPTH_FACTOR}, AJ >= {AJ_FACTOR}, ATE <= {ATE_FACTOR}; an interval that straddles "
             "its target is a pass or a FAIL within what one recording can tell.", "",
             "| recording | role | depth / constant | metric / constant | AJ / LK | ATE / ORB VO |", "|---" * 6 + "|"]
    lines += [f"| {r['recording']} | {r['role']} | " + " | ".join(cell(r, t) for t in TARGETS) + " |" for r in rows]
    return lines + [""]


def write_suite(suite: dict, out: str | Path) -> None:
    from .report import _json_ready

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "suite.json").write_text(json.dumps(_json_ready(suite), indent=2) + "\n")
    (out / "suite.md").write_text(suite_markdown(suite))


def main(argv: list[str]) -> int:
    from ..perception.settings import add_param_argument

    parser = argparse.ArgumentParser(prog="fourds-ros eval-suite", description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", required=True, help="split file (config/splits.yaml)")
    parser.add_argument("--fold", default=None, help="fold name (default: the split's default_fold)")
    parser.add_argument("--data-root", required=True, help="folder the split's recording paths are relative to")
    parser.add_argument("--out", required=True, help="output folder: bags/, <recording>/report.*, suite.md/json")
    parser.add_argument("--offline", action="store_true", help="no DDS: push frames into the pipeline directly")
    parser.add_argument("--model", default=None, help="model directory (default: the shipped models/fourds_default)")
    add_backend_argument(parser)
    parser.add_argument("--max-frames", type=frame_count, default=None, help="only the first N frames of each recording")
    add_param_argument(parser, "for every recording")
    parser.add_argument("--validation-only", action="store_true", help="evaluate the fold's validation scenes only")
    parser.add_argument("--pose-starts", type=count, default=0, metavar="N",
                        help="with --offline: validation rows' pose (model and ORB VO) also from each of their "
                             "first N frames; the pose target uses the mean (0: one start)")
    args = parser.parse_args(argv)
    params = command_params(parser, args)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        split = load_split(args.split)
        fold = split.fold(args.fold)
        suite = run_suite(split, fold, args.data_root, args.out, args.offline, args.model, args.max_frames,
                          args.backend, params, args.validation_only, args.pose_starts)
    except Exception as exc:  # what `eval` says in one line (eval_cli.reported), a bad split, an --out it cannot write
        if not (isinstance(exc, (SplitError, OSError)) or reported(exc)):
            raise
        print(f"fourds-ros eval-suite: {exc}", file=sys.stderr)
        return 1
    print(suite_markdown(suite))
    print(f"suite: {Path(args.out) / 'suite.json'} (suite.md beside it)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
