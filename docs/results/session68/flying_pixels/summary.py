import numpy as np, sys
from analyse import sample_gt
from fourds_ros.evaluation.metrics import depth_edge_mask
for name in ("tum", "holo", "kitchen"):
    z = np.load(f"{name}.npz"); P, PK, G, GK = z["pred"], z["predK"], z["gt"], z["gtK"]
    for erode in (0, 4, 8):
        acc = np.zeros(6)
        for i in range(len(P)):
            pred, gt = P[i], G[i]
            g = sample_gt(pred.shape, PK[i], GK[i], gt)
            e = sample_gt(pred.shape, PK[i], GK[i], depth_edge_mask(gt, erode).astype(np.uint8)) > 0
            v = np.isfinite(pred) & (pred > 0) & np.isfinite(g) & (g > 1e-3)
            p = pred * np.median(g[v]) / np.median(pred[v])
            for j, m in enumerate((0.1, 0.2)):
                ph = v & (p < g * (1 - m))
                acc[2 + 2 * j] += (ph & e).sum(); acc[3 + 2 * j] += (ph & ~e).sum()
            acc[0] += (v & e).sum(); acc[1] += (v & ~e).sum()
        ne, no = acc[0], acc[1]
        out = [f"{name:7s} erode {erode}: edge px {ne / (ne + no):.1%}"]
        for j, m in enumerate((10, 20)):
            pe, po = acc[2 + 2 * j], acc[3 + 2 * j]
            re, ro = pe / ne, po / no
            out.append(f"m{m}%: phantom {(pe + po) / (ne + no):.3f}, at edge {re:.3f} vs off {ro:.3f}, "
                       f"edge share {pe / (pe + po):.2f}, edge excess {(re - ro) * ne / (pe + po):.2f}")
        print(" | ".join(out))
