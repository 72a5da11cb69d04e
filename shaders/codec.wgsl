// Block codecs: per-block statistics, block parameters (scale and zero point rounded to their
// storage types), quantize to codes, dequantize, and the fused fake-quant — every Format of
// src/codecs, bit-identical to the CPU reference (src/codecs/kernel.rs is the specification;
// each function below names the Rust function it mirrors).
//
// Prepended at build time: softfloat.wgsl (exact binary32 arithmetic on bit patterns).
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

// BlockStats::of: largest finite |x|, finite min/max (first of equals kept), any NaN/Inf.
@compute @workgroup_size(256)
fn block_stats(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_id) lid: vec3<u32>) {
    let b = flat_index(wid, nwg, lid);
    if (b >= cfg.n_blocks) {
        return;
    }
    let row = b / cfg.bpr;
    let start = b - row * cfg.bpr;
    let c0 = start * cfg.blen;
    let c1 = min(c0 + cfg.blen, cfg.n_cols);
    let base = row * cfg.n_cols;
    var amax = 0u;
    var lo = 0x7f800000u;
    var hi = 0xff800000u;
    var finite = 1u;
    for (var c = c0; c < c1; c = c + 1u) {
        let x = src[base + c];
        let a = x & SF_ABS;
        if (a >= SF_INF) {
            finite = 0u;
            continue;
        }
        amax = max(amax, a);
        if (sf_lt(x, lo)) {
            lo = x;
        }
        if (sf_gt(x, hi)) {
            hi = x;
        }
    }
    stats[b] = vec4<u32>(amax, lo, hi, finite);
}

// scale::e8m0_exponent; returns (exponent, ok).
fn e8m0_exponent(amax_in: u32) -> vec2<i32> {
    let amax = select(amax_in, 0x00800000u, amax_in == 0u);
    var e = 0;
    switch cfg.e8m0_rule {
        case 0u: {
            e = sf_floor_log2(amax) - cfg.elem_emax;
        }
        case 1u: {
            let f = sf_floor_log2(amax);
            var is_pow2 = (amax & 0x7fffffu) == 0u;
            if ((amax >> 23u) == 0u) {
                is_pow2 = countOneBits(amax) == 1u;
            }
            e = select(f + 1, f, is_pow2) - cfg.elem_emax;
        }
        case 2u: {
            let shift = 23u - min(cfg.elem_mbits, 23u);
            var rounded = amax;
            if (shift != 0u) {
                rounded = (amax + (1u << (shift - 1u))) & 0xff800000u;
            }
            if ((rounded & SF_ABS) >= SF_INF) {
                return vec2<i32>(0, 0);
            }
            if ((rounded & 0x7f800000u) == 0u) {
                e = -149 - cfg.elem_emax;
            } else {
                e = sf_floor_log2(rounded) - cfg.elem_emax;
            }
        }
        default: {
            let d = sf_mul(amax, cfg.inv_elem_max_bits);
            if ((d & SF_ABS) >= SF_INF) {
                return vec2<i32>(0, 0);
            }
            let biased = i32(d >> 23u);
            let mant = d & 0x7fffffu;
            var up = mant != 0u;
            if (biased == 0) {
                up = mant > 0x400000u;
            }
            e = biased + select(0, 1, up) - 127;
        }
    }
    if (e > 127) {
        return vec2<i32>(0, 0);
    }
    return vec2<i32>(max(e, -127), 1);
}

// ScaleType::encode_value for the non-E8M0 scale types (raw >= 0).
fn encode_scale(raw: u32) -> u32 {
    switch cfg.scale_kind {
        case 2u: {
            return min(encode_mag_with(raw & SF_ABS, 10u, -14, 0u), 0x7bffu);
        }
        case 3u: {
            return min(encode_mag_with(raw & SF_ABS, 7u, -126, 0u), 0x7f7fu);
        }
        case 5u: {
            let c = sf_clamp(raw, 0x3c800000u, 0x43e00000u);
            return min(encode_mag_with(c, 3u, -6, 0u), 0x7eu);
        }
        default: {
            return raw;
        }
    }
}

// ScaleType::decode for a float storage type (kind as `scale_kind`: 2 fp16, 3 bf16, 5 e4m3;
// fp32 codes are their own bits).
fn decode_float_type(code: u32, kind: u32) -> u32 {
    switch kind {
        case 2u: {
            return decode_with(code, 5u, 10u, 0u);
        }
        case 3u: {
            return decode_with(code, 8u, 7u, 0u);
        }
        case 5u: {
            return decode_with(code, 4u, 3u, 1u);
        }
        default: {
            return code;
        }
    }
}

fn decode_scale(code: u32) -> u32 {
    return decode_float_type(code, cfg.scale_kind);
}

// ScaleType::encode_value_signed for a float zero point (Inf stays Inf).
fn encode_zero(v: u32) -> u32 {
    let sign = v >> 31u;
    let a = v & SF_ABS;
    switch cfg.zero_type {
        case 2u: {
            return (sign << 15u) | min(encode_mag_with(a, 10u, -14, 0u), 0x7c00u);
        }
        case 3u: {
            return (sign << 15u) | min(encode_mag_with(a, 7u, -126, 0u), 0x7f80u);
        }
        default: {
            return v;
        }
    }
}

fn decode_zero(code: u32) -> u32 {
    return decode_float_type(code, cfg.zero_type);
}

fn nan_params() -> BlockP {
    var nan_code = 0u;
    switch cfg.scale_kind {
        case 1u: {
            nan_code = 0xffu;
        }
        case 2u: {
            nan_code = 0x7e00u;
        }
        case 3u: {
            nan_code = 0x7fc0u;
        }
        case 4u: {
            nan_code = 0x7fc00000u;
        }
        default: {
            nan_code = 0x7fu;
        }
    }
    return BlockP(nan_code, 0u, SF_NAN, 0u, F32_ONE, 3u, 0u, 0u);
}

// Kernel::params_from_codes for the non-E8M0 scale types.
fn params_from_codes(scale_code: u32, zero_code: u32) -> BlockP {
    let s = decode_scale(scale_code);
    if (sf_is_nan(s)) {
        return nan_params();
    }
    var zero = 0u;
    if (cfg.zero_kind == 1u) {
        zero = sf_from_int(i32(zero_code));
    } else if (cfg.zero_kind == 2u) {
        zero = decode_zero(zero_code);
    }
    var total = s;
    if (cfg.has_global != 0u) {
        total = sf_mul(cfg.global_bits, s);
    }
    let to_elem = select(SF_INF, total, sf_gt(total, 0u));
    return BlockP(scale_code, zero_code, total, zero, to_elem, 0u, 0u, 0u);
}

// Kernel::params_rtn.
fn params_rtn(st: vec4<u32>) -> BlockP {
    if (cfg.scale_kind == 0u) {
        return BlockP(0u, 0u, F32_ONE, 0u, F32_ONE, 1u, 0u, 0u);
    }
    if (st.w == 0u) {
        return nan_params();
    }
    if (cfg.scale_kind == 1u) {
        let r = e8m0_exponent(st.x);
        if (r.y == 0) {
            return nan_params();
        }
        let e = r.x;
        return BlockP(u32(e + 127), 0u, sf_pow2(e), 0u, sf_pow2(-e), 1u, 0u, 0u);
    }
    if (cfg.zero_kind == 0u) {
        var raw = sf_div(st.x, cfg.elem_max_bits);
        if (cfg.has_global != 0u) {
            raw = sf_div(raw, cfg.global_bits);
        }
        return params_from_codes(encode_scale(raw), 0u);
    }
    if (cfg.zero_kind == 1u) {
        let lo = select(0u, st.y, sf_lt(st.y, 0u));
        let hi = select(0u, st.z, sf_gt(st.z, 0u));
        let raw = sf_div(sf_sub(hi, lo), cfg.qmax_f_bits);
        let s_code = encode_scale(raw);
        let s = decode_scale(s_code);
        var z = 0;
        if (sf_gt(s, 0u)) {
            let t = sf_min(sf_div(lo ^ 0x80000000u, s), 0x4e6e6b28u);
            z = clamp(round_to_int(t), 0, cfg.qmax);
        }
        return params_from_codes(s_code, u32(z));
    }
    var lo = 0u;
    var hi = 0u;
    if (!sf_gt(st.y, st.z)) {
        lo = st.y;
        hi = st.z;
    }
    let raw = sf_div(sf_sub(hi, lo), cfg.qmax_f_bits);
    let s_code = encode_scale(raw);
    let s = decode_scale(s_code);
    var z = 0u;
    if (sf_gt(s, 0u)) {
        z = sf_div(lo ^ 0x80000000u, s);
    }
    return params_from_codes(s_code, encode_zero(z));
}

@compute @workgroup_size(256)
fn block_params(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_id) lid: vec3<u32>) {
    let b = flat_index(wid, nwg, lid);
    if (b >= cfg.n_blocks) {
        return;
    }
    params[b] = params_rtn(stats[b]);
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
