"""Issue #20 fuzz: seeded random mutations of valid Image, CompressedImage and CameraInfo messages
sent to the node over real DDS (fourds_ros/ros/fuzz_inputs.py via the probe's "fuzz" step).

Afterwards the node must be alive and still describe valid frames, its RSS must have grown by at
most 200 MB, every frame taken in must be accounted for (frames_unaccounted 0) and frames_in must
equal what was sent on the subscribed topic less what the node counted as lost in transport. The
node takes one image transport, so the budget is split over two runs: raw and compressed, each
with camera_info mutations alongside its frame mutations.
"""

import math
from collections import Counter

import cv2
import numpy as np
import pytest

from fourds_ros.perception.calibration import DistortionError, Undistorter
from fourds_ros.perception.camera import Calibration, CameraIntake
from fourds_ros.perception.health import StampGaps
from fourds_ros.perception.pose_geometry import solve_clip_motion
from fourds_ros.ros.fuzz_inputs import MUTATIONS
from fourds_ros.ros.harness import run_node

MUTATIONS_PER_RUN = 550  # 1100 in all: the issue asks for at least 1000
RATE_HZ = 80  # at most; the probe also waits while the node is MAX_AHEAD frames behind
# Reliable QoS keeps 10 samples: a node more than 10 frames behind loses some, and a run of over
# 10 lost frames looks like a paused camera in the stamps (not counted). Under a heavy load (2 cores
# shared with other tests) 80 Hz alone lost 288 of 578 frames, 84 of them counted. So the probe
# holds back while the node's /diagnostics (every 0.1 s here) show MAX_AHEAD frames not taken in.
MAX_AHEAD = 8
FINAL_BURST = 12  # valid frames after the fuzz: the node must still describe them
RSS_GROWTH_LIMIT_KB = 200 * 1024
SIZE = [48, 64]


def plan(transport: str, seed: int) -> list[dict]:
    topic = "image" if transport == "raw" else "image/compressed"
    fuzz = {"rate": RATE_HZ, "transport": transport, "size": SIZE, "max_ahead": MAX_AHEAD}
    return [
        {"wait_for": "/diagnostics", "timeout": 60},
        {"wait_for_subscribers": [topic, "camera_info"], "timeout": 60},
        # Warm-up: the first clips allocate the engine's buffers; RSS is measured from after them.
        {"fuzz": 16, "seed": seed, "kinds": ["valid"], **fuzz},
        {"wait_idle": True, "timeout": 30},
        {"node_rss": "before"},
        {"fuzz": MUTATIONS_PER_RUN, "seed": seed, "kinds": [transport if transport == "compressed" else "image",
                                                             "camera_info"], **fuzz},
        # Not wait_idle: after an encoding reset the last frames may wait for a clip that only the
        # next frame completes (pending by design); the burst completes it or resets it (counted).
        {"wait": 1.5},
        {"fuzz": FINAL_BURST, "seed": seed, "kinds": ["valid"], **fuzz},
        {"wait_idle": True, "timeout": 30},
        {"node_rss": "after"},
    ]


@pytest.mark.parametrize("transport, seed", [("raw", 20), ("compressed", 21)])
def test_fuzzed_inputs_leave_the_node_alive_bounded_and_accounted(transport, seed, tiny_model_dir, ros_env,
                                                                  tmp_path):
    params = {"model": str(tiny_model_dir), "num_queries": 16, "max_tracks": 8, "hop": 2,
              "image_transport": transport, "image_qos": "DEFAULT", "diagnostics_period_s": 0.1}
    run = run_node(plan(transport, seed), params, tmp_path, ros_env, probe_timeout_s=75.0,
                   probe_topics=["depth/image", "depth/camera_info", "/diagnostics"])
    assert run.node_alive_after_plan and run.node_returncode == 0, run.node_log[-3000:]
    assert "Traceback" not in run.node_log, run.node_log[-3000:]

    sent = run.result["published"]
    fuzzed = sent[16:-FINAL_BURST]
    assert len(fuzzed) == MUTATIONS_PER_RUN
    # Every mutation family was exercised (the seed did not happen to skip one).
    names = Counter(p["mutation"] for p in fuzzed)
    assert set(names) == set(MUTATIONS["image" if transport == "raw" else "compressed"]) | set(MUTATIONS["camera_info"]), names

    subscribed = "image" if transport == "raw" else "image/compressed"
    on_topic = sum(p["topic"] == subscribed for p in sent)
    values = run.last_diagnostics()["values"]
    lost = max(int(values["frames_lost_in_transport"]), int(values["frames_missing_by_stamp"]))
    assert values["frames_unaccounted"] == "0" and values["frames_pending"] == "0", values
    assert int(values["frames_in"]) == on_topic - lost, (on_topic, values)
    # With the probe's flow control nothing should be lost (it gives up waiting after 2 s, so a
    # stalled node may still lose a few, counted above); the fuzz must reach the node to mean anything.
    assert lost <= on_topic // 20, values
    # The frame mutations were refused as bad input, each counted once per frame, not swallowed.
    assert int(values["frames_rejected"]) > 0 and int(values["frames_out"]) > 0, values
    if transport == "raw":
        assert int(values.get("errors_too_large", 0)) > 0 and int(values.get("errors_size", 0)) > 0, values
    else:
        assert int(values.get("errors_too_large", 0)) > 0 and int(values.get("errors_bad_header", 0)) > 0, values
    assert any(k.startswith("errors_camera_info_") for k in values), values

    # Alive and answering: the valid frames after the fuzz are described. Under heavy load a queued
    # clip may be superseded (frames_dropped, counted above), but never the last one, and the idle
    # flush describes what follows it: the burst's last frames always come out.
    final = [p["stamp_ns"] for p in sent[-FINAL_BURST:]]
    depth = {d["stamp_ns"] for d in run.records("depth/image")}
    assert set(final[-2:]) <= depth and len(set(final) & depth) >= FINAL_BURST // 2, (final, sorted(depth)[-20:])
    # No K published for a depth image is NaN/inf or has a non-positive focal length (silent wrong
    # geometry; before the Undistorter check below, k1 = 1e30 published fx = 1e32 or negative fx).
    # Its principal point may lie off the depth image: the model's centre crop can cut it away.
    infos = run.records("depth/camera_info")
    assert infos
    for info in infos:
        fx, fy = info["k"][0], info["k"][4]
        assert all(math.isfinite(v) for v in info["k"]) and fx > 0 and fy > 0, info

    rss = {e["node_rss"]: e["kb"] for e in run.result["events"] if "node_rss" in e}
    assert rss["before"] > 0 and rss["after"] > 0, rss
    assert rss["after"] - rss["before"] <= RSS_GROWTH_LIMIT_KB, rss
    print(f"{transport}: sent {len(sent)} ({on_topic} on {subscribed}), mutations {dict(names)}, "
          f"RSS {rss['before']} -> {rss['after']} kB, counts "
          f"{ {k: v for k, v in values.items() if k.startswith(('frames_', 'errors_', 'resets_'))} }")


# -- found by the fuzz ---------------------------------------------------------------------------
K_64x48 = np.array([[55.4, 0, 31.5], [0, 55.4, 23.5], [0, 0, 1]])


@pytest.mark.parametrize("model, d", [
    ("plumb_bob", [1e30, 0, 0, 0, 0]),  # OpenCV's new K: fx 5e31 (a sliver of the image)
    ("plumb_bob", [1e300] * 5),  # new K: fx -27, principal point off the image
    ("plumb_bob", [0, 0, 1e5, 1e5, 0]),  # new K: fx -1e-172
    ("rational_polynomial", [-1e10] * 8),  # new K: fx 1e-37
    ("equidistant", [1e30] * 4),  # maps entirely off the image (fixed-point maps saturate to 0)
])
def test_distortion_no_lens_has_is_refused_not_published(model, d):
    """The fuzz's distortion_huge camera_info: the undistorted K came back absurd and was published
    as the depth image's K. Now it is a counted bad_distortion and the default intrinsics apply."""
    undistort = Undistorter()
    frame = np.zeros((48, 64, 3), np.uint8)
    for _ in range(3):  # refused every time, from the cache after the first
        with pytest.raises(DistortionError) as err:
            undistort(frame, K_64x48, d, model)
        assert err.value.kind == "bad_distortion"
    assert undistort.maps_built == 1
    out, k, problem = CameraIntake()(frame, Calibration(K_64x48, tuple(d), model, 64, 48))
    assert k is None and problem.startswith("camera_info_bad_distortion"), problem
    # A real lens of the same model still undistorts.
    real = {"plumb_bob": [0.1, -0.2, 0, 0, 0.05], "rational_polynomial": [0.1, -0.2, 0, 0, 0.05, 0, 0, 0],
            "equidistant": [-0.006, 0.04, -0.04, 0.007]}[model]
    out, k, problem = CameraIntake()(frame, Calibration(K_64x48, tuple(real), model, 64, 48))
    assert problem == "" and np.isfinite(k).all() and 0.5 < k[0, 0] / K_64x48[0, 0] < 2


def test_coincident_tracks_fall_back_to_the_head_instead_of_failing_the_clip():
    """Fuzz (compressed and raw runs): 'inference failed: OpenCV sqpnp.cpp computeOmega' on noise
    frames, whose tracks the tiny model put on (almost) one pixel."""
    k = np.array([[30.0, 0, 15.5], [0, 30.0, 15.5], [0, 0, 1]])
    xy = np.tile([[[10.0, 12.0]]], (16, 4, 1))
    xy[:, :, 0] += np.arange(16)[:, None] * 1e-3  # 16 tracks within 0.015 px
    try:
        geo = solve_clip_motion(np.full((32, 32), 2.0), xy, np.ones((16, 4), bool), k)
    except cv2.error as exc:
        pytest.fail(f"cv2.error escaped: {str(exc).splitlines()[0]}")
    assert not geo.valid[1:].any()  # degenerate: no geometric pose, the head's is used


def test_a_camera_that_lowers_its_rate_loses_no_frames_in_the_stamp_count():
    """Found while sizing the fuzz's final burst: a slower burst after the 150 Hz fuzz counted every
    frame as missing. Auto-exposure in low light does this to real cameras (30 -> 15 Hz)."""
    gaps, stamp, missing = StampGaps(), 0, 0
    for _ in range(30):
        stamp += 33_333_333
        missing += gaps.add(stamp)
    for _ in range(60):
        stamp += 66_666_667
        missing += gaps.add(stamp)
    # The wider spacing repeats: a new rate, not loss.
    assert missing == 0, missing
