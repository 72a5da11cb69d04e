// Forward-pass ops of the resident GPU transformer (src/gpu/forward.rs), fp32, mirroring the
// candle CPU path op for op (src/model/layers.rs): embedding gather (+ learned positions),
// RMSNorm / LayerNorm, head split (separate, fused-blocks and fused-per-head QKV), rotary
// embedding on the first `rot` dims (non-interleaved halves, as candle's `rope`), causal softmax
// attention with grouped KV heads, SiLU / GELU (tanh, erf) / ReLU with optional gating, and
// residual adds. Linear layers use matmul.wgsl's GEMM (with bias).
//
// Shapes: activations [rows = B·T, cols]; heads [B, H, T, hd]; attention output [B·T, H·hd].
// Workgroups: 256 threads, one thread per output element (embed, heads, rope, act, add), one
// workgroup per row (norms) or per query (attention); 2-D grids, flat indices bounds-checked.

// Mirrors `gpu::forward::FwUniform` (16 words).
struct Fw {
    rows: u32,
    cols: u32,
    t: u32,
    n_heads: u32,
    n_kv: u32,
    hd: u32,
    rot: u32,
    mode: u32,       // embed: has positions; norm: 1 layer norm; act: kind | gated << 8; add: 3 inputs
    eps: f32,
    scale: f32,
    base: u32,       // to_heads: first source column of part 0 of head 0
    stride_h: u32,   // to_heads: source columns between heads
    src_cols: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> fw: Fw;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> c: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read> ids: array<u32>;

const WG: u32 = 256u;

fn flat_thread(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wid.y * nwg.x + wid.x) * WG + lid.x;
}

fn flat_group(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.y * nwg.x + wid.x;
}

// out[r, :] = E[ids[r], :] (+ P[r mod T, :]).  a = E, b = P.
@compute @workgroup_size(256)
fn embed(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_thread(wid, nwg, lid);
    if (i >= fw.rows * fw.cols) {
        return;
    }
    let r = i / fw.cols;
    let col = i - r * fw.cols;
    var v = a[ids[r] * fw.cols + col];
    if (fw.mode == 1u) {
        v = v + b[(r % fw.t) * fw.cols + col];
    }
    out[i] = v;
}

var<workgroup> red: array<f32, 256>;

fn reduce_sum(lid: u32, v: f32) -> f32 {
    red[lid] = v;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s = s >> 1u) {
        if (lid < s) {
            red[lid] = red[lid] + red[lid + s];
        }
        workgroupBarrier();
    }
    let total = red[0];
    workgroupBarrier();
    return total;
}

// RMSNorm (mode 0): x · rsqrt(mean(x²) + eps) · w; LayerNorm (mode 1): (x − μ) · rsqrt(σ² + eps)
// · w + bias.  a = x, b = w, c = bias. One workgroup per row.
@compute @workgroup_size(256)
fn norm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = flat_group(wid, nwg);
    if (r >= fw.rows) {
        return;
    }
    let base = r * fw.cols;
    let n = f32(fw.cols);
    var mean = 0.0;
    if (fw.mode == 1u) {
        var s = 0.0;
        for (var j = lid.x; j < fw.cols; j = j + WG) {
            s = s + a[base + j];
        }
        mean = reduce_sum(lid.x, s) / n;
    }
    var sq = 0.0;
    for (var j = lid.x; j < fw.cols; j = j + WG) {
        let d = a[base + j] - mean;
        sq = sq + d * d;
    }
    let inv = 1.0 / sqrt(reduce_sum(lid.x, sq) / n + fw.eps);
    for (var j = lid.x; j < fw.cols; j = j + WG) {
        var y = (a[base + j] - mean) * inv * b[j];
        if (fw.mode == 1u) {
            y = y + c[j];
        }
        out[base + j] = y;
    }
}

// Heads [B, n_heads, T, hd] from a linear output [B·T, src_cols]: head h, element j is source
// column base + h·stride_h + j.  a = source.
@compute @workgroup_size(256)
fn to_heads(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_thread(wid, nwg, lid);
    let per_b = fw.n_heads * fw.t * fw.hd;
    if (i >= fw.rows / fw.t * per_b) {
        return;
    }
    let bi = i / per_b;
    let rem = i - bi * per_b;
    let h = rem / (fw.t * fw.hd);
    let rem2 = rem - h * fw.t * fw.hd;
    let tt = rem2 / fw.hd;
    let j = rem2 - tt * fw.hd;
    out[i] = a[(bi * fw.t + tt) * fw.src_cols + fw.base + h * fw.stride_h + j];
}

// Rotary embedding in place on heads `out` [rows = B·H·T, hd], first `rot` dims: with
// half = rot / 2, (x1, x2) = (x[j], x[j + half]) → (x1·cos − x2·sin, x2·cos + x1·sin) at
// position r mod T.  b = cos, c = sin, both [max_positions, half].
@compute @workgroup_size(256)
fn rope(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    let half = fw.rot / 2u;
    let i = flat_thread(wid, nwg, lid);
    if (i >= fw.rows * half) {
        return;
    }
    let r = i / half;
    let j = i - r * half;
    let pos = r % fw.t;
    let co = b[pos * half + j];
    let si = c[pos * half + j];
    let x1 = out[r * fw.hd + j];
    let x2 = out[r * fw.hd + j + half];
    out[r * fw.hd + j] = x1 * co - x2 * si;
    out[r * fw.hd + j + half] = x2 * co + x1 * si;
}

const MAX_T: u32 = 2048u;
var<workgroup> probs: array<f32, 2048>;

// Causal attention for one query (b, h, tq): softmax(q·kᵀ · scale) · v over keys 0..=tq, the
// KV head shared by n_heads / n_kv query heads.  a = q [B,H,T,hd], b = k, c = v [B,KV,T,hd];
// out [B·T, H·hd]. One workgroup (256 threads) per query; T <= MAX_T.
@compute @workgroup_size(256)
fn attention(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_id) lid: vec3<u32>) {
    let g = flat_group(wid, nwg);
    let n_q = fw.rows * fw.n_heads;
    if (g >= n_q) {
        return;
    }
    let t = fw.t;
    let bi = g / (fw.n_heads * t);
    let rem = g - bi * fw.n_heads * t;
    let h = rem / t;
    let tq = rem - h * t;
    let kvh = h / (fw.n_heads / fw.n_kv);
    let qoff = ((bi * fw.n_heads + h) * t + tq) * fw.hd;
    let kbase = (bi * fw.n_kv + kvh) * t * fw.hd;
    var local_max = -3.402823e38;
    for (var s = lid.x; s <= tq; s = s + WG) {
        var dot = 0.0;
        for (var j = 0u; j < fw.hd; j = j + 1u) {
            dot = dot + a[qoff + j] * b[kbase + s * fw.hd + j];
        }
        let sc = dot * fw.scale;
        probs[s] = sc;
        local_max = max(local_max, sc);
    }
    red[lid.x] = local_max;
    workgroupBarrier();
    for (var st = 128u; st > 0u; st = st >> 1u) {
        if (lid.x < st) {
            red[lid.x] = max(red[lid.x], red[lid.x + st]);
        }
        workgroupBarrier();
    }
    let m = red[0];
    workgroupBarrier();
    var local_sum = 0.0;
    for (var s = lid.x; s <= tq; s = s + WG) {
        let e = exp(probs[s] - m);
        probs[s] = e;
        local_sum = local_sum + e;
    }
    let inv = 1.0 / reduce_sum(lid.x, local_sum);
    let orow = (bi * t + tq) * fw.n_heads * fw.hd + h * fw.hd;
    for (var j = lid.x; j < fw.hd; j = j + WG) {
        var acc = 0.0;
        for (var s = 0u; s <= tq; s = s + 1u) {
            acc = acc + probs[s] * inv * c[kbase + s * fw.hd + j];
        }
        out[orow + j] = acc;
    }
}

// erf to ~1.2e-7 relative (Numerical Recipes' erfc Chebyshev fit).
fn erf_approx(x: f32) -> f32 {
    let z = abs(x);
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t * exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418
        + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587
        + t * (-0.82215223 + t * 0.17087277)))))))));
    return select(r - 1.0, 1.0 - r, x >= 0.0);
}

fn activate(x: f32, kind: u32) -> f32 {
    switch kind {
        case 0u: {
            return x / (1.0 + exp(-x));
        }
        case 1u: {
            let u = 0.7978845608 * (x + 0.044715 * x * x * x);
            return 0.5 * x * (1.0 + tanh(u));
        }
        case 2u: {
            return 0.5 * x * (1.0 + erf_approx(x * 0.7071067811865476));
        }
        default: {
            return max(x, 0.0);
        }
    }
}

// out = act(a) (· b when gated).
@compute @workgroup_size(256)
fn act(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_thread(wid, nwg, lid);
    if (i >= fw.rows * fw.cols) {
        return;
    }
    var y = activate(a[i], fw.mode & 255u);
    if ((fw.mode >> 8u) == 1u) {
        y = y * b[i];
    }
    out[i] = y;
}

// out = a + b (+ c when mode is 1): residual adds, ((x + a) + m) for parallel blocks.
@compute @workgroup_size(256)
fn add(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_thread(wid, nwg, lid);
    if (i >= fw.rows * fw.cols) {
        return;
    }
    var y = a[i] + b[i];
    if (fw.mode == 1u) {
        y = y + c[i];
    }
    out[i] = y;
}
