"""tools/gpu_session_data.py: what a GPU session trains on is the repo's data, resized faithfully
(7-Scenes at half resolution with matching intrinsics; video frames as JPEG folders)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from fourds_ros.rgbd import read_sequence

from .tool_module import load_tool as _load


def load_tool():
    return _load("gpu_session_data.py")


def write_7scenes(root: Path, frames: int = 2) -> np.ndarray:
    root.mkdir(parents=True)
    k = np.array([[585.0, 0, 320], [0, 585.0, 240], [0, 0, 1]])
    np.savetxt(root / "camera-intrinsics.txt", k)
    rng = np.random.default_rng(0)
    for i in range(frames):
        cv2.imwrite(str(root / f"frame-{i:06d}.color.jpg"), rng.integers(0, 256, (480, 640, 3), dtype=np.uint8))
        depth = rng.integers(500, 4000, (480, 640)).astype(np.uint16)
        depth[:10] = 65535  # invalid rows stay invalid
        cv2.imwrite(str(root / f"frame-{i:06d}.depth.png"), depth)
        np.savetxt(root / f"frame-{i:06d}.pose.txt", np.eye(4))
    return k


def test_half_7scenes_keeps_depth_values_poses_and_the_camera(tmp_path):
    tool = load_tool()
    k = write_7scenes(tmp_path / "src")
    assert tool.half_7scenes(tmp_path / "src", tmp_path / "half") == 2
    full, half = read_sequence(tmp_path / "src"), read_sequence(tmp_path / "half")
    assert len(half.rgb_paths) == 2 and np.allclose(half.camera_to_world, full.camera_to_world)
    assert half.depth_scale == full.depth_scale
    # The same ray: full-resolution pixel u is half-resolution pixel (u + 0.5) / 2 - 0.5.
    ray = np.array([0.3, -0.2, 1.0])
    u_full, u_half = full.intrinsics @ ray, half.intrinsics @ ray
    assert np.allclose(np.loadtxt(tmp_path / "half" / "camera-intrinsics.txt")[0, 0], k[0, 0] / 2)  # still the depth camera's
    assert np.allclose((u_full[:2] + 0.5) / 2 - 0.5, u_half[:2])
    src = cv2.imread(str(tmp_path / "src" / "frame-000001.depth.png"), cv2.IMREAD_UNCHANGED)
    out = cv2.imread(str(tmp_path / "half" / "frame-000001.depth.png"), cv2.IMREAD_UNCHANGED)
    assert out.shape == (240, 320) and out.dtype == np.uint16 and np.array_equal(out, src[::2, ::2])
    rgb = cv2.imread(str(tmp_path / "half" / "frame-000001.color.jpg"))
    assert rgb.shape == (240, 320, 3)


def test_frame_folders_take_every_nth_frame_at_the_width(tmp_path):
    tool = load_tool()
    video = tmp_path / "clip"
    video.mkdir()
    for i in range(10):
        cv2.imwrite(str(video / f"{i:03d}.png"), np.full((60, 80, 3), i * 20, np.uint8))
    assert tool.frame_folders([video], tmp_path / "out", every=4, width=40) == 3
    written = sorted((tmp_path / "out" / "clip").glob("*.jpg"))
    assert [p.stem for p in written] == ["00000", "00004", "00008"]
    frame = cv2.imread(str(written[1]))
    assert frame.shape == (30, 40, 3) and abs(int(frame.mean()) - 80) <= 2


def test_half_tum_keeps_depth_poses_and_the_camera(tmp_path):
    """The TUM validation copy reads back through read_tum with its own half-resolution K."""
    from .conftest import SHARED_DATA, require

    src = require(SHARED_DATA / "tum_fr1_rpy_f000-079")
    tool = load_tool()
    assert tool.half_tum(src, tmp_path / "half") == 80
    full, half = read_sequence(src), read_sequence(tmp_path / "half")
    assert len(half.rgb_paths) == len(full.rgb_paths) and np.allclose(half.camera_to_world, full.camera_to_world)
    # Both are undistorted (the half copy carries the lens): the same view at half the pixels
    assert full.undistortion is not None and half.undistortion is not None
    ray = np.array([0.3, -0.2, 1.0])
    u_full, u_half = full.intrinsics @ ray, half.intrinsics @ ray
    assert np.allclose((u_full[:2] + 0.5) / 2 - 0.5, u_half[:2], atol=1.0)
    d_full, d_half = full.depth(5), half.depth(5)
    assert d_half.shape == (240, 320) and half.rgb(5).shape == (240, 320, 3)
    both = (d_half > 0) & (d_full[::2, ::2] > 0)
    assert both.mean() > 0.5
    assert np.median(np.abs(d_half[both] / d_full[::2, ::2][both] - 1)) < 0.01


def test_a_failed_training_call_returns_no_model(tmp_path):
    """On a warm machine the last call's model stays in /tmp/gpurun: a `train` call whose training
    failed converted, split and returned that model with exit status 0, as if this call made it.
    The script runs here with its /tmp paths moved into the test's folder and a python3 whose
    train_readouts fails."""
    import os
    import subprocess

    repo = Path(__file__).resolve().parents[1]
    root = tmp_path / "machine"
    script = (repo / "tools" / "gpu_session.sh").read_text().replace("/tmp/", f"{root}/")
    (tmp_path / "gpu_session.sh").write_text(script)
    (root / "site").mkdir(parents=True)
    stale = root / "gpurun" / "model"
    stale.mkdir(parents=True)
    (stale / "model.safetensors").write_bytes(b"an earlier call's weights")
    for name in ("config.json", "training_log.json", "README.md"):
        (stale / name).write_text("{}")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").write_text('#!/bin/sh\necho "training failed" >&2\nexit 2\n')
    (bin_dir / "python3").chmod(0o755)
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "OUT": str(out)}
    done = subprocess.run(["bash", str(tmp_path / "gpu_session.sh"), "train"], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0, done.stdout + done.stderr
    assert not list(out.glob("model.safetensors.part-*")) and not (out / "config.json").exists()
    assert not stale.exists()


def _session_script(tmp_path: Path, python3: str) -> tuple[Path, dict, Path]:
    """gpu_session.sh with its /tmp paths moved into tmp_path/machine, and a python3 stub (sh body).
    -> (the script, its environment, its $OUT)."""
    import os

    repo = Path(__file__).resolve().parents[1]
    root = tmp_path / "machine"
    script = tmp_path / "gpu_session.sh"
    script.write_text((repo / "tools" / "gpu_session.sh").read_text().replace("/tmp/", f"{root}/"))
    (root / "site").mkdir(parents=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").write_text("#!/bin/sh\n" + python3)
    (bin_dir / "python3").chmod(0o755)
    out = tmp_path / "out"
    out.mkdir()
    return script, {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "OUT": str(out)}, out


@pytest.mark.parametrize("value, passed", [("1", True), ("0", False), ("", False)])
def test_teacher_and_reverse_are_on_at_1_only(tmp_path, value, passed):
    """TEACHER=0 (SMOKE's convention for off) passed --depth-teacher: any value turned it on."""
    import subprocess

    script, env, _ = _session_script(tmp_path, f'echo "$@" >> {tmp_path}/args\nexit 3\n')
    done = subprocess.run(["bash", str(script), "train"], cwd=Path(__file__).resolve().parents[1],
                          env={**env, "TEACHER": value, "REVERSE": value}, capture_output=True, text=True, timeout=60)
    args = (tmp_path / "args").read_text()
    assert done.returncode != 0 and "training.train_readouts" in args
    assert ("--depth-teacher" in args) is passed and ("--reverse" in args) is passed, args


@pytest.mark.parametrize("mode, seconds, refused", [("train", {"TRAIN_SECONDS": "420"}, False),
                                                      ("train", {"TRAIN_SECONDS": "480"}, True),
                                                      ("scratch", {"TRAIN_SECONDS": "300"}, True),
                                                      ("scratch", {}, False),
                                                      ("scratch", {"PRETRAIN_SECONDS": "120", "TRAIN_SECONDS": "300"}, False)])
def test_budgets_a_call_cannot_hold_are_refused_before_the_last_runs_weights_go(tmp_path, mode, seconds, refused):
    """A call runs at most 600 s and one cut short returns only its best checkpoint so far: 200 s of MAE and 300 s of
    training, plus about 130 s of rendering and a 10 % overshoot, ran past it (scratch's defaults, until its
    TRAIN_SECONDS defaulted to what the call has left). Refused before /tmp/gpurun, which
    holds the last call's weights, is emptied; a budget that fits goes on to train."""
    import subprocess

    script, env, _ = _session_script(tmp_path, f'echo "$@" >> {tmp_path}/args\nexit 3\n')
    (tmp_path / "machine" / "gpudata" / "frames").mkdir(parents=True)
    last_run = tmp_path / "machine" / "gpurun" / "model" / "selected"
    last_run.mkdir(parents=True)
    done = subprocess.run(["bash", str(script), mode], cwd=Path(__file__).resolve().parents[1],
                          env={**env, **seconds}, capture_output=True, text=True, timeout=60)
    if refused:
        assert done.returncode == 2 and "over the call's 600 s" in done.stdout, done.stdout + done.stderr
        assert last_run.is_dir() and not (tmp_path / "args").exists()
    else:
        assert done.returncode != 0 and "training." in (tmp_path / "args").read_text()


def test_restore_does_not_overwrite_weights_adopted_before_it(tmp_path):
    """restore moved the parked weights over models/fourds_default without looking: a model adopted
    from the GPU run before restore was silently replaced by the old one."""
    import os
    import subprocess

    repo = Path(__file__).resolve().parents[1]
    tree = tmp_path / "tree"
    (tree / "tools").mkdir(parents=True)
    (tree / "tools" / "gpu_session_prepare.sh").write_text((repo / "tools" / "gpu_session_prepare.sh").read_text())
    weights = tree / "models" / "fourds_default" / "model.safetensors"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"the GPU run's weights")
    parked = tmp_path / "parked"
    parked.mkdir()
    (parked / "model.safetensors").write_bytes(b"the committed weights")
    done = subprocess.run(["bash", "tools/gpu_session_prepare.sh", "restore"], cwd=tree,
                          env={**os.environ, "PARKED": str(parked)}, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "differs from the parked" in done.stderr, done.stdout + done.stderr
    assert weights.read_bytes() == b"the GPU run's weights" and (parked / "model.safetensors").exists()


def test_training_asks_for_cuda_and_setup_refuses_a_machine_without_it(tmp_path):
    """On a broken driver setup passed (it printed cuda False) and train_readouts' device 'auto' trained on
    the device's 16 CPU cores, past the call's 600 s with nothing returned."""
    import subprocess

    repo = Path(__file__).resolve().parents[1]
    # the stub: every import check passes, CUDA is absent, training records its arguments
    script, env, _ = _session_script(tmp_path, f'case "$*" in *"else 1"*) exit 1;; *train_readouts*) '
                                               f'echo "$@" >> {tmp_path}/args; exit 3;; esac\nexit 0\n')
    gpu = tmp_path / "tree"
    (gpu / ".gpu" / "whl").mkdir(parents=True)
    (gpu / ".gpu" / "data").mkdir()
    (gpu / ".gpu" / "whl" / "x.whl").write_text("")
    setup = subprocess.run(["bash", str(script), "setup"], cwd=gpu, env={**env, "SMOKE": "0"},
                           capture_output=True, text=True, timeout=60)
    assert setup.returncode != 0 and "no CUDA" in setup.stdout, setup.stdout + setup.stderr
    dry = subprocess.run(["bash", str(script), "setup"], cwd=gpu, env={**env, "SMOKE": "0", "ALLOW_CPU": "1"},
                         capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    (tmp_path / "machine" / "site").mkdir(exist_ok=True)  # what the real pip install leaves
    subprocess.run(["bash", str(script), "train"], cwd=repo, env=env, capture_output=True, text=True, timeout=60)
    args = (tmp_path / "args").read_text()
    assert "training.train_readouts" in args and "--device cuda" in args, args


def test_the_bench_runs_the_model_it_is_given(tmp_path):
    """After prepare parks the tracked weights, the bench runs on the .gpum copy (MODEL), so that bench,
    setup and train follow one another on one warm machine."""
    import os
    import subprocess

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/args\nexit 0\n')
    (bin_dir / "python3").chmod(0o755)
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "OUT": str(out), "DEVICE": "cpu",
           "MODEL": ".gpum/fourds_default"}
    done = subprocess.run(["bash", "tools/gpu_bench.sh"], cwd=Path(__file__).resolve().parents[1], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "--model .gpum/fourds_default" in (tmp_path / "args").read_text()


# Session 66's sizes (bytes) of what prepare puts in the calls, from ../shared/data and requirements.txt's wheels
MEASURED = {"tree": 13_056_518, "data": 25_831_169, "frames": 12_735_377, "wheels": 16_721_578,
            "weights": 46_683_664, "card": 258_589 + 64_655 + 620}


def _prepare(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, Path]:
    """gpu_session_prepare.sh in a tree of the measured sizes (sparse files), its data and wheels stubbed."""
    import os
    import subprocess

    repo = Path(__file__).resolve().parents[1]
    tree = tmp_path / "tree"
    (tree / "tools").mkdir(parents=True)
    for name in ("tools/gpu_session_prepare.sh", ".gitignore", "requirements.txt"):
        (tree / name).write_text((repo / name).read_text())
    model = tree / "models" / "fourds_default"
    model.mkdir(parents=True)
    os.truncate(_touch(model / "model.safetensors"), MEASURED["weights"])
    os.truncate(_touch(model / "README.md"), MEASURED["card"])
    os.truncate(_touch(tree / "the_rest_of_the_tree"), MEASURED["tree"] - MEASURED["card"])
    subprocess.run(["git", "init", "-q"], cwd=tree, check=True)
    stub = tmp_path / "python"
    # the data tool: its data, and the frames where --frames-out says (the last one given wins, as in argparse)
    stub.write_text(f"""#!/bin/bash
if [ "$1" = tools/gpu_session_data.py ]; then
  mkdir -p "$3" && truncate -s {MEASURED['data']} "$3/data"
  frames=$3/frames no=0
  for ((i = 4; i <= $#; i++)); do
    [ "${{!i}}" = --frames-out ] && {{ j=$((i + 1)); frames=${{!j}}; }}
    [ "${{!i}}" = --no-mae-frames ] && no=1
  done
  [ $no = 1 ] || {{ mkdir -p "$frames" && truncate -s {MEASURED['frames']} "$frames/frames"; }}
elif [ "$2" = pip ]; then
  mkdir -p .gpu/whl && truncate -s {MEASURED['wheels']} .gpu/whl/wheels.whl
fi
""")
    stub.chmod(0o755)
    env = {**os.environ, "PYTHON": str(stub), "PARKED": str(tmp_path / "parked")}
    done = subprocess.run(["bash", "tools/gpu_session_prepare.sh", *args], cwd=tree, env=env,
                          capture_output=True, text=True, timeout=60)
    return done, tree


def _touch(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def test_every_call_prepare_makes_fits_with_room_to_spare(tmp_path):
    """With the MAE frames in .gpu the setup call came to 65 MiB of the 64 a call carries, so `scratch` could
    not be prepared; the frames travel in a carry of their own (.gpuf, the scratch call's) and every call keeps
    4 MiB to spare (the tree grows during a session)."""
    import re

    done, tree = _prepare(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    sizes = dict(re.findall(r"call with (\S+): (\d+) MiB of 64", done.stdout))
    assert set(sizes) == {".gpu", ".gpum", ".gpuf"} and all(int(v) <= 60 for v in sizes.values()), done.stdout
    assert (tree / ".gpuf" / "frames").is_dir() and not (tree / ".gpu" / "data" / "frames").exists()
    assert not (tree / "models" / "fourds_default" / "model.safetensors").exists()  # parked


def test_a_call_over_64_mib_is_refused_before_the_weights_are_parked(tmp_path):
    """The old layout (frames inside .gpu/data) at the measured sizes: refused, the weights still in the tree."""
    done, tree = _prepare(tmp_path, "--frames-out", ".gpu/data/frames")
    assert done.returncode == 1 and "the call with .gpu is over 64 MiB" in done.stderr, done.stdout + done.stderr
    assert (tree / "models" / "fourds_default" / "model.safetensors").exists()


def _documented_gpu_calls() -> list[tuple[str, str, str]]:
    """(document, environment, mode) of every inline `[ENV=...] bash tools/gpu_session.sh train|scratch`."""
    import re

    root = Path(__file__).resolve().parents[1]
    spans = [(doc, " ".join(span.split())) for doc in ("README.md", "models/fourds_default/README.md")
             for span in re.findall(r"`([^`]+)`", (root / doc).read_text())]  # inline spans, across line breaks
    return [(doc, *m.groups()) for doc, span in spans
            if (m := re.fullmatch(r"((?:[A-Z_]+=\S+ )*)bash tools/gpu_session\.sh (train|scratch)", span))]


def test_the_documents_show_gpu_calls():
    assert len(_documented_gpu_calls()) >= 5


@pytest.mark.parametrize("doc, env, mode", _documented_gpu_calls() + [("defaults", "", "train"),
                                                                      ("defaults", "", "scratch")])
def test_a_documented_gpu_call_fits_the_call(doc, env, mode):
    """The model card's recipe for the next GPU session asked for 630 s of a 600 s call, and scratch's own defaults
    for 680 s: refused on the device, a call of a 15-minute budget spent. Each fits (CHECK_BUDGET=1: the check alone)."""
    import os
    import subprocess

    root = Path(__file__).resolve().parents[1]
    base = {k: v for k, v in os.environ.items() if k not in ("TRAIN_SECONDS", "PRETRAIN_SECONDS", "CALL_LIMIT_S")}
    done = subprocess.run(["bash", "tools/gpu_session.sh", mode], cwd=root, capture_output=True, text=True, timeout=30,
                          env={**base, **dict(kv.split("=", 1) for kv in env.split()), "CHECK_BUDGET": "1"})
    assert done.returncode == 0, f"{doc}: {env}bash tools/gpu_session.sh {mode}: {done.stdout.strip()}"
