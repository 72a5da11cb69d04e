// Exact IEEE-754 binary32 arithmetic on bit patterns (u32), prepended to every kernel that must
// match the CPU reference bit for bit.
//
// Why: WGSL lets an implementation flush subnormals (llvmpipe/lavapipe does) and gives `x / y`
// 2.5 ULP. The codec kernels therefore keep every float that decides a code or an output value
// as its bit pattern and use these helpers: round-to-nearest-even, subnormals kept, overflow to
// ±Inf, NaN results are the quiet NaN 0x7fc00000 (the CPU tests compare NaN as NaN, not by
// payload). Integer ops only; no float instruction touches a value here.
//
// Internal form of a finite nonzero value: sign, exponent E and a 31-bit significand `sig` with
// bit 30 set, value = sig · 2^(E − 30); `sticky` is nonzero when nonzero bits were dropped below.

const SF_NAN: u32 = 0x7fc00000u;
const SF_INF: u32 = 0x7f800000u;
const SF_ABS: u32 = 0x7fffffffu;

fn sf_is_nan(a: u32) -> bool {
    return (a & SF_ABS) > SF_INF;
}

// Total-order key for comparisons that treat −0 and +0 as equal (IEEE `<`); NaN is not passed.
fn sf_key(a: u32) -> i32 {
    let m = a & SF_ABS;
    return select(i32(m), -i32(m), (a >> 31u) == 1u);
}

fn sf_lt(a: u32, b: u32) -> bool {
    return sf_key(a) < sf_key(b);
}

fn sf_gt(a: u32, b: u32) -> bool {
    return sf_key(a) > sf_key(b);
}

// Rust's `f32::clamp(v, lo, hi)` for non-NaN v.
fn sf_clamp(v: u32, lo: u32, hi: u32) -> u32 {
    if (sf_lt(v, lo)) {
        return lo;
    }
    if (sf_gt(v, hi)) {
        return hi;
    }
    return v;
}

// Rust's `f32::min(v, m)` for non-NaN v and m where they differ (ties return v).
fn sf_min(v: u32, m: u32) -> u32 {
    return select(v, m, sf_lt(m, v));
}

// Rounds sig · 2^(E − 30) (+ sticky) to binary32, nearest even.
fn sf_pack(sign: u32, e: i32, sig: u32, sticky: u32) -> u32 {
    let be = e + 127;
    var shift = 7u;
    if (be <= 0) {
        let extra = u32(1 - be);
        if (extra >= 25u) {
            return sign << 31u;
        }
        shift = 7u + extra;
    }
    let q = sig >> shift;
    let rem = sig & ((1u << shift) - 1u);
    let half = 1u << (shift - 1u);
    let up = rem > half || (rem == half && (sticky != 0u || (q & 1u) == 1u));
    var mag = q + select(0u, 1u, up);
    if (be > 0) {
        // q carries the implicit bit; a carry out of the mantissa rolls into the exponent.
        if (be >= 255) {
            return (sign << 31u) | SF_INF;
        }
        mag = (u32(be - 1) << 23u) + mag;
    }
    if (mag >= SF_INF) {
        mag = SF_INF;
    }
    return (sign << 31u) | mag;
}

// 24-bit significand with bit 23 set and exponent, value = s · 2^(e − 23); `a` finite nonzero.
fn sf_sig24(a: u32) -> vec2<i32> {
    let be = i32((a >> 23u) & 0xffu);
    let mant = a & 0x7fffffu;
    if (be == 0) {
        let lz = i32(countLeadingZeros(mant));
        return vec2<i32>(i32(mant << u32(lz - 8)), -126 - (lz - 8));
    }
    return vec2<i32>(i32(mant | 0x800000u), be - 127);
}

fn sf_mul(a: u32, b: u32) -> u32 {
    let sign = (a ^ b) >> 31u;
    let aa = a & SF_ABS;
    let bb = b & SF_ABS;
    if (aa > SF_INF || bb > SF_INF) {
        return SF_NAN;
    }
    if (aa == SF_INF || bb == SF_INF) {
        if (aa == 0u || bb == 0u) {
            return SF_NAN;
        }
        return (sign << 31u) | SF_INF;
    }
    if (aa == 0u || bb == 0u) {
        return sign << 31u;
    }
    let x = sf_sig24(aa);
    let y = sf_sig24(bb);
    let sa = u32(x.x);
    let sb = u32(y.x);
    // 48-bit product from 12-bit limbs: hi · 2^24 + lo.
    let ah = sa >> 12u;
    let al = sa & 0xfffu;
    let bh = sb >> 12u;
    let bl = sb & 0xfffu;
    let p1 = ah * bl + al * bh;
    let mid = ((p1 & 0xfffu) << 12u) + al * bl;
    let lo = mid & 0xffffffu;
    let hi = ah * bh + (p1 >> 12u) + (mid >> 24u);
    if (hi >= 0x800000u) {
        return sf_pack(sign, x.y + y.y + 1, (hi << 7u) | (lo >> 17u), lo & 0x1ffffu);
    }
    return sf_pack(sign, x.y + y.y, (hi << 8u) | (lo >> 16u), lo & 0xffffu);
}

fn sf_add(a: u32, b: u32) -> u32 {
    let aa = a & SF_ABS;
    let bb = b & SF_ABS;
    if (aa > SF_INF || bb > SF_INF) {
        return SF_NAN;
    }
    if (aa == SF_INF || bb == SF_INF) {
        if (aa == SF_INF && bb == SF_INF && a != b) {
            return SF_NAN;
        }
        return select(b, a, aa == SF_INF);
    }
    if (bb == 0u) {
        // x + (±0) = x, except (−0) + (+0) = +0.
        return select(a, 0u, aa == 0u && a != b);
    }
    if (aa == 0u) {
        return b;
    }
    // Order by magnitude: |x| >= |y|.
    var x = a;
    var y = b;
    if (bb > aa) {
        x = b;
        y = a;
    }
    let px = sf_sig24(x & SF_ABS);
    let py = sf_sig24(y & SF_ABS);
    let big = u32(px.x) << 6u;
    let small = u32(py.x) << 6u;
    let d = u32(px.y - py.y);
    var aligned = 1u;
    if (d < 31u) {
        let lost = small & ((1u << d) - 1u);
        aligned = (small >> d) | select(0u, 1u, lost != 0u);
    }
    var s = 0u;
    if ((x >> 31u) == (y >> 31u)) {
        s = big + aligned;
    } else {
        s = big - aligned;
    }
    if (s == 0u) {
        return 0u;
    }
    let top = 31 - i32(countLeadingZeros(s));
    let k = 30 - top;
    return sf_pack(x >> 31u, px.y + 1 - k, s << u32(k), 0u);
}

fn sf_sub(a: u32, b: u32) -> u32 {
    if (sf_is_nan(b)) {
        return SF_NAN;
    }
    return sf_add(a, b ^ 0x80000000u);
}

fn sf_div(a: u32, b: u32) -> u32 {
    let sign = (a ^ b) >> 31u;
    let aa = a & SF_ABS;
    let bb = b & SF_ABS;
    if (aa > SF_INF || bb > SF_INF) {
        return SF_NAN;
    }
    if (aa == SF_INF) {
        if (bb == SF_INF) {
            return SF_NAN;
        }
        return (sign << 31u) | SF_INF;
    }
    if (bb == SF_INF) {
        return sign << 31u;
    }
    if (bb == 0u) {
        if (aa == 0u) {
            return SF_NAN;
        }
        return (sign << 31u) | SF_INF;
    }
    if (aa == 0u) {
        return sign << 31u;
    }
    let x = sf_sig24(aa);
    let y = sf_sig24(bb);
    var r = u32(x.x);
    let den = u32(y.x);
    var e = x.y - y.y;
    if (r < den) {
        r = r << 1u;
        e = e - 1;
    }
    // Restoring division: 31 quotient bits, the first one is 1.
    var q = 0u;
    for (var i = 0u; i < 31u; i = i + 1u) {
        q = q << 1u;
        if (r >= den) {
            r = r - den;
            q = q | 1u;
        }
        r = r << 1u;
    }
    return sf_pack(sign, e, q, r);
}

// 2^e as binary32 bits (e in −149..=127).
fn sf_pow2(e: i32) -> u32 {
    if (e >= -126) {
        return u32(e + 127) << 23u;
    }
    return 1u << u32(clamp(e + 149, 0, 22));
}

// Exact small integer (|i| < 2^24) as binary32 bits.
fn sf_from_int(i: i32) -> u32 {
    return bitcast<u32>(f32(i));
}

// floor(log2 |a|) for finite nonzero a, subnormals included; −150 for zero.
fn sf_floor_log2(a: u32) -> i32 {
    let m = a & SF_ABS;
    let be = i32(m >> 23u);
    if (be != 0) {
        return be - 127;
    }
    if (m == 0u) {
        return -150;
    }
    return (31 - i32(countLeadingZeros(m))) - 149;
}
