"""Same-run baseline for `cargo bench --bench laws`: the strong unified law fitted with
scipy.optimize.least_squares (Huber loss, f_scale = delta, log residuals, analytic Jacobian,
bounds, method 'trf') on the CSV the benchmark wrote.

usage: bench_laws_scipy.py DATA.csv DELTA WARM_START(5 comma-separated: C,A,gamma_N,d,gamma_c)
prints one JSON line: {"warm_ms": .., "cold_ms": .., "starts": .., "cost": ..}
The cold fit uses the same start grid as quantscape (A x gamma_N x d x gamma_c); scipy has no
variable projection, so ln C is a fifth free parameter starting at 0.
"""
import csv
import itertools
import json
import sys
import time

import numpy as np
from scipy.optimize import least_squares

path, delta, warm = sys.argv[1], float(sys.argv[2]), [float(v) for v in sys.argv[3].split(",")]
rows = list(csv.DictReader(open(path)))
ln_n = np.log(np.array([float(r["N"]) for r in rows]))
qr = np.array([float(r["Qr"]) for r in rows])
qb = np.array([float(r["Qb"]) for r in rows])
ln_y = np.log(np.array([float(r["dL"]) for r in rows]))


def resid(p):
    lc, a, gn, d, gc = p
    return lc + a * qr - gn * ln_n + gc * np.log(qb + d) - ln_y


def jac(p):
    lc, a, gn, d, gc = p
    return np.stack([np.ones_like(qr), qr, -ln_n, gc / (qb + d), np.log(qb + d)], axis=1)


lo = [-700, -50, -3, -0.99, 1e-6]
hi = [700, 50, 5, 1e5, 1 - 1e-6]


def solve(x0):
    x0 = np.clip(x0, lo, hi)
    return least_squares(resid, x0, jac=jac, bounds=(lo, hi), loss="huber", f_scale=delta, method="trf")


x_warm = [np.log(warm[0])] + warm[1:]
times = []
for _ in range(20):
    t = time.perf_counter()
    r = solve(x_warm)
    times.append(time.perf_counter() - t)
warm_ms = 1e3 * float(np.median(times))

grid = list(itertools.product([0.5, 2.0, 5.0], [0.1, 0.3, 0.7], [1.0, 30.0], [0.3, 0.7]))
cold = []
for _ in range(3):
    t = time.perf_counter()
    best = min((solve([0.0, *g]) for g in grid), key=lambda s: s.cost)
    cold.append(time.perf_counter() - t)
print(json.dumps({"warm_ms": warm_ms, "cold_ms": 1e3 * float(np.median(cold)), "starts": len(grid), "cost": float(best.cost)}))
