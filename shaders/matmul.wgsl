// Tiled fp32 GEMM, "NT" layout: C[m × n] = A[m × k] · B[n × k]ᵀ, every operand row-major, so
// both operands run along the reduction dimension K exactly as the codecs block them (a Hugging
// Face Linear weight is [out, in] = B). The MX matmul feeds this kernel operands that the codec
// kernels fake-quantized per block along K; accumulation is fp32 in k order within a tile.
//
// Workgroup: 16 × 16 threads, each computing a 4 × 4 micro-tile of a 64 × 64 output tile; K is
// staged through workgroup memory 16 at a time, stored k-major so the inner loop reads
// consecutive words. Out-of-range rows, columns and k are zero-filled, so any m, n, k works.

struct Mm {
    m: u32,
    n: u32,
    k: u32,
    has_bias: u32,
}

@group(0) @binding(0) var<uniform> mm: Mm;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
// Bias [n] added to every row when `has_bias` (linear layers).
@group(0) @binding(4) var<storage, read> bias: array<f32>;

const TILE: u32 = 64u;
const TK: u32 = 16u;

// ta[kk · TILE + r] = A[row0 + r, k0 + kk]; tb likewise for B.
var<workgroup> ta: array<f32, 1024>;
var<workgroup> tb: array<f32, 1024>;

@compute @workgroup_size(16, 16)
fn gemm_nt(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
           @builtin(local_invocation_index) li: u32) {
    let row0 = wid.y * TILE;
    let col0 = wid.x * TILE;
    var acc: array<f32, 16>;
    for (var i = 0u; i < 16u; i = i + 1u) {
        acc[i] = 0.0;
    }
    for (var k0 = 0u; k0 < mm.k; k0 = k0 + TK) {
        for (var t = 0u; t < 4u; t = t + 1u) {
            let idx = li + t * 256u;
            let r = idx / TK;
            let kk = idx % TK;
            let gk = k0 + kk;
            var va = 0.0;
            if (row0 + r < mm.m && gk < mm.k) {
                va = a[(row0 + r) * mm.k + gk];
            }
            ta[kk * TILE + r] = va;
            var vb = 0.0;
            if (col0 + r < mm.n && gk < mm.k) {
                vb = b[(col0 + r) * mm.k + gk];
            }
            tb[kk * TILE + r] = vb;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk = kk + 1u) {
            let ra = ta[kk * TILE + lid.y * 4u];
            let ra1 = ta[kk * TILE + lid.y * 4u + 1u];
            let ra2 = ta[kk * TILE + lid.y * 4u + 2u];
            let ra3 = ta[kk * TILE + lid.y * 4u + 3u];
            let fa = vec4<f32>(ra, ra1, ra2, ra3);
            let fb = vec4<f32>(tb[kk * TILE + lid.x * 4u], tb[kk * TILE + lid.x * 4u + 1u],
                               tb[kk * TILE + lid.x * 4u + 2u], tb[kk * TILE + lid.x * 4u + 3u]);
            for (var i = 0u; i < 4u; i = i + 1u) {
                acc[i * 4u] = acc[i * 4u] + fa[i] * fb.x;
                acc[i * 4u + 1u] = acc[i * 4u + 1u] + fa[i] * fb.y;
                acc[i * 4u + 2u] = acc[i * 4u + 2u] + fa[i] * fb.z;
                acc[i * 4u + 3u] = acc[i * 4u + 3u] + fa[i] * fb.w;
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i = i + 1u) {
        let r = row0 + lid.y * 4u + i;
        for (var j = 0u; j < 4u; j = j + 1u) {
            let col = col0 + lid.x * 4u + j;
            if (r < mm.m && col < mm.n) {
                var y = acc[i * 4u + j];
                if (mm.has_bias != 0u) {
                    y = y + bias[col];
                }
                c[r * mm.n + col] = y;
            }
        }
    }
}
