#!/usr/bin/python3
"""A small stand-in for KernelBench's eval loop, run on problem files that `kdecomp
export-problems` wrote: load the problem's Model, a ModelNew (from --new FILE, else the problem's
own Model: the identity rewrite), build both from get_init_inputs() under the same seed, check
correctness on --trials fresh get_inputs() draws (KernelBench: 5 trials, allclose with atol and
rtol 1e-2), then time ModelNew (warm-ups, then --timing-trials calls; KernelBench: 100, CUDA
events; here a CPU clock). Prints one JSON object; exit 0 when correct, 1 when not, 2 on bad use.

  /usr/bin/python3 tests/problems/kernelbench_eval.py PROBLEM.py [--new NEW.py] [--trials 5]
      [--timing-trials 10] [--seed 42]
"""

import argparse
import importlib.util
import json
import statistics
import sys
import time

import torch


def load_module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def as_tuple(outputs):
    return outputs if isinstance(outputs, (tuple, list)) else (outputs,)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("problem")
    ap.add_argument("--new", help="a file defining ModelNew (default: the problem's Model)")
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--timing-trials", type=int, default=10)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()
    try:
        problem = load_module(args.problem, "problem")
        new_class = load_module(args.new, "candidate").ModelNew if args.new else problem.Model
    except (OSError, SyntaxError, AttributeError, ImportError) as e:
        print(f"kernelbench_eval: error: {e}", file=sys.stderr)
        return 2
    result = {"problem": args.problem, "trials": args.trials}
    with torch.no_grad():
        init = problem.get_init_inputs()
        torch.manual_seed(args.seed)
        model = problem.Model(*init)
        torch.manual_seed(args.seed)
        new = new_class(*init)
        passed = 0
        max_diff = 0.0
        for trial in range(args.trials):
            torch.manual_seed(args.seed + 1 + trial)
            inputs = problem.get_inputs()
            expected, actual = as_tuple(model(*inputs)), as_tuple(new(*inputs))
            ok = len(expected) == len(actual)
            for e, a in zip(expected, actual):
                if not isinstance(a, torch.Tensor) or a.shape != e.shape:
                    ok = False
                    continue
                if e.numel():
                    max_diff = max(max_diff, float((a.double() - e.double()).abs().max()))
                ok = ok and torch.allclose(a, e, atol=1e-2, rtol=1e-2)
            passed += ok
        result.update(correctness=passed == args.trials, trials_passed=f"{passed}/{args.trials}", max_difference=max_diff)
        if result["correctness"] and args.timing_trials > 0:
            torch.manual_seed(args.seed)
            inputs = problem.get_inputs()
            for _ in range(3):
                new(*inputs)
            ms = []
            for _ in range(args.timing_trials):
                start = time.perf_counter()
                new(*inputs)
                ms.append((time.perf_counter() - start) * 1e3)
            result["runtime_stats"] = {"mean": statistics.fmean(ms), "std": statistics.pstdev(ms), "min": min(ms),
                                       "max": max(ms), "num_trials": len(ms), "device": "cpu"}
    print(json.dumps(result))
    return 0 if result["correctness"] else 1


if __name__ == "__main__":
    sys.exit(main())
