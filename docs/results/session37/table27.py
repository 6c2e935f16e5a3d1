import json, sys
from pathlib import Path
sys.path.insert(0, "/work/main/tools")
from frame_rate_study import row
for root in sys.argv[1:]:
    print("##", root)
    for d in sorted(Path(root).iterdir()):
        f = d / "report.json"
        if f.exists():
            x = row(json.loads(f.read_text()))
            print(f"{d.name:22s} ATE {x['ate']:.4f} (ORB {x['orb_vo_ate']:.4f}, {x['ate']/x['orb_vo_ate']:.2f}x) rot {x['rpe_rot_deg']:.2f} depth {x['depth_abs_rel']:.4f} AJ {x['aj']:.4f} starts {x['ate_starts']}")
