"""CameraInfoSync: images pair with the camera_info of their own stamp, whatever order the two
topics deliver them in, and never wait forever or out of order."""

import numpy as np

from fourds_ros.perception.camera_info_sync import CameraInfoSync


def K(f: float) -> np.ndarray:
    return np.array([[f, 0, 16], [0, f, 12], [0, 0, 1]])


def released(pairs):
    return [(p.item, p.k[0, 0] if p.k is not None else None, p.exact) for p in pairs]


def test_images_ahead_of_their_camera_info_wait_for_it_in_order():
    sync = CameraInfoSync(wait_s=0.2)
    assert released(sync.push_info(0, K(100), 0.0)) == []
    # Three images overtake their camera_info (a backlogged subscriber): all wait, in order.
    assert sync.push_image(1, "a", 0.01) == [] and sync.push_image(2, "b", 0.02) == []
    assert sync.push_image(3, "c", 0.03) == []
    assert released(sync.push_info(1, K(101), 0.04)) == [("a", 101, True)]
    assert released(sync.push_info(2, K(102), 0.05)) == [("b", 102, True)]
    assert released(sync.push_info(3, K(103), 0.06)) == [("c", 103, True)]
    # Behind its camera_info already: released at once.
    sync.push_info(4, K(104), 0.07)
    assert released(sync.push_image(4, "d", 0.08)) == [("d", 104, True)]


def test_a_lost_camera_info_releases_at_the_next_one_or_after_the_wait():
    sync = CameraInfoSync(wait_s=0.2)
    sync.push_info(0, K(100), 0.0)
    assert sync.push_image(1, "a", 0.0) == []
    # Stamp 1's camera_info never comes; stamp 2's does: "a" takes the latest, not exact.
    assert released(sync.push_info(2, K(102), 0.05)) == [("a", 102, False)]
    assert sync.push_image(3, "b", 1.0) == []
    assert sync.release(1.1) == []
    assert released(sync.release(1.25)) == [("b", 102, False)]  # waited wait_s
    # A later image cannot overtake one that still waits: camera_info 6 releases both, in order.
    assert sync.push_image(5, "c", 2.0) == [] and sync.push_image(6, "d", 2.01) == []
    assert released(sync.push_info(6, K(106), 2.02)) == [("c", 106, False), ("d", 106, True)]


def test_stamp_zero_is_a_stamp():
    """Bags converted from stampless datasets start at t = 0."""
    sync = CameraInfoSync(wait_s=10.0)
    sync.push_info(0, K(100), 0.0)
    assert sync.push_image(-5, "old", 0.0) != []  # older than the newest camera_info: no wait
    assert sync.push_image(1, "a", 0.0) == []
    assert released(sync.push_info(1, K(101), 0.0)) == [("a", 101, True)]


def test_no_camera_info_stream_never_delays_images():
    sync = CameraInfoSync(wait_s=0.2)  # no startup wait
    assert released(sync.push_image(1, "a", 0.0)) == [("a", None, False)]
    off = CameraInfoSync(wait_s=0.0)
    off.push_info(0, K(100), 0.0)
    assert released(off.push_image(1, "b", 0.0)) == [("b", 100, False)]


def test_waiting_is_bounded_and_clear_releases_everything():
    sync = CameraInfoSync(wait_s=10.0, max_waiting=3)
    sync.push_info(0, K(100), 0.0)
    out = []
    for i in range(1, 6):
        out += sync.push_image(i, i, 0.0)
    assert [p.item for p in out] == [1, 2]  # beyond 3 waiting, the oldest go on
    assert [p.item for p in sync.clear()] == [3, 4, 5]
    assert sync.clear() == []


def test_at_startup_an_image_ahead_of_the_first_camera_info_waits_for_it():
    """The first image overtakes the first camera_info (the subscriptions deliver independently):
    with the node's default wait_s 0 it still takes its own K, not the default intrinsics."""
    sync = CameraInfoSync(wait_s=0.0, startup_wait_s=0.5)
    assert sync.push_image(1, "a", 0.0) == [] and sync.push_image(2, "b", 0.03) == []
    assert sync.release(0.2) == []  # still within the startup wait
    assert released(sync.push_info(1, K(101), 0.25)) == [("a", 101, True), ("b", 101, False)]
    # From then on wait_s 0 rules: nothing waits.
    assert released(sync.push_image(3, "c", 0.3)) == [("c", 101, False)]


def test_a_camera_without_camera_info_is_delayed_once_by_the_startup_wait():
    sync = CameraInfoSync(wait_s=0.2, startup_wait_s=0.5)
    assert sync.push_image(1, "a", 0.0) == [] and sync.push_image(2, "b", 0.3) == []
    assert released(sync.release(0.5)) == [("a", None, False), ("b", None, False)]
    # The startup wait is spent: later images go on at once with the default intrinsics.
    assert released(sync.push_image(3, "c", 0.6)) == [("c", None, False)]
    assert released(sync.push_image(4, "d", 5.0)) == [("d", None, False)]
    # An image arriving after the wait releases the ones still waiting first, in order.
    late = CameraInfoSync(startup_wait_s=0.5)
    assert late.push_image(1, "a", 0.0) == []
    assert [p.item for p in late.push_image(2, "b", 0.7)] == ["a", "b"]
    # A camera_info that starts later: from then on images pair by stamp, under wait_s.
    assert released(sync.push_info(6, K(106), 6.0)) == []
    assert released(sync.push_image(6, "e", 6.1)) == [("e", 106, True)]
    assert sync.push_image(7, "f", 6.1) == []
    assert released(sync.push_info(7, K(107), 6.12)) == [("f", 107, True)]


def test_after_time_goes_back_images_wait_for_their_own_camera_info_again():
    """After a bag loop or a camera's clock restarting, the newest camera_info stamp stayed the old
    timeline's: every later image counted as 'its camera_info is late' and was paired at once with
    the previous camera's K (the first one after a restart with another K read the old one), and
    wait_s never applied again."""
    s = 1_000_000_000
    sync = CameraInfoSync(wait_s=0.2)
    for i in range(3):
        sync.push_info(100 * s + i, K(500), float(i))
        assert released(sync.push_image(100 * s + i, f"old{i}", float(i))) == [(f"old{i}", 500, True)]
    assert sync.push_image(5 * s, "new0", 3.0) == []  # its own camera_info is not here yet: it waits
    assert released(sync.push_info(5 * s, K(300), 3.01)) == [("new0", 300, True)]
    assert sync.push_image(5 * s + 1, "new1", 3.02) == []
    assert released(sync.push_info(5 * s + 1, K(301), 3.03)) == [("new1", 301, True)]
    # A camera_info first, from the new timeline: the next images still pair by stamp.
    sync = CameraInfoSync(wait_s=0.2)
    sync.push_info(100 * s, K(500), 0.0)
    sync.push_info(5 * s, K(300), 1.0)
    assert sync.push_image(5 * s + 1, "a", 1.01) == []
    assert released(sync.push_info(5 * s + 1, K(301), 1.02)) == [("a", 301, True)]


def test_camera_info_is_the_image_topics_sibling_as_image_transport_names_it():
    """getCameraInfoTopic's rule: the node and `bag import` pair a camera's image with its sibling camera_info."""
    from fourds_ros.perception.camera_info_sync import looks_rectified, sibling_camera_info_topic

    assert sibling_camera_info_topic("/camera/color/image_raw") == "/camera/color/camera_info"
    assert sibling_camera_info_topic("/camera/color/image_raw/compressed") == "/camera/color/camera_info"
    assert sibling_camera_info_topic("/fourds/image/") == "/fourds/camera_info"
    assert sibling_camera_info_topic("/image") == "/camera_info"
    assert sibling_camera_info_topic("cam/image_raw") == "cam/camera_info"
    assert sibling_camera_info_topic("image") == "camera_info"
    assert looks_rectified("/cam/image_rect") and looks_rectified("/cam/image_rect_color/")
    assert looks_rectified("/cam/image_rect/compressed")
    assert not looks_rectified("/cam/image_raw") and not looks_rectified("/image_rect/image_raw")
