import CBLAS

/// The fp32 matrix products (both engines: the int8 engine's fp32 layers and attention), through OpenBLAS.
enum BLAS {
    /// C[m×n] = A[m×k] · W[n×k]ᵀ + beta·C: a linear layer over `m` rows with
    /// PyTorch-layout weights. Leading dimensions default to packed rows.
    static func linear(_ a: UnsafePointer<Float>, rows m: Int, inner k: Int, lda: Int? = nil,
                       weight: UnsafePointer<Float>, outputs n: Int, ldw: Int? = nil,
                       into c: UnsafeMutablePointer<Float>, ldc: Int? = nil, accumulate: Bool = false) {
        guard m > 0, n > 0 else { return }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(k), 1,
                    a, Int32(lda ?? k), weight, Int32(ldw ?? k), accumulate ? 1 : 0, c, Int32(ldc ?? n))
    }

    /// C[m×n] = A[m×k] · B[k×n].
    static func multiply(_ a: UnsafePointer<Float>, rows m: Int, inner k: Int, lda: Int,
                         _ b: UnsafePointer<Float>, columns n: Int, ldb: Int,
                         into c: UnsafeMutablePointer<Float>, ldc: Int) {
        guard m > 0, n > 0 else { return }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), 1,
                    a, Int32(lda), b, Int32(ldb), 0, c, Int32(ldc))
    }

    /// The number of threads OpenBLAS uses for one product.
    static func setThreads(_ count: Int) { openblas_set_num_threads(Int32(count)) }
}
