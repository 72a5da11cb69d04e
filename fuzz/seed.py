#!/usr/bin/env python3
"""Seed corpora for the cargo-fuzz targets, built from the repository's own files.

fuzz/corpus/<target>/ (ignored by git) receives: the tiny test checkpoints' safetensors and
configs, every bundled config.json, the tokenizers, the bundled sweep specs, the v1 session,
a small results store cut from assets/demo/demo.sqlite (3 rows per table), and a tiny llama GGUF
written here (the same layout tests/hardening.rs forges). Standard library only.
"""
import shutil
import sqlite3
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).resolve().parent / "corpus"


def put(target, src, name=None):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, d / (name or src.name))


def tiny_gguf(meta_over=None, align=32):
    """A tiny llama GGUF (one block, d 8, vocab 8); `meta_over` replaces or adds metadata
    entries {key: (GGUF type, packed value)}; `align` pads the tensor data (the campaign forges
    both)."""
    d, ff, v = 8, 16, 8
    tensors = [("token_embd.weight", [d, v]), ("blk.0.attn_norm.weight", [d])]
    tensors += [(f"blk.0.attn_{k}.weight", [d, d]) for k in ("q", "k", "v", "output")]
    tensors += [("blk.0.ffn_norm.weight", [d]), ("blk.0.ffn_gate.weight", [d, ff]),
                ("blk.0.ffn_up.weight", [d, ff]), ("blk.0.ffn_down.weight", [ff, d]),
                ("output_norm.weight", [d])]

    def s(t):
        return struct.pack("<Q", len(t.encode())) + t.encode()

    meta = {"general.architecture": (8, s("llama")),
            "llama.embedding_length": (4, struct.pack("<I", d)),
            "llama.block_count": (4, struct.pack("<I", 1)),
            "llama.attention.head_count": (4, struct.pack("<I", 2)),
            "llama.feed_forward_length": (4, struct.pack("<I", ff)),
            "llama.context_length": (4, struct.pack("<I", 32)),
            "tokenizer.ggml.model": (8, s("gpt2")),
            "tokenizer.ggml.tokens": (9, struct.pack("<IQ", 8, v) + b"".join(s(c) for c in "abcdefgh")),
            "tokenizer.ggml.merges": (9, struct.pack("<IQ", 8, 0))}
    meta.update(meta_over or {})
    b = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(meta))
    for k, (t, val) in meta.items():
        b += s(k) + struct.pack("<I", t) + val
    off = 0
    for name, dims in tensors:
        b += s(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", x) for x in dims)
        b += struct.pack("<IQ", 0, off)
        n = 1
        for x in dims:
            n *= x
        off += -(-4 * n // 32) * 32
    b += b"\0" * (-len(b) % max(align, 1))
    for _, dims in tensors:
        n = 1
        for x in dims:
            n *= x
        data = struct.pack(f"<{n}f", *[((i * 7) % 13) / 13 - 0.5 for i in range(n)])
        b += data + b"\0" * (-len(data) % 32)
    return b


def small_store(dst):
    src = sqlite3.connect(ROOT / "assets/demo/demo.sqlite")
    out = sqlite3.connect(dst)
    for (sql,) in src.execute("SELECT sql FROM sqlite_master WHERE type='table' AND sql NOT NULL"):
        out.execute(sql)
    for (table,) in src.execute("SELECT name FROM sqlite_master WHERE type='table'"):
        rows = src.execute(f"SELECT * FROM {table} LIMIT 3").fetchall()
        if table == "meta":
            rows = src.execute("SELECT * FROM meta").fetchall()
        for r in rows:
            out.execute(f"INSERT INTO {table} VALUES ({','.join('?' * len(r))})", r)
    version = src.execute("PRAGMA user_version").fetchone()[0]
    out.execute(f"PRAGMA user_version = {version}")
    out.commit()
    out.close()


def main():
    if CORPUS.exists():
        shutil.rmtree(CORPUS)
    tiny = ROOT / "tests/data/tiny"
    for m in sorted(tiny.iterdir()):
        if m.is_dir():
            put("safetensors_header", m / "model.safetensors", f"{m.name}.safetensors")
            put("config_json", m / "config.json", f"{m.name}.json")
            put("tokenizer_json", m / "tokenizer.json", f"{m.name}.json")
    for cfg in sorted((ROOT / "assets/models").glob("*-2M/config.json")):
        put("config_json", cfg, f"{cfg.parent.name}.json")
    put("tokenizer_json", ROOT / "assets/tokenizer/tokenizer.json", "bundled.json")
    for spec in sorted((ROOT / "assets/sweeps").glob("*.ron")):
        put("sweep_spec", spec)
    put("session_ron", ROOT / "tests/data/session_v1.ron")
    (CORPUS / "gguf_metadata").mkdir(parents=True, exist_ok=True)
    (CORPUS / "gguf_metadata" / "tiny.gguf").write_bytes(
        tiny_gguf({"general.alignment": (4, struct.pack("<I", 32))}))
    (CORPUS / "results_store").mkdir(parents=True, exist_ok=True)
    small_store(CORPUS / "results_store" / "small.sqlite")
    for d in sorted(CORPUS.iterdir()):
        print(f"{d.name}: {len(list(d.iterdir()))} seeds", file=sys.stderr)


if __name__ == "__main__":
    main()
