#!/usr/bin/env python3
"""Oracle for quantscape's GPTQ: the reference algorithm (IST-DASLab/gptq, gptq.py
`fasterquant` + quant.py `Quantizer`, asymmetric min/max grid) transcribed to numpy.

Writes tests/data/gptq_oracle.json: W (rows x cols), H (cols x cols, float64) and GPTQ outputs
for three settings. The quantizer is the reference's: 4-bit asymmetric, range forced to contain
0, scale = (max - min) / 15, integer zero = round(-min / scale), q = clamp(round(x/scale) + zero,
0, 15), torch.round = half to even. In quantscape's spelling: `int4_asym,scale=fp32,block=Qb`.

Cases (block = lazy-batch width, group = Qb):
  dynamic:  group 32, block 32, no act-order (block == group, so the reference fits every group
            on fully error-updated weights, as quantscape does)
  static:   group 32, block 128, act-order with static groups
  channel:  per-channel (group -1), block 128, act-order
Run: python3 scripts/gptq_oracle.py  (numpy only).
"""
import json
import os

import numpy as np

ROWS, COLS, N = 16, 72, 256
MAXQ = 15


def find_params(x):
    """Reference Quantizer.find_params(weight=True, perchannel=True, sym=False): per row."""
    xmin = np.minimum(x.min(axis=1), 0).astype(np.float32)
    xmax = np.maximum(x.max(axis=1), 0).astype(np.float32)
    both = (xmin == 0) & (xmax == 0)
    xmin[both], xmax[both] = -1, 1
    scale = ((xmax - xmin) / np.float32(MAXQ)).astype(np.float32)
    zero = np.round(-xmin / scale).astype(np.float32)
    return scale, zero


def quantize(x, scale, zero):
    q = np.clip(np.round(x / scale) + zero, 0, MAXQ).astype(np.float32)
    return (scale * (q - zero)).astype(np.float32)


def fasterquant(W, H, blocksize, percdamp, groupsize, actorder, static_groups):
    W = W.astype(np.float32).copy()
    H = H.copy()
    cols = W.shape[1]
    scale, zero = find_params(W)
    dead = np.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    groups = []
    if static_groups:
        for i in range(0, cols, groupsize):
            groups.append(find_params(W[:, i:i + groupsize]))
    perm = np.arange(cols)
    if actorder:
        perm = np.argsort(-np.diag(H), kind="stable")
        W = W[:, perm]
        H = H[perm][:, perm]
    invperm = np.argsort(perm)
    Q = np.zeros_like(W)
    damp = percdamp * np.mean(np.diag(H))
    H[np.arange(cols), np.arange(cols)] += damp
    L = np.linalg.cholesky(H)
    Hinv = np.linalg.inv(L @ L.T)
    Hinv = np.linalg.cholesky(Hinv).T.astype(np.float32)  # upper
    for i1 in range(0, cols, blocksize):
        i2 = min(i1 + blocksize, cols)
        count = i2 - i1
        W1 = W[:, i1:i2].copy()
        Q1 = np.zeros_like(W1)
        Err1 = np.zeros_like(W1)
        Hinv1 = Hinv[i1:i2, i1:i2]
        for i in range(count):
            w = W1[:, i]
            d = Hinv1[i, i]
            if groupsize != -1:
                if not static_groups:
                    if (i1 + i) % groupsize == 0:
                        scale, zero = find_params(W[:, (i1 + i):(i1 + i + groupsize)])
                else:
                    idx = i1 + i
                    if actorder:
                        idx = perm[idx]
                    scale, zero = groups[idx // groupsize]
            q = quantize(w, scale, zero)
            Q1[:, i] = q
            err1 = ((w - q) / d).astype(np.float32)
            W1[:, i:] -= np.outer(err1, Hinv1[i, i:]).astype(np.float32)
            Err1[:, i] = err1
        Q[:, i1:i2] = Q1
        W[:, i2:] -= (Err1 @ Hinv[i1:i2, i2:]).astype(np.float32)
    if actorder:
        Q = Q[:, invperm]
    return Q


def main():
    rng = np.random.default_rng(20241124)
    W = (rng.standard_normal((ROWS, COLS)) * 0.05).astype(np.float32)
    W[:, 5] *= 8.0  # an outlier input channel
    # Correlated inputs with uneven channel scales, one dead channel.
    mix = rng.standard_normal((COLS, COLS)) * 0.3 + np.eye(COLS)
    X = rng.standard_normal((N, COLS)) @ mix * rng.uniform(0.2, 3.0, COLS)
    X[:, 17] = 0.0
    H = 2.0 * X.T @ X / N
    cases = {
        "dynamic": dict(blocksize=32, groupsize=32, actorder=False, static_groups=False),
        "static": dict(blocksize=128, groupsize=32, actorder=True, static_groups=True),
        "channel": dict(blocksize=128, groupsize=-1, actorder=True, static_groups=False),
    }
    out = {"rows": ROWS, "cols": COLS, "w": W.ravel().tolist(), "h": H.ravel().tolist(),
           "percdamp": 0.01, "cases": {}}
    for name, c in cases.items():
        Q = fasterquant(W, H, percdamp=0.01, **c)
        out["cases"][name] = {**c, "q": Q.ravel().tolist()}
    path = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "gptq_oracle.json")
    with open(path, "w") as f:
        json.dump(out, f)
    print("wrote", os.path.normpath(path))


if __name__ == "__main__":
    main()
