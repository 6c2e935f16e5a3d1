import json, sys, os
print("run | in-process ms | beside ms | node clip p50 | process+publish | engine in node | described % | depth p50/p95 | odom p50/p95 | node cores | adds %")
for n in sys.argv[1:]:
    p=os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{n}.json")
    if not os.path.exists(p): continue
    d=json.load(open(p)); r=d['rows'][0]; s=d['summary']
    print(n, round(s['pipeline']['pipeline_ms_p50']), round(s['pipeline_beside_camera']['pipeline_ms_p50']), r['clip_latency_ms_p50'], r['process_publish_ms'], r['node_inference_ms'], r['described_pct_depth'],
      f"{r['latency_ms_p50']:.0f}/{r['latency_ms_p95']:.0f}", f"{r['odometry_latency_ms_p50']:.0f}/{r['odometry_latency_ms_p95']:.0f}", round(r['node_cpu_cores'],2), round(r['node_adds_pct'],1), sep=" | ")
