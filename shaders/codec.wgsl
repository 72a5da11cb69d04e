// Block codecs: per-block statistics, block parameters (scale and zero point rounded to their
// storage types), quantize to codes, dequantize, and the fused fake-quant — every Format of
// src/codecs, bit-identical to the CPU reference (src/codecs/kernel.rs is the specification;
// each function below names the Rust function it mirrors).
//
// Prepended at build time: softfloat.wgsl (exact binary32 arithmetic on bit patterns); appended:
// codec_params.wgsl (the block statistics and block parameter passes).
// Data: every float buffer is array<u32> of binary32 bit patterns, so no float instruction can
// flush a subnormal or round a quotient differently from the CPU.
// Layout: `rows × cols` row-major, blocks of `blen` along each row (the last may be shorter),
// `bpr` blocks per row; block i of row r has index r·bpr + i. Per-tensor formats use block 0.
// Workgroup size: 256 threads, one thread per element (or per block for the block passes);
// dispatches are 2-D (x up to 65535 groups) and every entry point bounds-checks its index.

// Mirrors `gpu::codec::CodecUniform` field for field (all 4-byte scalars; 48 words).
struct Codec {
    n_rows: u32,
    n_cols: u32,
    blen: u32,
    bpr: u32,
    per_tensor: u32,
    elem_kind: u32,      // 0 minifloat, 1 int sym, 2 int asym (uint), 3 MXINT, 4 NF4
    exp_bits: u32,
    man_bits: u32,
    emin: i32,
    bias: i32,
    special: u32,        // 0 ieee, 1 fn, 2 finite
    max_mag: u32,
    over_mag: u32,       // magnitude code an overflow becomes (saturate / Inf / NaN)
    nan_mag: u32,        // 0xffffffff: the format has no NaN
    sign_shift: u32,
    rounding: u32,       // 0 even, 1 away, 2 zero
    scale_kind: u32,     // 0 none, 1 e8m0, 2 fp16, 3 bf16, 4 fp32, 5 e4m3
    e8m0_rule: u32,      // 0 floor, 1 ceil, 2 even, 3 rceil
    zero_kind: u32,      // 0 none, 1 int, 2 float
    zero_type: u32,      // storage of a float zero: 2 fp16, 3 bf16, 4 fp32
    has_global: u32,
    global_bits: u32,
    qmax: i32,
    code_mask: u32,
    elem_emax: i32,
    elem_mbits: u32,
    elem_max_bits: u32,
    inv_elem_max_bits: u32,
    qmax_f_bits: u32,
    mxint_frac_bits: u32,
    n_blocks: u32,
    pad0: u32,
}

// Block parameters, as `codecs::BlockParams` (floats as bits); flags: bit 0 pow2, bit 1 NaN.
struct BlockP {
    scale_code: u32,
    zero_code: u32,
    mul: u32,
    zero: u32,
    to_elem: u32,
    flags: u32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<uniform> cfg: Codec;
// Input values (f32 bits) or codes (dequantize).
@group(0) @binding(1) var<storage, read> src: array<u32>;
// Per-block statistics: (amax, min, max, finite) as bits.
@group(0) @binding(2) var<storage, read_write> stats: array<vec4<u32>>;
// Per-block parameters.
@group(0) @binding(3) var<storage, read_write> params: array<BlockP>;
// Output: codes or f32 bits.
@group(0) @binding(4) var<storage, read_write> dst: array<u32>;
// Element value table (256 words, non-float elements) then the 15 NF4 thresholds.
@group(0) @binding(5) var<storage, read> tables: array<u32>;

const WG: u32 = 256u;
const F32_ONE: u32 = 0x3f800000u;

fn flat_index(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wid.y * nwg.x + wid.x) * WG + lid.x;
}

// Rounding::shift_right (shift >= 1).
fn shift_right(sig: u32, shift: u32) -> u32 {
    let q = sig >> shift;
    let rem = sig & ((1u << shift) - 1u);
    let half = 1u << (shift - 1u);
    switch cfg.rounding {
        case 0u: {
            return q + select(0u, 1u, rem > half || (rem == half && (q & 1u) == 1u));
        }
        case 1u: {
            return q + select(0u, 1u, rem >= half);
        }
        default: {
            return q;
        }
    }
}

// Rounding::round_to_int, on bits (v finite, |v| < 2^31).
fn round_to_int(v: u32) -> i32 {
    let a = v & SF_ABS;
    let negative = (v >> 31u) == 1u;
    if (a < 0x3f000000u) {
        return 0;
    }
    let e = i32(a >> 23u) - 127;
    let sig = (a & 0x7fffffu) | 0x800000u;
    var mag = 0u;
    if (e >= 23) {
        mag = sig << u32(e - 23);
    } else {
        let shift = u32(23 - e);
        let t = sig >> shift;
        let rem = sig & ((1u << shift) - 1u);
        let half = 1u << (shift - 1u);
        var up = false;
        switch cfg.rounding {
            case 0u: {
                up = rem > half || (rem == half && (t & 1u) == 1u);
            }
            case 1u: {
                up = rem >= half;
            }
            default: {
                up = false;
            }
        }
        mag = t + select(0u, 1u, up);
    }
    return select(i32(mag), -i32(mag), negative);
}

// Minifloat::encode_finite_mag with the element's M and emin, or any given ones.
fn encode_mag_with(abs_bits: u32, m: u32, emin: i32, rounding: u32) -> u32 {
    let fexp = i32(abs_bits >> 23u);
    var sig = abs_bits & 0x7fffffu;
    var e = -126;
    if (fexp != 0) {
        sig = sig | 0x800000u;
        e = fexp - 127;
    }
    let ec = max(e, emin);
    let shift = u32(min(23 + ec - e - i32(m), 31));
    let q = sig >> shift;
    let rem = sig & ((1u << shift) - 1u);
    let half = 1u << (shift - 1u);
    var up = false;
    if (rounding == 0u) {
        up = rem > half || (rem == half && (q & 1u) == 1u);
    } else if (rounding == 1u) {
        up = rem >= half;
    }
    return (u32(ec - emin) << m) + q + select(0u, 1u, up);
}

// Minifloat::decode for ExMy with the given special convention; binary32 bits.
fn decode_with(code: u32, eb: u32, mb: u32, special: u32) -> u32 {
    let mask = (1u << (eb + mb)) - 1u;
    let sign = ((code >> (eb + mb)) & 1u) << 31u;
    let mag = code & mask;
    let exp_field = mag >> mb;
    let mant = mag & ((1u << mb) - 1u);
    let top = (1u << eb) - 1u;
    if (special == 0u && exp_field == top) {
        return sign | select(SF_NAN, SF_INF, mant == 0u);
    }
    if (special == 1u && mag == mask) {
        return sign | SF_NAN;
    }
    let bias = i32((1u << (eb - 1u)) - 1u);
    var sig = mant;
    var e = 1 - bias;
    if (exp_field != 0u) {
        sig = mant | (1u << mb);
        e = i32(exp_field) - bias;
    }
    if (sig == 0u) {
        return sign;
    }
    let t = 31 - i32(countLeadingZeros(sig));
    let lead = e - i32(mb) + t;
    if (lead >= -126) {
        return sign | (u32(lead + 127) << 23u) | ((sig << u32(23 - t)) & 0x7fffffu);
    }
    return sign | (sig << u32(max(e - i32(mb) + 149, 0)));
}

// ElementType::decode / Kernel::value.
fn element_value(code: u32) -> u32 {
    if (cfg.elem_kind == 0u) {
        return decode_with(code, cfg.exp_bits, cfg.man_bits, cfg.special);
    }
    return tables[code & 255u];
}

// Kernel::for_codes for one finite element of a non-NaN block.
fn encode_element(x: u32, p: BlockP) -> u32 {
    if (cfg.scale_kind == 0u) {
        // Plain cast (Minifloat::encode): Inf/NaN handled per element.
        let sign_code = (x >> 31u) << cfg.sign_shift;
        let a = x & SF_ABS;
        if (a >= SF_INF) {
            if (a > SF_INF) {
                if (cfg.nan_mag == 0xffffffffu) {
                    return 1u << cfg.sign_shift;
                }
                return sign_code | cfg.nan_mag;
            }
            return sign_code | cfg.over_mag;
        }
        var mag = encode_mag_with(a, cfg.man_bits, cfg.emin, cfg.rounding);
        if (mag > cfg.max_mag) {
            mag = cfg.over_mag;
        }
        return sign_code | mag;
    }
    var v = 0u;
    if ((p.flags & 1u) != 0u) {
        v = sf_mul(x, p.to_elem);
    } else {
        v = sf_div(x, p.to_elem);
    }
    switch cfg.elem_kind {
        case 0u: {
            var mag = encode_mag_with(v & SF_ABS, cfg.man_bits, cfg.emin, cfg.rounding);
            if (mag > cfg.max_mag) {
                mag = cfg.over_mag;
            }
            return ((v >> 31u) << cfg.sign_shift) | mag;
        }
        case 1u: {
            let q = round_to_int(sf_clamp(v, cfg.qmax_f_bits | 0x80000000u, cfg.qmax_f_bits));
            return u32(q) & cfg.code_mask;
        }
        case 2u: {
            if (cfg.zero_kind == 1u) {
                let z = i32(bitcast<f32>(p.zero));
                let q = round_to_int(sf_clamp(v, 0xcb800000u, 0x4b800000u));
                return u32(clamp(q + z, 0, cfg.qmax));
            }
            let q = round_to_int(sf_clamp(sf_add(v, p.zero), 0u, cfg.qmax_f_bits));
            return u32(q);
        }
        case 3u: {
            let w = sf_mul(v, cfg.mxint_frac_bits);
            let q = round_to_int(sf_clamp(w, cfg.qmax_f_bits | 0x80000000u, cfg.qmax_f_bits));
            return u32(q) & cfg.code_mask;
        }
        default: {
            var code = 0u;
            for (var i = 0u; i < 15u; i = i + 1u) {
                let t = tables[256u + i];
                code = code + select(0u, 1u, !sf_lt(v, t));
            }
            return code;
        }
    }
}

// Kernel::dequant, with the NaN-block rule.
fn dequant(code: u32, p: BlockP) -> u32 {
    if ((p.flags & 2u) != 0u) {
        return SF_NAN;
    }
    return sf_mul(sf_sub(element_value(code), p.zero), p.mul);
}

fn block_of(idx: u32) -> u32 {
    if (cfg.per_tensor != 0u) {
        return 0u;
    }
    let row = idx / cfg.n_cols;
    let col = idx - row * cfg.n_cols;
    return row * cfg.bpr + col / cfg.blen;
}

fn n_elements() -> u32 {
    return cfg.n_rows * cfg.n_cols;
}

// Kernel::for_codes, one element: the code it stores (0 in a NaN block).
@compute @workgroup_size(256)
fn quantize_codes(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    if (i >= n_elements()) {
        return;
    }
    let p = params[block_of(i)];
    if ((p.flags & 2u) != 0u) {
        dst[i] = 0u;
        return;
    }
    dst[i] = encode_element(src[i], p);
}

// Kernel::fake_block, one element: dequantize(quantize(x)).
@compute @workgroup_size(256)
fn fake_quant(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    if (i >= n_elements()) {
        return;
    }
    let p = params[block_of(i)];
    if ((p.flags & 2u) != 0u) {
        dst[i] = SF_NAN;
        return;
    }
    dst[i] = dequant(encode_element(src[i], p), p);
}

// Kernel::decode_block, one element: codes in `src`, values out.
@compute @workgroup_size(256)
fn dequantize(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    if (i >= n_elements()) {
        return;
    }
    dst[i] = dequant(src[i], params[block_of(i)]);
}

// Block-error reduction, one thread per block, after `fake_quant` wrote `dst`: per block
// (Σ (x − q)², max |x − q|, Σ x², number of non-finite pairs) over its finite pairs, written to
// `stats` (as f32 bits; the count as an integer). Hardware fp32 sums within a block; the host
// sums blocks in f64. Not bit-exact by contract (a named tolerance in the tests).
@compute @workgroup_size(256)
fn block_errors(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_id) lid: vec3<u32>) {
    let b = flat_index(wid, nwg, lid);
    if (b >= cfg.n_blocks) {
        return;
    }
    let row = b / cfg.bpr;
    let c0 = (b - row * cfg.bpr) * cfg.blen;
    let c1 = min(c0 + cfg.blen, cfg.n_cols);
    let base = row * cfg.n_cols;
    var se = 0.0;
    var worst = 0.0;
    var sp = 0.0;
    var bad = 0u;
    for (var c = c0; c < c1; c = c + 1u) {
        let xb = src[base + c];
        let qb = dst[base + c];
        if ((xb & SF_ABS) >= SF_INF || (qb & SF_ABS) >= SF_INF) {
            bad = bad + 1u;
            continue;
        }
        let x = bitcast<f32>(xb);
        let d = x - bitcast<f32>(qb);
        se = se + d * d;
        worst = max(worst, abs(d));
        sp = sp + x * x;
    }
    stats[b] = vec4<u32>(bitcast<u32>(se), bitcast<u32>(worst), bitcast<u32>(sp), bad);
}
