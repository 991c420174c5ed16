import Foundation

/// Row-wise normalisation kernels over rows of length n (the last axis). Forward and backward side by side.
extension Kernels {
    /// LayerNorm (Ba et al. 2016): y = (x − μ)/√(σ² + ε) · γ + β per row; saves μ and 1/√(σ² + ε).
    public static func layerNormForward(_ x: UnsafePointer<Float>, gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>?,
                                        _ y: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>,
                                        inverseStd: UnsafeMutablePointer<Float>, rows: Int, n: Int, epsilon: Float) {
        Parallel.forEachRow(rows: rows, elementsPerRow: n) { range in
            for r in range {
                let xr = x + r * n, yr = y + r * n
                var sum: Float = 0
                for j in 0..<n { sum += xr[j] }
                let mu = sum / Float(n)
                var squares: Float = 0 // two passes: no cancellation from E[x²] − E[x]²
                for j in 0..<n { let d = xr[j] - mu; squares += d * d }
                let rstd = 1 / (squares / Float(n) + epsilon).squareRoot()
                mean[r] = mu; inverseStd[r] = rstd
                if let beta {
                    for j in 0..<n { yr[j] = (xr[j] - mu) * rstd * gamma[j] + beta[j] }
                } else {
                    for j in 0..<n { yr[j] = (xr[j] - mu) * rstd * gamma[j] }
                }
            }
        }
    }

    /// dx = r·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)) with ĝ = dy·γ, x̂ = (x − μ)·r; dγ += Σ dy·x̂, dβ += Σ dy.
    /// Partial sums of dγ, dβ are kept per chunk and added in chunk order (deterministic).
    public static func layerNormBackward(_ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, gamma: UnsafePointer<Float>,
                                         mean: UnsafePointer<Float>, inverseStd: UnsafePointer<Float>, rows: Int, n: Int,
                                         dx: UnsafeMutablePointer<Float>?, dGamma: UnsafeMutablePointer<Float>?,
                                         dBeta: UnsafeMutablePointer<Float>?, centered: Bool = true) {
        let chunks = Parallel.chunkCount(for: rows, minimumPerChunk: max(1, Parallel.minimumElementsPerChunk / max(1, n)))
        let partial = TensorStorage(count: chunks * 2 * n)
        let size = (rows + chunks - 1) / max(1, chunks)
        let work: (Int) -> Void = { chunk in
            let pg = partial.pointer + chunk * 2 * n, pb = pg + n
            // With more cores than 2, the last chunks can start past the end (e.g. 13 rows in 8 chunks of 2).
            for r in min(rows, chunk * size)..<min(rows, (chunk + 1) * size) {
                let xr = x + r * n, gr = dy + r * n
                let mu = centered ? mean[r] : 0, rstd = inverseStd[r]
                var sumG: Float = 0, sumGX: Float = 0
                for j in 0..<n {
                    let xhat = (xr[j] - mu) * rstd
                    let gh = gr[j] * gamma[j]
                    sumG += gh; sumGX += gh * xhat
                    pg[j] += gr[j] * xhat
                    pb[j] += gr[j]
                }
                if let dx {
                    let meanG = centered ? sumG / Float(n) : 0, meanGX = sumGX / Float(n)
                    let dxr = dx + r * n
                    for j in 0..<n {
                        let xhat = (xr[j] - mu) * rstd
                        dxr[j] += rstd * (gr[j] * gamma[j] - meanG - xhat * meanGX)
                    }
                }
            }
        }
        if chunks > 1 { Parallel.perform(iterations: chunks, work) } else { work(0) }
        for chunk in 0..<chunks {
            if let dGamma { for j in 0..<n { dGamma[j] += partial.pointer[chunk * 2 * n + j] } }
            if let dBeta { for j in 0..<n { dBeta[j] += partial.pointer[chunk * 2 * n + n + j] } }
        }
    }

    /// RMSNorm (Zhang and Sennrich 2019): y = x/√(mean(x²) + ε) · γ; saves 1/√(mean(x²) + ε).
    public static func rmsNormForward(_ x: UnsafePointer<Float>, gamma: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                                      inverseRMS: UnsafeMutablePointer<Float>, rows: Int, n: Int, epsilon: Float) {
        Parallel.forEachRow(rows: rows, elementsPerRow: n) { range in
            for r in range {
                let xr = x + r * n, yr = y + r * n
                var squares: Float = 0
                for j in 0..<n { squares += xr[j] * xr[j] }
                let rinv = 1 / (squares / Float(n) + epsilon).squareRoot()
                inverseRMS[r] = rinv
                for j in 0..<n { yr[j] = xr[j] * rinv * gamma[j] }
            }
        }
    }

    /// L2 normalisation of `extent` values strided by `inner` (axis split outer × extent × inner):
    /// y = x/√(Σx² + ε); saves the norm per line.
    public static func l2NormalizeForward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, norms: UnsafeMutablePointer<Float>,
                                          outer: Int, extent: Int, inner: Int, epsilon: Float) {
        Parallel.forEachRow(rows: outer * inner, elementsPerRow: extent) { range in
            for line in range {
                let base = (line / inner) * extent * inner + line % inner
                var squares: Float = 0
                for j in 0..<extent { let v = x[base + j * inner]; squares += v * v }
                let norm = (squares + epsilon).squareRoot()
                norms[line] = norm
                for j in 0..<extent { y[base + j * inner] = x[base + j * inner] / norm }
            }
        }
    }

    /// dx += (g − y·(g·y))/‖x‖, exact for y = x/√(Σx² + ε).
    public static func l2NormalizeBackward(_ g: UnsafePointer<Float>, _ y: UnsafePointer<Float>, norms: UnsafePointer<Float>,
                                           _ dx: UnsafeMutablePointer<Float>, outer: Int, extent: Int, inner: Int) {
        Parallel.forEachRow(rows: outer * inner, elementsPerRow: extent) { range in
            for line in range {
                let base = (line / inner) * extent * inner + line % inner
                var dot: Float = 0
                for j in 0..<extent { dot += g[base + j * inner] * y[base + j * inner] }
                let norm = norms[line]
                for j in 0..<extent { let i = base + j * inner; dx[i] += (g[i] - y[i] * dot) / norm }
            }
        }
    }
}
