# Scratch diagnosis: log garbage-collection pauses of the perception node process.
import gc, os, time
try:
    _cmd = open("/proc/self/cmdline", "rb").read()
except OSError:
    _cmd = b""
if b"perception_node" in _cmd:
    _log = open(f"/tmp/s33/gclog_{os.getpid()}.txt", "w", buffering=1)
    _t = [0.0]
    def _cb(phase, info):
        if phase == "start":
            _t[0] = time.perf_counter()
        else:
            ms = (time.perf_counter() - _t[0]) * 1e3
            if info["generation"] == 2 or ms > 10:
                _log.write(f"{time.time():.3f} gen{info['generation']} {ms:.1f} ms collected {info['collected']} stats2 {gc.get_stats()[2]}\n")
    gc.callbacks.append(_cb)
