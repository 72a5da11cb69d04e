#!/usr/bin/env python3
"""Hostile-input campaign against the quantscape binary (RELIABILITY.md, issue 23).

Mutates every kind of input the CLI reads — config.json, tokenizer.json, safetensors, GGUF,
sweep specs, results stores, fit CSVs, CLI arguments — and runs each case in a fresh folder
under an address-space cap (default 4 GiB) and a timeout (default 20 s). A case fails when:

  - the process panics ("panicked" on stderr) or dies of a signal (abort, OOM kill);
  - it runs past the timeout (every setting in the campaign is within the caps, so bounded);
  - it exits with a code other than 0 or 2;
  - it exits 2 and leaves a file or folder behind in its working folder;
  - it exits 0 but its output does not read back (quantize/convert → `info`, sweep/merge →
    `export`).

Usage: scripts/hostile_campaign.py [--bin target/debug/quantscape] [--cases 5000]
       [--seed 0] [--jobs 2] [--report campaign.json]
Prints a summary per category and every failure (command, exit, last stderr line).
"""
import argparse
import json
import os
import random
import re
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "fuzz"))
from seed import small_store, tiny_gguf  # noqa: E402  (the fuzz seeder's forgers)

TINY = ROOT / "tests/data/tiny"
SAMPLE = TINY / "sample.txt"
EXTREME_INTS = [0, 1, -1, 2, 3, 7, 2**15, 2**16 + 1, 2**31 - 1, 2**31, 2**32, 2**32 - 1, 2**40,
                2**53, 2**62, 2**63 - 1, 2**64 - 1, 10**30]
STORE = Path()  # the small valid results store, set in main()
EXTREME_OTHER = [None, "abc", "", [], {}, True, -0.5, 1e308, -1e308, 1e-320, 0.5, 3.7]


def flip(b: bytes, rng: random.Random, n=None) -> bytes:
    b = bytearray(b)
    if not b:
        return bytes(b)
    for _ in range(n or rng.randint(1, 8)):
        i = rng.randrange(len(b))
        b[i] = rng.randrange(256)
    return bytes(b)


def cut(b: bytes, rng: random.Random) -> bytes:
    return b[: rng.randrange(len(b) + 1)]


def mutate_json(doc, rng: random.Random):
    """One structural edit somewhere in a JSON document (a value, a deleted key, a type swap)."""
    paths = []

    def walk(x, path):
        if isinstance(x, dict):
            for k, v in x.items():
                paths.append(path + [k])
                walk(v, path + [k])
        elif isinstance(x, list) and x:
            for i in rng.sample(range(len(x)), min(3, len(x))):
                paths.append(path + [i])
                walk(x[i], path + [i])

    walk(doc, [])
    if not paths:
        return doc
    p = rng.choice(paths)
    parent = doc
    for k in p[:-1]:
        parent = parent[k]
    k = p[-1]
    r = rng.random()
    if r < 0.2 and isinstance(parent, dict):
        del parent[k]
    elif r < 0.7:
        parent[k] = rng.choice(EXTREME_INTS)
    else:
        parent[k] = rng.choice(EXTREME_OTHER)
    return doc


def copy_model(name, dst: Path):
    dst.mkdir(parents=True)
    for f in (TINY / name).iterdir():
        shutil.copyfile(f, dst / f.name)
    return dst


SPEC = """SweepSpec(
    name: "campaign",
    models: ["{model}"],
    granularities: [{gran}],
    low_formats: ["{low}"],
    high_formats: ["mxint8"],
    block_sizes: ["{qb}"],
    qr: [{qr}],
    trials: {trials},
    qr_tolerance: {tol},
    seed: {seed},
    eval: (data: "{data}", windows: {windows}, ctx: {ctx}, resamples: {resamples}, top_k: {top_k}),
)"""


def pick(rng, valid, hostile, p_valid=0.8):
    """A valid value most of the time, so that cases get past the first check."""
    return valid if rng.random() < p_valid else rng.choice(hostile)


def spec_text(rng, model):
    vals = dict(model=model, gran=pick(rng, "layer", ["matmul", "block", "layer, matmul", "lyr"]),
                low=pick(rng, "mxint4", ["int4_asym", "mxfp4", "nvfp4", "bogus", "mxfp4,block=0"]),
                qb=pick(rng, "32", ["16", "channel", "0", "-3", "tensor", "99999999999"]),
                qr=pick(rng, "0.0, 1.0", ["0.5", "0.5, 0.5", "1.5", "-0.1", "", "NaN", "0.0, 0.3"]),
                trials=pick(rng, 2, [1, 0, 10**6, 2**64 - 1, -1]),
                tol=pick(rng, 0.1, [0.5, 0.9, -1, "NaN"]),
                seed=pick(rng, 0, [2**64 - 1, -1]),
                data=pick(rng, str(SAMPLE), ["eval_austen", "missing.txt", "empty.txt", "binary.txt"]),
                windows=pick(rng, 2, [1, 0, 2**32, 10**9]),
                ctx=pick(rng, 16, [1, 2, 2**20, 2**40]),
                resamples=pick(rng, 10, [0, 2**32, 10**12]),
                top_k=pick(rng, 4, [0, 2**32, 10**9]))
    if rng.random() < 0.05:
        vals = dict(model=model, gran=rng.choice(["layer", "matmul", "block", "layer, matmul", "lyr"]),
                low=rng.choice(["mxint4", "int4_asym", "mxfp4", "nvfp4", "bogus", "mxfp4,block=0"]),
                qb=rng.choice(["16", "32", "channel", "0", "-3", "tensor", "99999999999"]),
                qr=rng.choice(["0.0, 1.0", "0.5", "0.5, 0.5", "1.5", "-0.1", "", "NaN", "0.0, 0.3"]),
                trials=rng.choice([1, 2, 0, 10**6, 2**64 - 1, -1]),
                tol=rng.choice([0.1, 0.5, 0.9, -1, "NaN"]),
                seed=rng.choice([0, 2**64 - 1, -1]),
                data=rng.choice([str(SAMPLE), "eval_austen", "missing.txt", "empty.txt", "binary.txt"]),
                windows=rng.choice([1, 2, 0, 2**32, 10**9]),
                ctx=rng.choice([16, 1, 2, 2**20, 2**40]),
                resamples=rng.choice([10, 0, 2**32, 10**12]),
                top_k=rng.choice([4, 0, 2**32, 10**9]))
    text = SPEC.format(**vals)
    r = rng.random()
    if r < 0.08:
        text = cut(text.encode(), rng).decode(errors="ignore")
    elif r < 0.15:
        text = flip(text.encode(), rng).decode(errors="ignore")
    return text


class Case:
    def __init__(self, category, cmd, setup, readback=None):
        self.category, self.cmd, self.setup, self.readback = category, cmd, setup, readback


def build_case(i, rng):
    """A random case: (category, command, setup(dir), readback command or None)."""
    kind = rng.choice(["config", "config", "tokenizer", "safetensors", "gguf", "gguf", "spec",
                       "spec", "store", "csv", "args", "args"])
    model = rng.choice(["llama", "gpt2", "gpt_neox", "qwen2"])
    eval_args = ["eval", "--model", "m", "--data", str(SAMPLE), "--windows", "2", "--ctx", "16",
                 "--resamples", "20", "--quiet"]
    if kind == "config":
        def setup(d):
            m = copy_model(model, d / "m")
            doc = json.loads((m / "config.json").read_text())
            for _ in range(rng.randint(1, 3)):
                doc = mutate_json(doc, rng)
            text = json.dumps(doc)
            if rng.random() < 0.1:
                text = cut(text.encode(), rng).decode(errors="ignore")
            (m / "config.json").write_text(text)
        cmd = rng.choice([["info", "--model", "m"], eval_args + ["--format", "mxfp4"],
                          ["quantize", "--model", "m", "--format", "mxint4", "--out", "q", "--csv", "t.csv", "--quiet"]])
        return Case(kind, cmd, setup, ["info", "--model", "q"] if cmd[0] == "quantize" else None)
    if kind == "tokenizer":
        def setup(d):
            m = copy_model(model, d / "m")
            raw = (m / "tokenizer.json").read_bytes()
            r = rng.random()
            if r < 0.4:
                raw = cut(raw, rng)
            elif r < 0.7:
                raw = flip(raw, rng)
            else:
                doc = json.loads(raw)
                for _ in range(rng.randint(1, 3)):
                    doc = mutate_json(doc, rng)
                raw = json.dumps(doc).encode()
            (m / "tokenizer.json").write_bytes(raw)
        return Case(kind, eval_args, setup)
    if kind == "safetensors":
        def setup(d):
            m = copy_model(model, d / "m")
            raw = (m / "model.safetensors").read_bytes()
            n = struct.unpack("<Q", raw[:8])[0]
            r = rng.random()
            if r < 0.3:
                raw = flip(raw[: 8 + n], rng) + raw[8 + n:]
            elif r < 0.5:
                raw = cut(raw, rng)
            elif r < 0.7:
                raw = struct.pack("<Q", rng.choice(EXTREME_INTS[:-1]) % 2**64) + raw[8:]
            else:
                head = json.loads(raw[8: 8 + n])
                head = mutate_json(head, rng)
                h = json.dumps(head).encode()
                raw = struct.pack("<Q", len(h)) + h + raw[8 + n:]
            (m / "model.safetensors").write_bytes(raw)
        cmd = rng.choice([["info", "--model", "m"],
                          ["quantize", "--model", "m", "--format", "nvfp4", "--out", "q", "--quiet"],
                          eval_args])
        return Case(kind, cmd, setup, ["info", "--model", "q"] if cmd[0] == "quantize" else None)
    if kind == "gguf":
        def setup(d):
            over = {}
            r = rng.random()
            if r < 0.5:
                key = rng.choice(["general.alignment", "llama.context_length", "llama.block_count",
                                  "llama.embedding_length", "llama.attention.head_count",
                                  "llama.attention.head_count_kv", "llama.feed_forward_length",
                                  "llama.vocab_size"])
                x = rng.choice(EXTREME_INTS)
                ty = rng.choice([4, 10, 5, 0])
                fmt = {4: "<I", 10: "<Q", 5: "<i", 0: "<B"}[ty]
                lim = {4: 2**32, 10: 2**64, 5: 2**32, 0: 256}[ty]
                packed = struct.pack(fmt.replace("i", "I") if ty == 5 else fmt, x % lim)
                over[key] = (ty, packed)
            raw = tiny_gguf(over, align=32)
            if 0.5 <= r < 0.75:
                raw = flip(raw, rng)
            elif r >= 0.75:
                raw = cut(raw, rng)
            (d / "m.gguf").write_bytes(raw)
        cmd = rng.choice([["convert", "m.gguf", "--out", "o"], ["info", "--model", "m.gguf"]])
        return Case(kind, cmd, setup, ["info", "--model", "o"] if cmd[0] == "convert" else None)
    if kind == "spec":
        def setup(d):
            copy_model(model, d / "m")
            (d / "empty.txt").write_text("")
            (d / "binary.txt").write_bytes(b"\xff\xfe\x00\x80")
            (d / "spec.ron").write_text(spec_text(rng, d / "m"))
        return Case(kind, ["sweep", "spec.ron", "--out", "out.sqlite", "--quiet"], setup,
                    ["export", "out.sqlite", "--csv", "x.csv"])
    if kind == "store":
        def setup(d):
            src = STORE.read_bytes()
            r = rng.random()
            raw = flip(src, rng, rng.randint(1, 4)) if r < 0.8 else cut(src, rng)
            (d / "s.sqlite").write_bytes(raw)
            (d / "good.sqlite").write_bytes(src)
        cmd = rng.choice([["export", "s.sqlite", "--csv", "x.csv"],
                          ["merge", "good.sqlite", "s.sqlite", "--out", "merged.sqlite"],
                          ["fit", "s.sqlite", "--law", "unified-weak"],
                          ["forget", "s.sqlite", "--model", "*"]])
        rb = ["export", "merged.sqlite", "--csv", "y.csv"] if cmd[0] == "merge" else None
        return Case(kind, cmd, setup, rb)
    if kind == "csv":
        def setup(d):
            rows = ["N,Qr,Qb,dL"]
            for _ in range(rng.randint(0, 30)):
                if rng.random() < 0.9:
                    vals = [rng.choice(["1e6", "2e7", "3e8", "4e9"]), rng.choice(["0.2", "0.5", "1"]),
                            rng.choice(["16", "32", "128"]), f"{rng.uniform(1e-4, 0.3):.5f}"]
                else:
                    vals = [rng.choice(["1e6", "0", "-1", "nan", "inf", "1e400", "x", ""]),
                            rng.choice(["0.2", "1.5", "-1", "nan"]),
                            rng.choice(["16", "0", "-16", "1e30"]),
                            rng.choice(["0.01", "0", "-0.01", "1e-300", "nan"])]
                rows.append(",".join(vals))
            text = "\n".join(rows)
            if rng.random() < 0.2:
                text = flip(text.encode(), rng).decode(errors="ignore")
            (d / "d.csv").write_text(text)
        law = rng.choice(["unified-strong", "unified-weak", "bogus"])
        cmd = rng.choice([["fit", "d.csv", "--law", law, "--bootstrap", str(rng.choice([0, 20, 10**8]))],
                          ["predict", "--law", law, "--values", rng.choice(["0.5,1,0.2,5,0.3", "1,2", "nan,1,1,1,1", ""]),
                           "--N", rng.choice(["1e9", "1e9,1e10", "-1", "nan", "1e400", "1:1e12:1000000000"]),
                           "--Qr", rng.choice(["0.5", "2", "nan"]), "--Qb", rng.choice(["32", "0", "-1"])]])
        return Case(kind, cmd, setup)
    # args: extreme values for every size flag (within or beyond the caps)
    def setup(d):
        copy_model(model, d / "m")
    flag, val = rng.choice([("--top-k", None), ("--resamples", None), ("--windows", None),
                            ("--ctx", None), ("--stride", None), ("--block", None), ("--format", "fmt"),
                            ("--seed", None)])
    if val == "fmt":
        val = rng.choice(["mxfp4", "elem=e9m9", "elem=e1m0,block=1", "int1", "nf4,block=0",
                          "elem=uint8,scale=bf16,zero=fp16,block=channel", "mxfp4,block=-1", "\u00e9"])
    else:
        val = str(rng.choice(EXTREME_INTS + [5000, 100000]))
    cmd = ["eval", "--model", "m", "--data", str(SAMPLE), "--windows", "2", "--ctx", "16",
           "--resamples", "20", "--format", "mxfp4", "--quiet"]
    if flag in cmd:
        k = cmd.index(flag)
        cmd[k + 1] = val
    else:
        cmd += [flag, val]
    if rng.random() < 0.3:
        cmd = ["landscape", "--model", "m", "--data", str(SAMPLE), "--windows", "2", "--ctx", "16",
               "--grid", str(rng.choice([3, 0, 1, 2000, 10**9])), "--out", "s.json", "--quiet"]
    return Case("args", cmd, setup, None)


def run(bin_path, args, cwd, timeout, mem_bytes, env):
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (mem_bytes, mem_bytes))
    try:
        p = subprocess.run([bin_path] + args, cwd=cwd, capture_output=True, timeout=timeout,
                           preexec_fn=limit, env=env)
        return p.returncode, p.stderr.decode(errors="replace")
    except subprocess.TimeoutExpired:
        return "timeout", ""


def one(i, a, base_env):
    rng = random.Random(a.seed * 1_000_003 + i)
    case = build_case(i, rng)
    with tempfile.TemporaryDirectory(prefix="qs-campaign-") as t:
        d = Path(t) / "work"
        d.mkdir()
        env = dict(base_env, QS_CACHE=str(Path(t) / "cache"), HF_HUB_CACHE=str(Path(t) / "hub"))
        case.setup(d)
        before = sorted(p.name for p in d.iterdir())
        code, err = run(a.bin, case.cmd, d, a.timeout, a.mem_gib << 30, env)
        problem = None
        if code == "timeout":
            problem = "timeout"
        elif "panicked" in err:
            problem = "panic"
        elif "stack backtrace" in err or re.search(r"^\s+\d+: ", err, re.M):
            problem = "backtrace in the error message"
        elif code not in (0, 2):
            problem = f"exit {code}"
        elif code == 2:
            after = sorted(p.name for p in d.iterdir())
            cache = Path(t) / "cache" / "gguf"
            partial = [p.name for p in cache.iterdir()] if cache.exists() else []
            if after != before or partial:
                problem = f"leftover {sorted(set(after) - set(before)) + partial}"
        elif code == 0 and case.readback and (d / case.readback[1 if case.readback[0] == "export" else 2]).exists():
            rc, rerr = run(a.bin, case.readback, d, a.timeout, a.mem_gib << 30, env)
            if rc != 0:
                problem = f"exit 0 but the output does not read back: {rerr.strip().splitlines()[-1:]}"
        last = err.strip().splitlines()[-1] if err.strip() else ""
        return case.category, problem, case.cmd, code, last


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=str(ROOT / "target/debug/quantscape"))
    ap.add_argument("--cases", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=20.0)
    ap.add_argument("--mem-gib", type=int, default=4)
    ap.add_argument("--report", default=None)
    a = ap.parse_args()
    base_env = dict(os.environ, RAYON_NUM_THREADS="1")
    # A small, valid results store for the store cases: the first rows of the demo store.
    store = Path(tempfile.mkdtemp(prefix="qs-campaign-store-")) / "small.sqlite"
    small_store(store)
    global STORE
    STORE = store
    stats, failures = {}, []
    with ThreadPoolExecutor(a.jobs) as ex:
        for n, (cat, problem, cmd, code, last) in enumerate(
                ex.map(lambda i: one(i, a, base_env), range(a.cases)), 1):
            s = stats.setdefault(cat, {"cases": 0, "exit0": 0, "exit2": 0, "failures": 0})
            s["cases"] += 1
            if code in (0, 2):
                s[f"exit{code}"] += 1
            s.setdefault("samples", [])
            if len(s["samples"]) < 12:
                s["samples"].append({"cmd": " ".join(cmd), "exit": code, "stderr": last})
            if problem:
                s["failures"] += 1
                failures.append({"category": cat, "problem": problem, "cmd": cmd, "exit": code, "stderr": last})
                print(f"FAIL [{cat}] {problem}: {' '.join(cmd)} -> {code}: {last}", flush=True)
            if n % 250 == 0:
                print(f"... {n}/{a.cases} cases, {len(failures)} failures", file=sys.stderr, flush=True)
    total = sum(s["cases"] for s in stats.values())
    print(f"\n{total} cases, {len(failures)} failures")
    for cat, s in sorted(stats.items()):
        print(f"  {cat:12} {s['cases']:5} cases  exit 0: {s['exit0']:5}  exit 2: {s['exit2']:5}  failures: {s['failures']}")
    if a.report:
        Path(a.report).write_text(json.dumps({"stats": stats, "failures": failures}, indent=1))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
