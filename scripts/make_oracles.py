#!/usr/bin/env python3
"""Builds the oracle tables under tests/data/ from implementations that are not ours.

- ml_dtypes (float8_e4m3fn, float8_e5m2, float6_e3m2fn, float6_e2m3fn, float4_e2m1fn):
  every code -> value, and float32 inputs (random, exact ties, out of range, subnormals,
  Inf/NaN) -> code with round-to-nearest-even and ml_dtypes' overflow behaviour.
- microsoft/microxcaling `_quantize_mx` (run from a checkout, PYTHONPATH=<microxcaling>):
  fake-quantized outputs for fp8_e4m3, fp8_e5m2, fp6_e3m2, fp6_e2m3, fp4, int8, int4, int2 with
  rounding `nearest` and `even`, block 32 along the last axis, rows of 70 (a partial block).
- NVFP4 two-level scaling as torchao's `_nvfp4_quantize` computes it (torch float8_e4m3fn
  casts for the block scales, ml_dtypes float4_e2m1fn for the elements).

Usage: python scripts/make_oracles.py /path/to/microxcaling
Needs numpy, ml_dtypes and torch (CPU). Output: small little-endian binary files, format:
  magic b"QSOR", u32 n_arrays, then per array: u32 name_len, name, u8 kind (0=f32, 1=u8),
  u32 count, data.
"""
import struct
import sys
from pathlib import Path

import ml_dtypes
import numpy as np

OUT = Path(__file__).resolve().parent.parent / "tests" / "data"
RNG = np.random.default_rng(20261123)


def write(name, arrays):
    buf = bytearray(b"QSOR")
    buf += struct.pack("<I", len(arrays))
    for key, arr in arrays.items():
        kb = key.encode()
        buf += struct.pack("<I", len(kb)) + kb
        if arr.dtype == np.float32:
            buf += struct.pack("<BI", 0, arr.size) + arr.astype("<f4").tobytes()
        elif arr.dtype == np.uint8:
            buf += struct.pack("<BI", 1, arr.size) + arr.tobytes()
        else:
            raise TypeError(arr.dtype)
    (OUT / name).write_bytes(bytes(buf))
    print(f"wrote {name}: {len(buf)} bytes")


def element_inputs(dt):
    codes = np.arange(256 if np.dtype(dt).itemsize == 1 else 256, dtype=np.uint8)
    bits = {ml_dtypes.float8_e4m3fn: 8, ml_dtypes.float8_e5m2: 8, ml_dtypes.float6_e3m2fn: 6,
            ml_dtypes.float6_e2m3fn: 6, ml_dtypes.float4_e2m1fn: 4}[dt]
    codes = codes[: 1 << bits]
    values = codes.view(dt).astype(np.float32)
    finite = np.sort(np.unique(np.abs(values[np.isfinite(values)])))
    # Exact midpoints (ties) and points just around them, on both signs.
    mids = ((finite[:-1].astype(np.float64) + finite[1:]) / 2).astype(np.float32)
    around = np.concatenate([np.nextafter(mids, np.float32(np.inf)), np.nextafter(mids, np.float32(0))])
    top = finite[-1]
    big = np.array([top * 1.0625, top * 1.5, top * 2, top * 1e3, 3e38], dtype=np.float32)
    tiny = (finite[1] * RNG.uniform(0, 1.5, 64)).astype(np.float32)
    rand = (RNG.standard_normal(1500) * top / 3).astype(np.float32)
    logu = (np.exp2(RNG.uniform(-30, np.log2(top) + 2, 1000)) * RNG.choice([-1, 1], 1000)).astype(np.float32)
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45], dtype=np.float32)
    pos = np.concatenate([mids, around, big, tiny, finite])
    x = np.concatenate([pos, -pos, rand, logu, special]).astype(np.float32)
    return codes, values, x, bits


def make_ml_dtypes():
    for name, dt in [("e4m3", ml_dtypes.float8_e4m3fn), ("e5m2", ml_dtypes.float8_e5m2),
                     ("e3m2", ml_dtypes.float6_e3m2fn), ("e2m3", ml_dtypes.float6_e2m3fn),
                     ("e2m1", ml_dtypes.float4_e2m1fn)]:
        codes, values, x, bits = element_inputs(dt)
        y = x.astype(dt).view(np.uint8) & np.uint8((1 << bits) - 1)
        write(f"mldtypes_{name}.bin", {"codes": codes, "values": values, "x": x, "y": y})


def mx_inputs():
    rows = []
    cols = 70  # two full blocks of 32 and a partial block of 6
    for _ in range(24):
        rows.append(RNG.standard_normal(cols) * 10 ** RNG.uniform(-3, 1))
    for _ in range(8):
        rows.append(RNG.standard_t(3, cols) * 10 ** RNG.uniform(-2, 2))
    rows.append(np.zeros(cols))
    r = RNG.standard_normal(cols)
    r[32:64] = 0
    rows.append(r)
    rows.append(RNG.standard_normal(cols) * 1e-39)   # subnormal float32 block maxima
    rows.append(RNG.standard_normal(cols) * 1e-41)
    rows.append(RNG.standard_normal(cols) * 1e30)    # huge values
    rows.append(np.full(cols, 448.0))
    # Values sitting exactly on element-grid midpoints after scaling (ties).
    t = np.tile(np.array([4.0, 0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, -0.25, -2.5, 0.125, 0.375]), 6)[:cols]
    rows.append(t)
    rows.append(t * 3)
    return np.array(rows, dtype=np.float32)


def make_microxcaling(mx_path):
    sys.path.insert(0, mx_path)
    import torch
    from mx.mx_ops import _quantize_mx

    x = mx_inputs()
    arrays = {"x": x.reshape(-1), "shape": np.array([x.shape[0], x.shape[1]], dtype=np.float32)}
    for fmt in ["fp8_e4m3", "fp8_e5m2", "fp6_e3m2", "fp6_e2m3", "fp4", "int8", "int4", "int2"]:
        for rnd in ["nearest", "even"]:
            y = _quantize_mx(torch.from_numpy(x.copy()), 8, fmt, shared_exp_method="max", axes=[-1],
                             block_size=32, round=rnd, flush_fp32_subnorms=False, custom_cuda=False)
            arrays[f"{fmt}/{rnd}"] = y.numpy().astype(np.float32).reshape(-1)
    write("microxcaling_mx.bin", arrays)


def make_nvfp4():
    import torch

    x = mx_inputs()[:, :64]  # torchao needs K % 16 == 0
    t = torch.from_numpy(x.copy()).reshape(x.shape[0], -1, 16)
    amax_t = torch.from_numpy(np.array(np.abs(x[np.isfinite(x)]).max(), dtype=np.float32))
    per_tensor = amax_t.to(torch.float32) / (448.0 * 6.0)
    block_scale = torch.amax(torch.abs(t), dim=-1) / 6.0
    scaled = block_scale.to(torch.float32) / per_tensor
    scaled = torch.clamp(scaled, min=torch.finfo(torch.float8_e4m3fn).tiny, max=448.0)
    s8 = scaled.to(torch.float8_e4m3fn)
    total = per_tensor * s8.to(torch.float32)
    data = torch.clamp(t / total.unsqueeze(-1), -6.0, 6.0)
    codes = data.numpy().astype(ml_dtypes.float4_e2m1fn)
    deq = codes.astype(np.float32) * total.unsqueeze(-1).numpy()
    write("torchao_nvfp4.bin", {
        "x": x.reshape(-1),
        "shape": np.array(x.shape, dtype=np.float32),
        "global": np.array([per_tensor.item()], dtype=np.float32),
        "scales": s8.view(torch.uint8).numpy().reshape(-1),
        "codes": codes.view(np.uint8).reshape(-1) & np.uint8(15),
        "deq": deq.astype(np.float32).reshape(-1),
    })


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    make_ml_dtypes()
    make_nvfp4()
    if len(sys.argv) > 1:
        make_microxcaling(sys.argv[1])
    else:
        print("no microxcaling path given: skipped microxcaling_mx.bin")
