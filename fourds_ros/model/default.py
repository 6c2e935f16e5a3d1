"""Where the shipped default model lives, without rclpy (evaluation and tools need it too).

The node's `model` parameter and `fourds-ros eval` without `--model` both resolve to this.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_MODEL_NAME = "fourds_default"


def default_model_dir() -> str:
    """<share>/models/fourds_default when installed into an ament prefix, else the source tree's
    models/fourds_default; "" when neither holds a config.json."""
    candidates = []
    try:  # ament_index_python is plain Python (no rclpy); absent outside a ROS install
        from ament_index_python.packages import get_package_share_directory

        candidates.append(Path(get_package_share_directory("fourds_ros")) / "models" / DEFAULT_MODEL_NAME)
    except Exception:  # not installed into an ament prefix (PackageNotFoundError) or no ament index
        pass
    candidates.append(Path(__file__).resolve().parents[2] / "models" / DEFAULT_MODEL_NAME)
    return next((str(c) for c in candidates if (c / "config.json").exists()), "")
