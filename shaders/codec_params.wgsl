// Block statistics and block parameters of the codec kernels: per block, the largest finite |x|,
// finite min/max and the NaN/Inf flag (`block_stats`), then the scale and zero point rounded to
// their storage types (`block_params`: E8M0 with its four rules, FP16/BF16/FP32/E4M3 scales with
// NVFP4's global scale, integer and float zero points), mirroring src/codecs/scale.rs and
// `Kernel::params_rtn` / `params_from_codes` bit for bit.
//
// Not a module of its own: appended after softfloat.wgsl and codec.wgsl (whose `Codec`/`BlockP`
// structs, bindings and minifloat helpers it uses). One thread per block.

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
