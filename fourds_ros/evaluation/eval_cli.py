"""`fourds-ros eval BAG [--model DIR] --out REPORT_DIR [--offline] [--badja DIR ...]`.

Default: launch the real node, replay the bag through it over DDS, record its outputs into
REPORT_DIR/outputs.mcap and score them. --offline: the same pipeline code without DDS (fast).
Either way the classical peers run on the same frames and everything lands in report.json,
report.md and PNG plots.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from ..perception.settings import BACKENDS, ModelSettings
from ..argtypes import count, frame_count, pixel_count, positive_float
from .bag import BagError, read_scored_bag
from .predictions import Predictions, grid_queries, track_queries

log = logging.getLogger("fourds_ros.eval")
# eval, eval-suite and calibrate-scale run the model as the node does: on the node's default backend
# (auto), not one of their own (they ran torch, which the node runs only where nothing else can).
NODE_BACKEND = ModelSettings().backend


def add_backend_argument(parser: argparse.ArgumentParser) -> None:
    """--backend, the same for every evaluation command (command_params gives it NODE_BACKEND when unset)."""
    parser.add_argument("--backend", default=None, choices=BACKENDS,
                        help=f"inference backend; default {NODE_BACKEND}, the node's: TensorRT with a GPU, then ONNX "
                             "Runtime, then torch (the report names the one that ran); the same as --param backend=")


# An evaluation command's own flags for node parameters: (flag's attribute, parameter, the flag's unset value).
PARAMETER_FLAGS = (("backend", "backend", None), ("model", "model", None), ("hop", "hop", 0))


def _same_value(name: str, flag, param) -> bool:
    """A flag's value and a --param's are the same: for model, the same folder however it is written."""
    if name == "model":
        return Path(flag or ".").resolve() == Path(param or ".").resolve()
    return str(flag) == str(param)


def command_params(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict:
    """The command's --param node parameters (params_from_args), and its own flags for the same parameters
    (--backend, --model, --hop) reconciled with them: a parameter given by --param alone sets the flag, and
    a flag and a --param that disagree are an error. Why: the flags won silently, so `--param backend=torch`
    ran ONNX Runtime while the report's params said torch. An unset --backend is the node's (NODE_BACKEND)."""
    from ..perception.settings import params_from_args

    params = params_from_args(parser, args.param)
    for attribute, name, unset in PARAMETER_FLAGS:
        if not hasattr(args, attribute) or name not in params:
            continue
        flag = getattr(args, attribute)
        if flag != unset and not _same_value(name, flag, params[name]):
            parser.error(f"--{attribute} {flag} and --param {name}={params[name]} disagree: give one")
        setattr(args, attribute, params[name])
    if getattr(args, "backend", None) is None:
        args.backend = NODE_BACKEND
    return params


def run_peers(bag, model: Predictions) -> dict[str, Predictions]:
    from .peers import constant_depth, lk_tracks, orb_vo

    h, w = bag.image_hw
    queries = track_queries(model.tracks, (h, w)) if model.tracks else {}
    if not queries:  # the method made no usable tracks: LK still runs, from a grid on the first frame
        queries = grid_queries(bag.stamps[0], w, h)
    return {
        "constant_depth": constant_depth(bag.stamps, bag.gt_depth, shape=(max(1, h // 16), max(1, w // 16)),
                                         like=model),
        "lk": lk_tracks(bag.stamps, bag.images, queries),
        "orb_vo": orb_vo(bag.stamps, bag.images, bag.intrinsics),
    }


def add_badja(report: dict, folders, model_dir, backend: str = "torch", settings=None) -> None:
    """Human-annotated tracks (BADJA): PCK@0.2 of the model's tracks head and of LK on every clip
    in `folders` (one folder or several). tracks.badja_pck is the mean over clips (unchanged key);
    tracks.badja_per_clip holds each clip's pck, pck_3px, points, area source and, with the flow
    refinement, tracker_counts (track steps, LK losses, head positions taken), and ratio_to_lk: the
    clip's PCK over LK's with its paired bootstrap interval over annotated frames (uncertainty.py).
    settings: the node's PerceptionSettings (default: its defaults), so BADJA scores what the node runs: its
    hop, track refinement and visibility threshold, and its engine (pipeline.model_engine: device, precision,
    threads); before, --hop changed the bag's rows and not BADJA's."""
    from ..perception.pipeline import model_engine
    from ..perception.settings import PerceptionSettings
    from .badja import model_tracker, score_badja_folders
    from .uncertainty import pck_ratio_interval

    settings = settings or PerceptionSettings()
    tracks = settings.tracks
    tracker = model_tracker(model_dir, backend, track_refinement=tracks.refinement, lk_check_px=tracks.lk_check_px,
                            engine=model_engine(settings, model_dir, backend), hop=settings.clip.hop,
                            min_visibility=tracks.min_visibility)
    results = score_badja_folders(folders, {"fourds": tracker, "lk": None})
    report.setdefault("tracks", {}).update(badja_refinement=tracks.refinement, badja_lk_check_px=tracks.lk_check_px,
                                           badja_hop=tracker.hop)
    for section, result in ((report.setdefault("tracks", {}), results["fourds"]),
                            (report["peers"].setdefault("lk", {}).setdefault("tracks", {}), results["lk"])):
        section["badja_pck"] = result["pck"]
        section["badja_per_clip"] = result["per_clip"]
    for clip, ours in results["fourds"]["per_clip"].items():  # each clip's target ratio, with its interval
        ours["ratio_to_lk"] = pck_ratio_interval(ours["_per_frame"], results["lk"]["per_clip"][clip]["_per_frame"])


def resolve_model(model_dir) -> str:
    """--model, or the shipped default model the node uses when its `model` parameter is empty."""
    if model_dir:
        return str(model_dir)
    from ..model.default import default_model_dir

    found = default_model_dir()
    if not found:
        raise BagError("no --model given and the default model (models/fourds_default) is not installed")
    return found


def check_run(model_dir, offline: bool = True, pose_starts: int = 0, params: dict | None = None, hop: int = 0) -> str:
    """resolve_model, with its config read (CheckpointError when it cannot be), and the run's options checked
    against it and each other (BagError): a mistyped --model, --pose-starts or a reference scale without
    --offline, or a hop the model's clips cannot take, is said before a recording is converted or a node
    started, not after (eval-suite found the first two at its first validation row, after the DDS replays
    before it; a hop past the clip length was a traceback, or a node that never came up)."""
    from ..model.checkpoint import load_config

    model_dir = resolve_model(model_dir)
    frames = load_config(model_dir).num_frames
    if pose_starts > 1 and not offline:
        raise BagError("pose over several start frames needs the offline path (--offline)")
    source = (params or {}).get("metric_scale_source")
    if source in ("reference_odometry", "reference_depth") and not offline:
        raise BagError(f"metric_scale_source {source}: the replay publishes no reference; --offline feeds the bag's "
                       "ground truth (poses, depth) as the reference")
    if not 0 <= hop <= frames:
        raise BagError(f"hop {hop}: the model's clips are {frames} frames, so a hop is 1..{frames} (0: the default, "
                       f"{max(1, frames - 1)})")
    return model_dir


def reported(exc: BaseException) -> bool:
    """Whether eval and eval-suite say `exc` in one line (its message names the problem): a bad bag or
    report directory, a model that cannot be loaded, an engine that cannot run, a replay that failed."""
    from ..model import CheckpointError

    return isinstance(exc, (BagError, CheckpointError)) or type(exc).__name__ in ("EngineError", "ReplayError")


def remove_previous_report(out_dir: Path) -> None:
    """The files an earlier eval wrote into out_dir (nothing else in it, nor in its trajectories/), called once
    the run goes ahead (a refused run leaves the earlier one as it was): a run into the same --out left the
    plots, TUM trajectories and DDS recording a run of its own does not make beside its report.json, and
    evo_ape on trajectories/ then scored the earlier run. BagError where it cannot remove them."""
    from .plots import PLOT_FILES

    names = ["report.json", "report.md", "outputs.mcap", "node.log", "replay_timing.json", *PLOT_FILES]
    names += [f"trajectories/{method}.tum" for method in ("groundtruth", "fourds", "orb_vo")]  # pose_errors' files
    try:
        for name in names:
            (out_dir / name).unlink(missing_ok=True)
    except OSError as exc:
        raise BagError(f"the report directory {out_dir} cannot be written: {exc.strerror or exc}") from exc


def evaluate(bag_path, model_dir, out_dir, offline: bool = False, backend: str = NODE_BACKEND, erode_px: int = 0,
             rate: str = "max", max_frames: int | None = None, hop: int = 0, timeout_s: float = 300.0,
             ros_env: dict | None = None, badja: str | Path | None = None, params: dict | None = None,
             pose_starts: int = 0) -> dict:
    """Run one evaluation end to end; returns the report dict (also written to out_dir).
    model_dir None: the shipped default model. badja: a BADJA folder or a list of them.
    params: node parameters (names as in config/perception.yaml) for both paths. pose_starts > 1
    (offline only): also the pose of the model and of ORB VO from each of the first pose_starts
    frames, in report["pose_over_starts"] (pose_starts.py)."""
    from ..model.checkpoint import load_config
    from .report import build_report, write_report

    # A hop given as a parameter alone is the run's (eval-suite passes --param hop=H so): the flag's 0 overrode
    # it offline (PerceptionSettings.from_params(params, hop=0)) and the DDS replay's schedule.
    hop = hop or int((params or {}).get("hop", 0))
    model_dir = check_run(model_dir, offline, pose_starts, params, hop)
    if badja:  # a mistyped --badja, or a clip that does not read, as --model: before minutes of inference
        from .badja import check_clips

        check_clips(badja)
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # --out naming a file, or a path through one: a reason, not a traceback
        raise BagError(f"the report directory {out_dir} cannot be made: {exc.strerror or exc}") from exc
    from ..perception import PerceptionSettings

    settings = PerceptionSettings.from_params(params, hop=hop)  # offline's pipeline and BADJA's tracker
    bag = read_scored_bag(bag_path, settings.inputs, max_frames)
    clip_length = load_config(model_dir).num_frames
    if len(bag.stamps) < clip_length:  # one padded clip (ClipBuffer.flush) is no recording to score a method on
        raise BagError(f"{bag_path}: {len(bag.stamps)} frames{' (--max-frames)' if max_frames else ''}, fewer than one "
                       f"clip of the model ({clip_length} frames): too short to score")
    t0 = time.perf_counter()
    if offline:
        from .offline import run_offline

        model = run_offline(bag, model_dir, backend, settings)  # its own refusals first (a reference it lacks)
        remove_previous_report(out_dir)
    else:
        from .replay import run_dds

        remove_previous_report(out_dir)  # before the node records into it
        model = run_dds(bag, bag_path, model_dir, out_dir / "outputs.mcap", backend=backend, rate=rate,
                        hop=hop, timeout_s=timeout_s, env=ros_env, params=params)
    peers = run_peers(bag, model)
    meta = {"mode": "offline" if offline else "dds", "model": str(model_dir), "backend": backend, "engine": model.engine,
            "rate": rate if not offline else None, "hop": hop, "params": dict(params or {}),
            "eval_wall_s": time.perf_counter() - t0, "pipeline_status": model.status}
    report = build_report(bag, model, peers, erode_px, out_dir, meta)
    if pose_starts > 1:
        from .pose_starts import pose_over_starts

        report["pose_over_starts"] = pose_over_starts(bag, model_dir, backend, settings, pose_starts, model,
                                                      peers["orb_vo"])
    if badja:
        add_badja(report, badja, model_dir, backend, settings)
    write_report(report, out_dir, bag, model, peers)
    return report


def main(argv: list[str]) -> int:
    from ..perception.settings import add_param_argument
    from .replay import replay_rate

    parser = argparse.ArgumentParser(prog="fourds-ros eval", description=__doc__.split("\n\n")[0])
    parser.add_argument("bag")
    parser.add_argument("--model", default=None,
                        help="model directory (config.json + model.safetensors); default: the shipped "
                             "models/fourds_default, as the node")
    parser.add_argument("--out", required=True, help="report directory")
    parser.add_argument("--offline", action="store_true", help="no DDS: push frames into the pipeline directly")
    add_backend_argument(parser)
    parser.add_argument("--erode", type=pixel_count, default=0, metavar="PX",
                        help="ignore depth within PX pixels of depth edges (7-Scenes: depth from a second camera)")
    parser.add_argument("--rate", default="max", type=replay_rate,
                        help="DDS replay: 'max' (back-pressure, no drops), 'bag' (its own timing) or a rate in Hz")
    parser.add_argument("--max-frames", type=frame_count, default=None)
    parser.add_argument("--hop", type=int, default=0, help="frames between clips (0: the node default, clip length - 1)")
    parser.add_argument("--timeout", type=positive_float, default=300.0,
                        help="DDS replay: seconds to stream the recording in; one not streamed whole within it is an "
                             "error (no report of part of it)")
    parser.add_argument("--badja", metavar="DIR", nargs="+",
                        help="also score PCK@0.2 on every BADJA clip in DIR (DAVIS layout: JPEGImages/480p/<clip>/ "
                             "or <clip>*.mp4 + badja_joint_annotations/<clip>.json; or the older "
                             "davis_horsejump-high_badja layout); several DIRs may follow")
    parser.add_argument("--pose-starts", type=count, default=0, metavar="N",
                        help="with --offline: also the pose (model and ORB VO) from each of the bag's first N "
                             "frames, and their mean ATE (a chained pose depends on where its clips fall)")
    add_param_argument(parser)
    args = parser.parse_args(argv)
    params = command_params(parser, args)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        report = evaluate(args.bag, args.model, args.out, args.offline, args.backend, args.erode, args.rate,
                          args.max_frames, args.hop, args.timeout, badja=args.badja, params=params,
                          pose_starts=args.pose_starts)
    except Exception as exc:  # bag, model, engine and replay errors carry their own clear messages
        if not reported(exc):
            raise
        print(f"fourds-ros eval: {exc}", file=sys.stderr)
        return 1
    from .report import markdown

    # The metrics tables against the peers (the same text as report.md, without the plots).
    print(markdown(report).split("## Plots")[0].rstrip())
    print(f"report: {Path(args.out) / 'report.json'} (report.md, plots beside it)")
    for u in report["unscored"]:
        print(f"not scored: {u}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
