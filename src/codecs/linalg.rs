//! Dense linear algebra shared by the calibrated methods (GPTQ's lazy-batch updates, AWQ's
//! reconstruction losses): row-major strided GEMM through nalgebra's matrixmultiply kernels.

/// C ← α·A·B + β·C for row-major strided slices: A `m × k` (row stride `lda`), B `k × n`,
/// C `m × n` (matrixmultiply's GEMM through nalgebra views).
pub(crate) fn gemm_rm(
    (m, k, n): (usize, usize, usize),
    alpha: f32,
    (a, lda): (&[f32], usize),
    (b, ldb): (&[f32], usize),
    beta: f32,
    (c, ldc): (&mut [f32], usize),
) {
    if m == 0 || n == 0 {
        return;
    }
    // Row-major X (stride ld) is column-major Xᵀ with column stride ld: compute Cᵀ = Bᵀ·Aᵀ in
    // nalgebra's natural layout (unit row stride).
    let at = nalgebra::DMatrixView::from_slice_with_strides(a, k, m, 1, lda);
    let bt = nalgebra::DMatrixView::from_slice_with_strides(b, n, k, 1, ldb);
    let mut ct = nalgebra::DMatrixViewMut::from_slice_with_strides_mut(c, n, m, 1, ldc);
    ct.gemm(alpha, &bt, &at, beta);
}
