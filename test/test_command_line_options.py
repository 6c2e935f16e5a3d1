"""The command line checks its options where they are given, before the work (a bad value was a traceback, or was
taken and gave wrong numbers), and the numbers calibrate-scale and bag import derive from them."""

from __future__ import annotations

import pytest

from fourds_ros.cli import main as cli

from .conftest import SHARED_DATA, require

TUM = SHARED_DATA / "tum_fr1_rpy_f000-079"


def test_calibrate_scale_refuses_a_missing_check_bag_before_the_work(tmp_path, monkeypatch, capsys):
    """`calibrate-scale BAG --check TYPO` ran the whole fit on BAG, then failed on --check: the factor it had
    measured was never printed (21 s on 80 TUM frames; minutes on a minute of a team's camera)."""
    from fourds_ros.evaluation import offline

    assert cli(["bag", "convert", "--format", "tum", str(require(TUM)), str(tmp_path / "fit"),
                "--max-frames", "8"]) == 0

    def no_inference(*args, **kwargs):
        raise AssertionError("inference ran before --check was found missing")

    monkeypatch.setattr(offline, "run_offline", no_inference)
    try:
        code = cli(["calibrate-scale", str(tmp_path / "fit"), "--check", str(tmp_path / "typo")])
    except SystemExit as exc:  # a parser.error is as good as a one-line 1
        code = exc.code
    assert code in (1, 2) and "typo" in capsys.readouterr().err


@pytest.mark.parametrize("option", [["--image-16bit-max", "0"], ["--image-16bit-max", "70000"],
                                    ["--max-dt", "inf"], ["--max-dt", "nan"], ["--max-dt", "-0.02"]])
def test_bag_import_refuses_a_bit_depth_or_pairing_window_the_node_would_not_take(tmp_path, option, capsys):
    """--image-16bit-max 0 was a ZeroDivisionError traceback at the first mono16 image and 70000 (the node
    refuses it: image_16bit_max 1..65535) imported darker frames; --max-dt inf was an OverflowError traceback,
    nan a bare "cannot convert float NaN to integer", and a negative one paired no depth or pose at all
    (exit 0, a warning blaming the clocks)."""
    with pytest.raises(SystemExit) as exc:
        cli(["bag", "import", str(tmp_path / "src"), str(tmp_path / "out"), "--image-topic", "/camera/image_raw",
             *option])
    assert exc.value.code == 2 and option[0] in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_bag_convert_refuses_an_infinite_fps(tmp_path, capsys):
    """--fps inf stamped every frame 0 s (index / inf): argtypes.positive_float's finite check."""
    with pytest.raises(SystemExit) as exc:
        cli(["bag", "convert", "--format", "frames", str(tmp_path), str(tmp_path / "out"), "--fps", "inf"])
    assert exc.value.code == 2 and "not a finite number above 0" in capsys.readouterr().err


def test_eval_refuses_two_pose_starts_without_offline_before_the_node(tmp_path, tiny_model_dir, capsys):
    """The smallest pose-over-starts run (2) needs --offline as any other; the suite's test gives 3 only."""
    from fourds_ros.evaluation.eval_cli import check_run

    from fourds_ros.evaluation.bag import BagError

    with pytest.raises(BagError, match="needs the offline path"):
        check_run(tiny_model_dir, offline=False, pose_starts=2)
    assert check_run(tiny_model_dir, offline=True, pose_starts=2) == str(tiny_model_dir)


def test_a_hop_of_the_whole_clip_is_taken(tiny_model_dir):
    """hop = the clip length (clips side by side, no overlap) is a hop the node takes (1..clip_length)."""
    from fourds_ros.evaluation.bag import BagError
    from fourds_ros.evaluation.eval_cli import check_run
    from fourds_ros.model.checkpoint import load_config

    frames = load_config(tiny_model_dir).num_frames
    assert check_run(tiny_model_dir, hop=frames) == str(tiny_model_dir)
    with pytest.raises(BagError, match=f"hop {frames + 1}"):
        check_run(tiny_model_dir, hop=frames + 1)


def test_bag_import_converts_a_12_bit_camera_by_the_image_16bit_max_it_is_given(tmp_path):
    """The CLI's --image-16bit-max reaches the import (the unit test gives ImportSpec its value directly:
    a flag parsed and never passed on read as 65535, 16x too dark, and no test noticed)."""
    from fourds_ros.evaluation.bag import read_bag

    from .test_bag_import import rewrite_bag, tum_frames, write_driver_bag
    import numpy as np

    frames = [f for f in tum_frames(require(TUM)) if f.depth_path is not None and f.camera_to_world is not None][:2]
    write_driver_bag(tmp_path / "bgr", frames)

    def to_mono12(topic, msg):
        if topic == "/camera/color/image_raw":
            bgr = np.asarray(msg.data, np.uint8).reshape(msg.height, msg.width, 3)
            twelve = (bgr.max(axis=2).astype(np.uint32) * 4095 // 255).astype("<u2")
            msg.encoding, msg.step, msg.data = "mono16", msg.width * 2, np.frombuffer(twelve.tobytes(), np.uint8)

    rewrite_bag(tmp_path / "bgr", tmp_path / "mono12", to_mono12)
    assert cli(["bag", "import", str(tmp_path / "mono12"), str(tmp_path / "out"), "--image-topic",
                "/camera/color/image_raw", "--image-16bit-max", "4095"]) == 0
    images = read_bag(tmp_path / "out").images
    assert max(int(im.max()) for im in images.values()) == 255  # 4095 -> 255, not 4095 * 255 / 65535 = 16


def test_calibrate_scale_measures_in_the_models_own_metres_whatever_factor_is_set(tmp_path):
    """A --param metric_scale_factor (the site's last factor, copied from the node's parameters) does not
    change the measured factor: it is measured in the model's own metres (factor 1), as the node multiplies."""
    from fourds_ros.evaluation.scale_cli import calibrate

    assert cli(["bag", "convert", "--format", "tum", str(require(TUM)), str(tmp_path / "fit"),
                "--max-frames", "8"]) == 0
    plain = calibrate(tmp_path / "fit")["factor"]
    assert calibrate(tmp_path / "fit", params={"metric_scale_factor": 0.4})["factor"] == pytest.approx(plain, rel=1e-9)


def test_the_factor_is_the_geometric_median_of_the_frames_not_pulled_by_one_outlier(monkeypatch):
    """One frame reading 100x (a mirror, a window) moves the mean, not the median: the factor and its
    spread (10th-90th percentile) are those of the frames' scales."""
    from types import SimpleNamespace

    import numpy as np

    from fourds_ros.evaluation import metrics, scale_cli

    values = [0.4, 0.41, 0.39, 0.4, 40.0]
    bag = SimpleNamespace(gt_depth=dict.fromkeys(range(5)), gt_intrinsics=lambda s: None)
    preds = SimpleNamespace(depth=dict.fromkeys(range(5)), depth_K={})
    monkeypatch.setattr(scale_cli, "_run", lambda *a: (bag, preds))
    monkeypatch.setattr(scale_cli, "_scores", lambda *a: {})
    scales = iter(values)
    monkeypatch.setattr(metrics, "depth_errors", lambda *a, **k: {"scale": next(scales)})
    result = scale_cli.calibrate("BAG")
    assert result["factor"] == pytest.approx(0.4) and result["frames"] == 5
    assert result["frame_scale_p10"] == pytest.approx(np.percentile(values, 10))
    assert result["frame_scale_p90"] == pytest.approx(np.percentile(values, 90))


def test_the_command_line_exit_codes_are_0_help_and_2_usage(capsys):
    """Scripts tell a usage mistake (2) from a failed run (1): no command and an unknown one are usage."""
    assert cli(["--help"]) == 0
    assert cli([]) == 2
    assert cli(["evall"]) == 2 and "unknown command 'evall'" in capsys.readouterr().err


@pytest.mark.parametrize("option", [["--erode", "-3"], ["--timeout", "0"], ["--timeout", "-5"]])
def test_eval_refuses_a_negative_erosion_or_a_time_limit_of_nothing_when_given(tmp_path, option, capsys):
    """--erode -3 scored as --erode 0 and was reported as -3; --timeout 0 was refused only once the node had
    started, 21 s in."""
    with pytest.raises(SystemExit) as exc:
        cli(["eval", str(tmp_path / "bag"), "--out", str(tmp_path / "out"), *option])
    assert exc.value.code == 2 and option[0] in capsys.readouterr().err


def test_sigterm_ends_a_command_through_its_finally_blocks(tmp_path):
    """`timeout`, `docker stop` and systemd stop a command with SIGTERM; Python's default ran no `finally` and
    no atexit, so an eval's replay and node, or a fallback engine cache, outlived it."""
    import signal
    import subprocess
    import sys
    import time

    (tmp_path / "waits.py").write_text("import time\ndef run(argv):\n    try:\n        print('ready', flush=True)\n"
                                       "        time.sleep(60)\n    finally:\n        print('finally ran', flush=True)\n")
    command = ("import sys\nfrom fourds_ros import cli\ncli.COMMANDS['waits'] = ('waits:run', 'a command that waits')\n"
               "sys.argv = ['fourds-ros', 'waits']\nsys.exit(cli.main())")
    proc = subprocess.Popen([sys.executable, "-c", command], cwd=tmp_path, env={"PYTHONPATH": str(tmp_path)},
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert out.strip() == "finally ran" and proc.returncode == 128 + signal.SIGTERM, (out, proc.returncode)


@pytest.mark.parametrize("argv", [
    ["eval", "BAG", "--offline", "--pose-starts", "-2"],
    ["eval-suite", "--split", "S", "--data-root", "D", "--out", "O", "--pose-starts", "-1"],
    ["bench", "node", "--seconds", "nan"],
    ["bench", "node", "--steps", "15", "nan"],
    ["bench", "node", "--step-seconds", "-8"],
    ["bench", "node", "--beside-seconds", "-1"],
    ["bench", "soak", "--window-seconds", "0"],
], ids=lambda argv: " ".join(argv[:2] + argv[-2:]))
def test_a_negative_or_not_finite_count_or_time_is_refused_where_given(argv, capsys):
    """`eval --pose-starts -2` ran as 0 unsaid; NaN or negative seconds and rates reached the benchmarks' loops."""
    with pytest.raises(SystemExit) as stop:
        cli(argv)
    flag = [arg for arg in argv if arg.startswith("--")][-1]
    assert stop.value.code == 2 and f"argument {flag}" in capsys.readouterr().err


def test_the_bare_subscriber_refuses_a_time_that_is_not_finite(capsys):
    from fourds_ros.bench.bare_subscriber import main

    with pytest.raises(SystemExit) as stop:
        main(["--seconds", "inf"])
    assert stop.value.code == 2 and "--seconds" in capsys.readouterr().err
