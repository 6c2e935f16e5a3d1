# Scratch (session 70): start the node, SIGINT once configured, then SIGINT every ARGV[1] s until it exits; prints its return code.
import os, signal, subprocess, sys, time
env = dict(os.environ, ROS_DOMAIN_ID="181", ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
gap = float(sys.argv[1])
p = subprocess.Popen([sys.executable, "-m", "fourds_ros.ros.perception_node", "--ros-args", "-p", "backend:=torch",
                      "-p", "num_queries:=16"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
buf = ""
while "configured:" not in buf:
    buf += p.stdout.readline()
time.sleep(2.0)
p.send_signal(signal.SIGINT)
t0 = time.monotonic()
n = 1
while p.poll() is None:
    time.sleep(gap)
    try:
        p.send_signal(signal.SIGINT); n += 1
    except ProcessLookupError:
        break
out = p.stdout.read()
print("rc", p.returncode, f"{time.monotonic() - t0:.2f}s", n, "signals")
print(out[-3000:])
