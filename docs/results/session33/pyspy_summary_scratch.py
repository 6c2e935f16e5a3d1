import sys, collections
for path in sys.argv[1:]:
    threads = collections.Counter(); leaf = collections.defaultdict(collections.Counter); mid = collections.defaultdict(collections.Counter)
    for line in open(path):
        stack, _, n = line.rstrip().rpartition(" ")
        n = int(n); frames = stack.split(";")
        th = frames[0]; threads[th] += n
        leaf[th][frames[-1][:110]] += n
        # first frame inside fourds_ros from the top
        ours = [f for f in frames if "fourds_ros" in f]
        mid[th][(ours[-1] if ours else frames[-1])[:110]] += n
    print("=====", path)
    for th, tot in threads.most_common(4):
        print(f"--- {th} samples {tot}")
        for f, c in leaf[th].most_common(8): print(f"  {100*c/tot:5.1f}% leaf {f}")
        for f, c in mid[th].most_common(6): print(f"  {100*c/tot:5.1f}% ours {f}")
