/// Sets how many threads the engine's matrix products use.
public func setMatrixThreads(_ count: Int) {
    BLAS.setThreads(count)
}
