//! Hover texts for students: what each law and each of its terms means, with the source paper.

/// Hover text of a law, with its source.
pub fn law_help(id: &str) -> &'static str {
    match id {
        "unified-strong" => {
            "ΔL = C·e^(A·Qr)·N^(−γ_N)·(Qb + d)^γ_c — Cao et al., arXiv 2410.06722: loss grows \
             exponentially with the low-precision ratio, shrinks as a power of model size, and \
             grows sub-linearly with the block size."
        }
        "formula" => {
            "A law you type: any expression of N, D, Qr, Qb, P, E, M, bits; every other name is a \
             parameter to fit (e.g. C*exp(A*Qr)*N^(-g)*(Qb+d)^c). Press Enter to fit it."
        }
        _ => "ΔL = C·e^(A·Qr)·N^(−γ_N) — the same law without the block-size term.",
    }
}

/// Hover text of a parameter of the unified law.
pub fn param_help(name: &str) -> &'static str {
    match name {
        "C" => "Overall scale of the degradation.",
        "A" => "Ratio term: how fast ΔL grows as more of the model is in low precision (e^(A·Qr)).",
        "gamma_N" => "Size term: larger models degrade less, as N^(−γ_N).",
        "d" => "Offset of the block size in the granularity term (Qb + d).",
        "gamma_c" => "Granularity exponent (0 < γ_c < 1): coarser blocks cost more, sub-linearly.",
        _ => "",
    }
}
