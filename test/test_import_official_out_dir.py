"""import-official names an output directory it cannot write instead of a traceback."""

from __future__ import annotations

import numpy as np

from fourds_ros.cli import main as cli

from .test_official_encoder_sizes import _official_arrays


def test_an_unwritable_out_dir_is_a_clear_error(tmp_path, capsys):
    npz = tmp_path / "micro.npz"
    np.savez(npz, **{f"params/{k}": v for k, v in _official_arrays(32, 2, 64, 2, grid=(2, 2, 2)).items()})
    assert cli(["import-official", str(npz), str(tmp_path / "ok")]) == 0  # the file itself imports
    (tmp_path / "a_file").write_text("not a folder")
    assert cli(["import-official", str(npz), str(tmp_path / "a_file" / "model")]) == 1
    assert "import-official:" in capsys.readouterr().err
