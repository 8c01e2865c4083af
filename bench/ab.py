"""Time the same workloads on two engine trees (say main before and after a change), in
alternating rounds, each measurement in its own process: the change's cost or gain, with this
host's minute-to-minute drift spread over both sides.

    python bench/ab.py --old /path/to/old/tree --new . [--rounds 5] [--only seed qa]

Each tree must have its kernels built in place (python setup.py build_ext --inplace). The
workloads are the benches' own engine functions, imported from this folder.
"""
import argparse
import json
import os
import subprocess
import sys

from common import median

HERE = os.path.dirname(os.path.abspath(__file__))
WORKLOADS = {
    "seed": ("seed model epoch (ms)", "import seed_dense; s = seed_dense.time_engine(20)", 1e3),
    "qa": ("QA model epoch (s)", "import lstm; s = lstm.engine_model('qa')", 1.0),
    "shared": ("shared-LSTM epoch (s)", "import lstm; s = lstm.engine_model('shared')", 1.0),
    "three": ("three-output conv epoch (s)", "import conv; s = conv.engine_task('three')", 1.0),
}


def measure(tree, code):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.abspath(tree), HERE]))
    script = f"import json\n{code}\nprint(json.dumps(s))"
    out = subprocess.run([sys.executable, "-c", script], env=env, cwd=HERE, capture_output=True,
                         text=True, timeout=900)
    if out.returncode:
        raise RuntimeError(f"{tree}: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--old", required=True)
    parser.add_argument("--new", required=True)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", nargs="*", choices=sorted(WORKLOADS))
    args = parser.parse_args()
    print(f"| workload | old (median, range) | new (median, range) | new / old (median of rounds) |")
    print("|---|---|---|---|")
    for key in args.only or list(WORKLOADS):
        label, code, scale = WORKLOADS[key]
        old, new, ratios = [], [], []
        for r in range(args.rounds):
            # Alternate which tree goes first, so neither always gets the warmer minute.
            pair = [(old, args.old), (new, args.new)] if r % 2 == 0 else [(new, args.new), (old, args.old)]
            for bucket, tree in pair:
                bucket.append(measure(tree, code) * scale)
            ratios.append(new[-1] / old[-1])
        fmt = "{:.3f}" if scale == 1.0 else "{:.2f}"
        print(f"| {label} | {fmt.format(median(old))} ({fmt.format(min(old))}-{fmt.format(max(old))}) | "
              f"{fmt.format(median(new))} ({fmt.format(min(new))}-{fmt.format(max(new))}) | "
              f"{median(ratios):.3f} |", flush=True)


if __name__ == "__main__":
    main()
