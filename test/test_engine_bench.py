"""`fourds-ros bench engines` on a micro model: JSON rows and the markdown section are written."""

from __future__ import annotations

import json

import numpy as np

from fourds_ros.bench.engines import SAMPLE_FRAMES, build_case, main, real_clip_inputs
from fourds_ros.engine import EngineSpec
from fourds_ros.model import save_checkpoint


def test_bench_engines_writes_json_and_markdown(tmp_path):
    markdown = tmp_path / "benchmarks.md"
    argv = ["--cases", "micro@4x32x32", "--repeats", "2", "--num-queries", "4",
            "--json-dir", str(tmp_path), "--markdown", str(markdown), "--cache-dir", str(tmp_path / "cache")]
    assert main(argv) == 0
    rows = json.loads((tmp_path / "engines.json").read_text())["rows"]
    assert [(r["backend"], r["precision"]) for r in rows] == [
        ("torch", "fp32"), ("onnxruntime", "fp32-unfused"), ("onnxruntime", "fp32"), ("onnxruntime", "fp16"),
        ("onnxruntime", "int8")]
    assert rows[0]["max_rel_l2_vs_torch_fp32"] == 0.0
    assert rows[1]["max_rel_l2_vs_torch_fp32"] <= 1e-5 and rows[2]["max_rel_l2_vs_torch_fp32"] <= 1e-5
    assert all(r["gflops_per_clip"] > 0 and r["latency_ms_p95"] >= r["latency_ms_p50"] > 0 for r in rows)
    # Every output's error is kept and the worst one is named, so a precision's cost is traceable.
    int8 = rows[-1]
    assert set(int8["rel_l2_vs_torch_fp32"]) >= {"depth", "track_xy", "pose_rotation"}
    assert int8["max_rel_l2_vs_torch_fp32"] == max(int8["rel_l2_vs_torch_fp32"].values()) > 0
    assert int8["rel_l2_vs_torch_fp32"][int8["worst_output"]] == int8["max_rel_l2_vs_torch_fp32"]
    text = markdown.read_text()
    assert "<!-- bench:engines -->" in text and "| micro | 4x32x32 | onnxruntime | int8 |" in text
    assert "`fourds-ros bench engines` on " in text and "random weights on a random clip" in text


def test_real_clip_inputs_are_the_sample_frames_resized_with_queries_on_frame_0():
    spec = EngineSpec(build_case("micro@4x32x48").config, num_queries=7)
    inputs = real_clip_inputs(spec, SAMPLE_FRAMES)
    video, queries = inputs["video"], inputs["query_points"]
    assert video.shape == (1, 4, 32, 48, 3) and video.dtype == np.float32
    assert 0.0 <= video.min() and video.max() <= 1.0 and video.std() > 0.05  # a real image, not a constant
    assert not np.allclose(video[0, 0], video[0, 3])  # four different frames
    assert queries.shape == (1, 7, 3) and np.all(queries[..., 0] == 0)
    assert np.all((queries[..., 1] >= 0) & (queries[..., 1] <= 31) & (queries[..., 2] >= 0) & (queries[..., 2] <= 47))


def test_bench_engines_on_a_trained_checkpoint_names_it_and_its_command(tmp_path):
    model_dir = save_checkpoint(build_case("micro@4x32x32", seed=3), tmp_path / "mymodel")
    markdown = tmp_path / "benchmarks.md"
    argv = ["--model", str(model_dir), "--backends", "torch:fp32", "onnxruntime:fp32", "--repeats", "2",
            "--num-queries", "4", "--json-dir", str(tmp_path), "--markdown", str(markdown),
            "--cache-dir", str(tmp_path / "cache")]
    assert main(argv) == 0
    result = json.loads((tmp_path / "engines-trained.json").read_text())
    assert result["model"] == str(model_dir)
    assert [r["case"] for r in result["rows"]] == ["mymodel (trained)"] * 2
    assert result["rows"][1]["max_rel_l2_vs_torch_fp32"] <= 1e-5
    text = markdown.read_text()
    assert "<!-- bench:engines-trained -->" in text and f"`fourds-ros bench engines --model {model_dir}` on " in text


def test_the_engine_bench_imports_on_a_gpu_machines_image():
    """tools/gpu_bench.sh runs `fourds-ros bench engines` on the GPU machine with no carry, where the
    image has torch, OpenCV, ONNX Runtime, safetensors and einops but not transforms3d (nor trimesh,
    embreex, rosbags or rclpy): importing perception.preprocess loaded the whole package, odometry
    and its transforms3d with it, and the call failed before any GPU work."""
    import subprocess
    import sys

    blocked = ("transforms3d", "trimesh", "embreex", "rosbags", "rclpy")
    code = (f"import sys\nfor m in {blocked!r}: sys.modules[m] = None\n"
            "from fourds_ros.bench.engines import SAMPLE_FRAMES, build_case, real_clip_inputs\n"
            "from fourds_ros.engine import EngineSpec\n"  # the sample's frames are read there too
            "real_clip_inputs(EngineSpec(build_case('micro@4x32x32').config, num_queries=4), SAMPLE_FRAMES)\n"
            "from fourds_ros.cli import main\n"
            "main(['bench', 'engines', '--help'])\n")  # argparse's --help exits 0
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_error_column_is_against_torch_fp32_whatever_the_backends_listed(tmp_path):
    """`--backends onnxruntime:fp32 onnxruntime:int8`: the first run's output was the reference, so ONNX Runtime
    fp32 read 0.0 and int8 was measured against it, under a column and key that say torch fp32."""
    argv = ["--cases", "micro@4x32x32", "--repeats", "1", "--num-queries", "4", "--backends", "onnxruntime:fp32",
            "onnxruntime:int8", "--json-dir", str(tmp_path), "--markdown", "", "--cache-dir", str(tmp_path / "cache")]
    assert main(argv) == 0
    ort, int8 = json.loads((tmp_path / "engines.json").read_text())["rows"]
    assert 0.0 < ort["max_rel_l2_vs_torch_fp32"] <= 1e-5  # ONNX Runtime's own small difference, not 0
    assert int8["max_rel_l2_vs_torch_fp32"] > ort["max_rel_l2_vs_torch_fp32"]


def test_a_bench_that_measures_nothing_writes_nothing_and_misuse_is_one_line(tmp_path, capsys):
    """A typo in --backends measured nothing and replaced the committed table with an empty one (its defaults
    are docs/benchmarks*); every misuse of `bench` was a traceback. Now one line and exit code 1 (2 for a bad
    number), the files as they were."""
    from fourds_ros.bench import main as bench

    (tmp_path / "engines.json").write_text("{}\n")
    markdown = tmp_path / "benchmarks.md"
    markdown.write_text("# kept\n")
    assert bench(["engines", "--cases", "micro@4x32x32", "--backends", "torch:fp8", "--json-dir", str(tmp_path),
                  "--markdown", str(markdown), "--cache-dir", str(tmp_path / "cache")]) == 1
    assert "no engines row was measured" in capsys.readouterr().err
    assert (tmp_path / "engines.json").read_text() == "{}\n" and markdown.read_text() == "# kept\n"
    assert bench(["engines", "--model", str(tmp_path / "missing"), "--json-dir", str(tmp_path), "--markdown", ""]) == 1
    assert "Traceback" not in capsys.readouterr().err
    for argv in (["node", "--rate", "0"], ["soak", "--minutes", "0"], ["encoder", "--repeats", "0"]):
        try:
            bench(argv)
        except SystemExit as exc:
            assert exc.code == 2, argv
        else:
            raise AssertionError(f"{argv} was taken")


def test_real_clip_inputs_take_frames_in_frame_order_and_name_an_unreadable_one(tmp_path):
    """A folder of 1.png ... 12.png read by name would start 1, 10, 11, 12, 2: the clip would jump in time.
    Each frame here is one flat grey level equal to its number, so the clip's order shows in its values."""
    import cv2
    import pytest

    spec = EngineSpec(build_case("micro@4x32x32").config, num_queries=4)
    for i in range(1, 13):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.full((8, 8, 3), 10 * i, np.uint8))
    video = real_clip_inputs(spec, tmp_path)["video"][0]
    assert np.allclose(video[:, 0, 0, 0] * 255, [10, 20, 30, 40], atol=1)
    (tmp_path / "2.png").write_bytes(b"not a png")
    with pytest.raises(SystemExit, match="2.png: cannot read the image"):
        real_clip_inputs(spec, tmp_path)
