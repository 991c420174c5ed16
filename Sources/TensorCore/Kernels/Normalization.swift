import Foundation

/// Row-wise normalisation kernels over rows of length n (the last axis). Forward and backward side by side.
extension Kernels {
    /// LayerNorm (Ba et al. 2016): y = (x − μ)/√(σ² + ε) · γ + β per row; saves μ and 1/√(σ² + ε).
    /// SIMD along the row (eight partial sums); `naiveLayerNormForward` is its scalar twin.
    public static func layerNormForward(_ x: UnsafePointer<Float>, gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>?,
                                        _ y: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>,
                                        inverseStd: UnsafeMutablePointer<Float>, rows: Int, n: Int, epsilon: Float) {
        Parallel.forEachRow(rows: rows, elementsPerRow: n) { range in
            for r in range {
                let xr = x + r &* n, yr = y + r &* n
                let mu = rowSum(xr, n) / Float(n)
                // Two passes: no cancellation from E[x²] − E[x]².
                let rstd = 1 / (centeredSquares(xr, mu, n) / Float(n) + epsilon).squareRoot()
                mean[r] = mu; inverseStd[r] = rstd
                let vm = SIMD8<Float>(repeating: mu), vr = SIMD8<Float>(repeating: rstd)
                var j = 0
                if let beta {
                    while j + 8 <= n {
                        storeVector((loadVector(xr + j) - vm) * vr * loadVector(gamma + j) + loadVector(beta + j), yr + j)
                        j += 8
                    }
                    while j < n { yr[j] = (xr[j] - mu) * rstd * gamma[j] + beta[j]; j += 1 }
                } else {
                    while j + 8 <= n { storeVector((loadVector(xr + j) - vm) * vr * loadVector(gamma + j), yr + j); j += 8 }
                    while j < n { yr[j] = (xr[j] - mu) * rstd * gamma[j]; j += 1 }
                }
            }
        }
    }

    /// dx = r·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)) with ĝ = dy·γ, x̂ = (x − μ)·r; dγ += Σ dy·x̂, dβ += Σ dy.
    /// Partial sums of dγ, dβ are kept per chunk of rows and added in chunk order; the chunks follow from
    /// the shape alone (`Parallel.reductionChunkCount`), so the sums are the same on any number of cores. With
    /// `centered` false it is RMSNorm's backward (μ = 0, no mean(ĝ) term). SIMD along the row;
    /// `naiveLayerNormBackward` is its scalar twin. With `accumulateDx` false, dx is written, not added to.
    public static func layerNormBackward(_ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, gamma: UnsafePointer<Float>,
                                         mean: UnsafePointer<Float>, inverseStd: UnsafePointer<Float>, rows: Int, n: Int,
                                         dx: UnsafeMutablePointer<Float>?, dGamma: UnsafeMutablePointer<Float>?,
                                         dBeta: UnsafeMutablePointer<Float>?, centered: Bool = true, accumulateDx: Bool = true) {
        let minimumRows = max(1, Parallel.minimumElementsPerChunk / max(1, n))
        let chunks = Parallel.reductionChunkCount(for: rows, minimumPerChunk: minimumRows)
        let partial = TensorStorage(count: chunks * 2 * n)
        let size = (rows + chunks - 1) / max(1, chunks)
        let work: (Int) -> Void = { chunk in
            let pg = partial.pointer + chunk * 2 * n, pb = pg + n
            // The last chunks can start past the end (e.g. 13 rows in 8 chunks of 2).
            for r in min(rows, chunk * size)..<min(rows, (chunk + 1) * size) {
                let xr = x + r &* n, gr = dy + r &* n
                let mu = centered ? mean[r] : 0, rstd = inverseStd[r]
                let vm = SIMD8<Float>(repeating: mu), vr = SIMD8<Float>(repeating: rstd)
                var vG = SIMD8<Float>(repeating: 0), vGX = SIMD8<Float>(repeating: 0)
                var j = 0
                while j + 8 <= n {
                    let g = loadVector(gr + j), xhat = (loadVector(xr + j) - vm) * vr, gh = g * loadVector(gamma + j)
                    vG += gh; vGX += gh * xhat
                    storeVector(loadVector(pg + j) + g * xhat, pg + j)
                    storeVector(loadVector(pb + j) + g, pb + j)
                    j += 8
                }
                var sumG = vG.sum(), sumGX = vGX.sum()
                while j < n {
                    let xhat = (xr[j] - mu) * rstd, gh = gr[j] * gamma[j]
                    sumG += gh; sumGX += gh * xhat
                    pg[j] += gr[j] * xhat
                    pb[j] += gr[j]
                    j += 1
                }
                guard let dx else { continue }
                let meanG = centered ? sumG / Float(n) : 0, meanGX = sumGX / Float(n)
                let dxr = dx + r &* n
                let vmg = SIMD8<Float>(repeating: meanG), vmgx = SIMD8<Float>(repeating: meanGX)
                j = 0
                while j + 8 <= n {
                    let xhat = (loadVector(xr + j) - vm) * vr
                    let delta = vr * (loadVector(gr + j) * loadVector(gamma + j) - vmg - xhat * vmgx)
                    storeVector(accumulateDx ? loadVector(dxr + j) + delta : delta, dxr + j)
                    j += 8
                }
                while j < n {
                    let xhat = (xr[j] - mu) * rstd
                    let delta = rstd * (gr[j] * gamma[j] - meanG - xhat * meanGX)
                    dxr[j] = accumulateDx ? dxr[j] + delta : delta
                    j += 1
                }
            }
        }
        if chunks > 1 { Parallel.perform(iterations: chunks, work) } else { work(0) }
        for chunk in 0..<chunks {
            if let dGamma { accumulate(partial.pointer + chunk * 2 * n, into: dGamma, count: n) }
            if let dBeta { accumulate(partial.pointer + chunk * 2 * n + n, into: dBeta, count: n) }
        }
    }

    /// RMSNorm (Zhang and Sennrich 2019): y = x/√(mean(x²) + ε) · γ; saves 1/√(mean(x²) + ε).
    /// SIMD along the row; `naiveRMSNormForward` is its scalar twin.
    public static func rmsNormForward(_ x: UnsafePointer<Float>, gamma: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                                      inverseRMS: UnsafeMutablePointer<Float>, rows: Int, n: Int, epsilon: Float) {
        Parallel.forEachRow(rows: rows, elementsPerRow: n) { range in
            for r in range {
                let xr = x + r &* n, yr = y + r &* n
                let rinv = 1 / (centeredSquares(xr, 0, n) / Float(n) + epsilon).squareRoot()
                inverseRMS[r] = rinv
                let vr = SIMD8<Float>(repeating: rinv)
                var j = 0
                while j + 8 <= n { storeVector(loadVector(xr + j) * vr * loadVector(gamma + j), yr + j); j += 8 }
                while j < n { yr[j] = xr[j] * rinv * gamma[j]; j += 1 }
            }
        }
    }

    /// Σ p[j] for j < n: eight partial sums, then the tail.
    @inline(__always) static func rowSum(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
        var v = SIMD8<Float>(repeating: 0)
        var j = 0
        while j + 8 <= n { v += loadVector(p + j); j += 8 }
        var total = v.sum()
        while j < n { total += p[j]; j += 1 }
        return total
    }

    /// Σ (p[j] − mu)² for j < n: eight partial sums, then the tail.
    @inline(__always) static func centeredSquares(_ p: UnsafePointer<Float>, _ mu: Float, _ n: Int) -> Float {
        var v = SIMD8<Float>(repeating: 0)
        let vm = SIMD8<Float>(repeating: mu)
        var j = 0
        while j + 8 <= n { let d = loadVector(p + j) - vm; v += d * d; j += 8 }
        var total = v.sum()
        while j < n { let d = p[j] - mu; total += d * d; j += 1 }
        return total
    }

    // MARK: Naive twins (one scalar loop per quantity, no SIMD, no threads)

    public static func naiveLayerNormForward(_ x: UnsafePointer<Float>, gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>?,
                                             _ y: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>,
                                             inverseStd: UnsafeMutablePointer<Float>, rows: Int, n: Int, epsilon: Float) {
        for r in 0..<rows {
            let xr = x + r * n, yr = y + r * n
            var sum: Float = 0
            for j in 0..<n { sum += xr[j] }
            let mu = sum / Float(n)
            var squares: Float = 0
            for j in 0..<n { let d = xr[j] - mu; squares += d * d }
            let rstd = 1 / (squares / Float(n) + epsilon).squareRoot()
            mean[r] = mu; inverseStd[r] = rstd
            for j in 0..<n { yr[j] = (xr[j] - mu) * rstd * gamma[j] + (beta?[j] ?? 0) }
        }
    }

    public static func naiveLayerNormBackward(_ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, gamma: UnsafePointer<Float>,
                                              mean: UnsafePointer<Float>, inverseStd: UnsafePointer<Float>, rows: Int, n: Int,
                                              dx: UnsafeMutablePointer<Float>?, dGamma: UnsafeMutablePointer<Float>?,
                                              dBeta: UnsafeMutablePointer<Float>?, centered: Bool = true,
                                              accumulateDx: Bool = true) {
        for r in 0..<rows {
            let xr = x + r * n, gr = dy + r * n
            let mu = centered ? mean[r] : 0, rstd = inverseStd[r]
            var sumG: Float = 0, sumGX: Float = 0
            for j in 0..<n {
                let xhat = (xr[j] - mu) * rstd, gh = gr[j] * gamma[j]
                sumG += gh; sumGX += gh * xhat
                dGamma?[j] += gr[j] * xhat
                dBeta?[j] += gr[j]
            }
            guard let dx else { continue }
            let meanG = centered ? sumG / Float(n) : 0, meanGX = sumGX / Float(n)
            for j in 0..<n {
                let xhat = (xr[j] - mu) * rstd
                let delta = rstd * (gr[j] * gamma[j] - meanG - xhat * meanGX)
                dx[r * n + j] = accumulateDx ? dx[r * n + j] + delta : delta
            }
        }
    }

    public static func naiveRMSNormForward(_ x: UnsafePointer<Float>, gamma: UnsafePointer<Float>,
                                           _ y: UnsafeMutablePointer<Float>,
                                           inverseRMS: UnsafeMutablePointer<Float>, rows: Int, n: Int, epsilon: Float) {
        for r in 0..<rows {
            let xr = x + r * n
            var squares: Float = 0
            for j in 0..<n { squares += xr[j] * xr[j] }
            let rinv = 1 / (squares / Float(n) + epsilon).squareRoot()
            inverseRMS[r] = rinv
            for j in 0..<n { y[r * n + j] = xr[j] * rinv * gamma[j] }
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
