import os, sys
v = os.environ.get("S43_SWITCH")
if v:
    sys.setswitchinterval(float(v))
    with open("/tmp/s43/sci/applied.log", "a") as f:
        f.write(f"{os.getpid()} {sys.argv[:2]} {v}\n")
