"""The shipped node on cameras slower than 30 Hz: each labelled 30 Hz recording converted to a bag
with every Nth frame (`fourds-ros bag convert --stride N`, stamps kept, so 15 Hz and 10 Hz), then
`fourds-ros eval --offline` against the peers on the same frames. Writes OUT/frame_rate.json and
OUT/README.md (a table; the reading is in the model card, session 23).

    ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST .venv/bin/python tools/frame_rate_study.py \
        --data-root ../shared/data --out docs/results/frame_rate [--strides 1 2 3] [--pose-starts 6] \
        [--param NAME=VALUE ...] [--model CANDIDATE_DIR]

Why: the pose head and the tracks head learned 30 Hz video (and the HoloLens walk's keyframes);
a robot's camera is often set to 15 Hz or less to save bandwidth.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "fourds_ros.cli"]
# name, `bag convert --format`, folder under --data-root, role in the shipped model's fold, eval args
RECORDINGS = (
    ("tum_fr1_rpy_f000-079", "tum", "tum_fr1_rpy_f000-079", "validation", []),
    ("7scenes_redkitchen_f000-299", "7scenes", "7scenes_redkitchen_f000-299", "train", ["--erode", "10"]),
)


def row(report: dict) -> dict:
    """The figures of one eval report.json that the table shows."""
    peers, pose = report["peers"], report["pose"]
    starts = report.get("pose_over_starts") or {}
    return {
        "frames": report["bag"]["frames"],
        "depth_abs_rel": report["depth"]["abs_rel"],
        "constant_abs_rel": peers["constant_depth"]["depth"]["abs_rel"],
        "aj": report["tracks"]["aj"],
        "lk_aj": peers["lk"]["tracks"]["aj"],
        "ate": starts.get("fourds", {}).get("ate_mean", pose["ate_rmse"]),
        "orb_vo_ate": starts.get("orb_vo", {}).get("ate_mean", peers["orb_vo"]["pose"]["ate_rmse"]),
        "ate_starts": starts.get("starts", 1),
        "rpe_rot_deg": starts.get("fourds", {}).get("rpe_rot_deg_mean", pose["rpe_rot_deg"]),
        "orb_vo_rpe_rot_deg": starts.get("orb_vo", {}).get("rpe_rot_deg_mean", peers["orb_vo"]["pose"]["rpe_rot_deg"]),
        "rotation_ratio": starts.get("fourds", {}).get("rotation_ratio_mean", pose["rotation_ratio"]),
    }


def add_candidate_arguments(parser: argparse.ArgumentParser) -> None:
    """--param and --model: what a candidate changes, for every eval of a study."""
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="a node parameter for every eval (`fourds-ros eval --param`), e.g. a candidate's")
    parser.add_argument("--model", default=None, help="a model folder for every eval (`fourds-ros eval "
                        "--model`), e.g. a candidate's weights; default: the shipped default model")


def candidate_eval_args(args: argparse.Namespace) -> list[str]:
    """The `fourds-ros eval` arguments of add_candidate_arguments' options."""
    return [a for p in args.param for a in ("--param", p)] + (["--model", args.model] if args.model else [])


def candidate_words(args: argparse.Namespace) -> str:
    """The candidate's options as they were given, for a study's README."""
    return "".join(f" --param {p}" for p in args.param) + (f" --model {args.model}" if args.model else "")


def write_study(out: Path, json_name: str, rows: list[dict], markdown: str) -> None:
    """A study's rows as OUT/json_name and its README (markdown, the title, the command and the
    table), the layout of every docs/results study folder."""
    out.mkdir(parents=True, exist_ok=True)
    (out / json_name).write_text(json.dumps(rows, indent=2) + "\n")
    (out / "README.md").write_text(markdown + "\n")


def convert_and_eval(src: Path, fmt: str, bag: Path, convert_args: list[str], eval_args: list[str]) -> dict:
    """`fourds-ros bag convert --format fmt src bag *convert_args`, then `fourds-ros eval bag
    --offline *eval_args` into bag's sibling `<bag>_report` -> its report.json."""
    out = bag.with_name(f"{bag.name}_report")
    subprocess.run([*CLI, "bag", "convert", "--format", fmt, str(src), str(bag), *convert_args], check=True,
                   cwd=REPO, stdout=subprocess.DEVNULL)
    subprocess.run([*CLI, "eval", str(bag), "--offline", "--out", str(out), *eval_args], check=True, cwd=REPO,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return json.loads((out / "report.json").read_text())


def table_line(r: dict) -> str:
    starts = f" mean of {r['ate_starts']} starts" if r["ate_starts"] > 1 else ""
    return (f"| {r['recording']} | {r['role']} | {r['hz']:.0f} | {r['frames']} | {r['depth_abs_rel']:.3f} "
            f"({r['constant_abs_rel']:.3f}) | {r['aj']:.3f} ({r['lk_aj']:.3f}) | {r['ate']:.4f} ({r['orb_vo_ate']:.4f})"
            f"{starts} | {r['rpe_rot_deg']:.2f} ({r['orb_vo_rpe_rot_deg']:.2f}) | {r['rotation_ratio']:.2f} |")


def table(rows: list[dict]) -> str:
    header = ["| recording | role | camera Hz | frames | depth AbsRel (constant) | AJ (LK) | ATE m (ORB VO) | "
              "rotation RPE deg/frame (ORB VO) | rotation ratio |", "|" + " --- |" * 9]
    return "\n".join(header + [table_line(r) for r in rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--strides", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--pose-starts", type=int, default=6, help="validation rows only (the ATE of one "
                        "start depends on where its clips fall)")
    add_candidate_arguments(parser)
    args = parser.parse_args(argv)
    params = candidate_eval_args(args)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, fmt, folder, role, extra in RECORDINGS:
            for stride in args.strides:
                starts = ["--pose-starts", str(args.pose_starts)] if role == "validation" and args.pose_starts > 1 else []
                report = convert_and_eval(args.data_root / folder, fmt, Path(tmp) / f"{name}_s{stride}",
                                          ["--stride", str(stride)], [*extra, *starts, *params])
                rows.append({"recording": name, "role": role, "stride": stride, "hz": 30.0 / stride, **row(report)})
                print(table_line(rows[-1]), flush=True)
    write_study(args.out, "frame_rate.json", rows,
        "# The shipped node on slower cameras\n\n"
        f"`python tools/frame_rate_study.py --data-root ../shared/data --out docs/results/frame_rate{candidate_words(args)}` "
        f"(strides {' '.join(map(str, args.strides))}: every Nth frame of a 30 Hz recording, stamps kept; node "
        "defaults otherwise; `fourds-ros eval --offline`, the "
        "peers on the same frames). TUM fr1/rpy is the shipped "
        "model's validation scene, the 7-Scenes kitchen a training scene. The reading is in "
        "models/fourds_default/README.md (session 23).\n\n" + table(rows))
    return 0


if __name__ == "__main__":
    from fourds_ros.script_errors import run_script

    sys.exit(run_script(main, "frame_rate_study.py"))
