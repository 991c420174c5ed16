/// Kernels are plain functions over buffers, so that they can be fused and tested on their own.
/// Each fast kernel has a naive twin (here, or in `Reference` in Double) that a test compares it with.
public enum Kernels {}

/// A binary elementwise operator, in scalar and SIMD form, so that kernels specialise per operator.
public protocol BinaryElementwiseOperator {
    static func apply(_ a: Float, _ b: Float) -> Float
    static func apply(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float>
}

public enum AddOperator: BinaryElementwiseOperator {
    @inline(__always) public static func apply(_ a: Float, _ b: Float) -> Float { a + b }
    @inline(__always) public static func apply(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { a + b }
}
public enum SubtractOperator: BinaryElementwiseOperator {
    @inline(__always) public static func apply(_ a: Float, _ b: Float) -> Float { a - b }
    @inline(__always) public static func apply(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { a - b }
}
public enum MultiplyOperator: BinaryElementwiseOperator {
    @inline(__always) public static func apply(_ a: Float, _ b: Float) -> Float { a * b }
    @inline(__always) public static func apply(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { a * b }
}
public enum DivideOperator: BinaryElementwiseOperator {
    @inline(__always) public static func apply(_ a: Float, _ b: Float) -> Float { a / b }
    @inline(__always) public static func apply(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { a / b }
}

@usableFromInline @inline(__always) func loadVector(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}
@usableFromInline @inline(__always) func storeVector(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
}

extension Kernels {
    /// out[i] = a[i] ⊙ b[i] over `count` contiguous values; SIMD, spread over cores when large.
    @inlinable
    public static func binary<Op: BinaryElementwiseOperator>(_: Op.Type, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                                                             _ out: UnsafeMutablePointer<Float>, count: Int) {
        Parallel.forEachChunk(count: count) { _, range in
            binaryRow(Op.self, a + range.lowerBound, 1, b + range.lowerBound, 1, out + range.lowerBound, 1, count: range.count)
        }
    }

    /// One strided row: out[j·so] = a[j·sa] ⊙ b[j·sb]. Contiguous and scalar-broadcast rows use SIMD.
    @inlinable
    public static func binaryRow<Op: BinaryElementwiseOperator>(_: Op.Type, _ a: UnsafePointer<Float>, _ sa: Int,
                                                                _ b: UnsafePointer<Float>, _ sb: Int,
                                                                _ out: UnsafeMutablePointer<Float>, _ so: Int, count n: Int) {
        var j = 0
        if sa == 1, so == 1, sb == 1 {
            while j + 8 <= n { storeVector(Op.apply(loadVector(a + j), loadVector(b + j)), out + j); j += 8 }
        } else if sa == 1, so == 1, sb == 0 {
            let vb = SIMD8<Float>(repeating: b[0])
            while j + 8 <= n { storeVector(Op.apply(loadVector(a + j), vb), out + j); j += 8 }
        } else if sa == 0, so == 1, sb == 1 {
            let va = SIMD8<Float>(repeating: a[0])
            while j + 8 <= n { storeVector(Op.apply(va, loadVector(b + j)), out + j); j += 8 }
        }
        while j < n { out[j &* so] = Op.apply(a[j &* sa], b[j &* sb]); j &+= 1 }
    }

    /// y[i] = alpha · x[i], or y[i] += alpha · x[i] when `adding` (a gradient written or added), SIMD.
    @inlinable
    public static func store(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int, alpha: Float = 1,
                             adding: Bool) {
        if adding {
            accumulate(x, into: y, count: count, alpha: alpha)
        } else {
            affine(x, y, count: count, alpha: alpha, beta: 0)
        }
    }

    /// y[i] += alpha · x[i] (BLAS axpy semantics), SIMD.
    @inlinable
    public static func accumulate(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int, alpha: Float = 1) {
        Parallel.forEachChunk(count: count) { _, range in
            let xs = x + range.lowerBound, ys = y + range.lowerBound, n = range.count
            var j = 0
            let va = SIMD8<Float>(repeating: alpha)
            while j + 8 <= n { storeVector(loadVector(ys + j) + va * loadVector(xs + j), ys + j); j += 8 }
            while j < n { ys[j] += alpha * xs[j]; j += 1 }
        }
    }

    /// out[i] = alpha · x[i] + beta, SIMD.
    @inlinable
    public static func affine(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, count: Int, alpha: Float, beta: Float) {
        Parallel.forEachChunk(count: count) { _, range in
            let xs = x + range.lowerBound, os = out + range.lowerBound, n = range.count
            var j = 0
            let va = SIMD8<Float>(repeating: alpha), vb = SIMD8<Float>(repeating: beta)
            while j + 8 <= n { storeVector(va * loadVector(xs + j) + vb, os + j); j += 8 }
            while j < n { os[j] = alpha * xs[j] + beta; j += 1 }
        }
    }

    /// Naive twin of `binary`: one scalar loop, no SIMD, no threads.
    public static func naiveBinary<Op: BinaryElementwiseOperator>(_: Op.Type, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                                                                  _ out: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { out[i] = Op.apply(a[i], b[i]) }
    }
}

extension Kernels {
    /// y[j] += Σ_r x[r·columns + j]: the column sums of a row-major [rows, columns] matrix (a bias's
    /// gradient), SIMD across columns. Each column is summed down the rows in order by one thread
    /// (columns split over the cores when the matrix is large), so the result is the same on every run.
    /// With `accumulate` false, y[j] = Σ_r x[r·columns + j].
    ///
    /// The rows are read as they lie, a block of up to `columnSumBlock` columns at a time, into running
    /// totals that stay in the L1 cache, four rows per pass over them (one 8-column strip summed down
    /// all rows at a time read every cache line twice; in a reference-configuration step this went from
    /// 2.2–2.4% to 2.1%: reading the matrix is what it costs).
    public static func accumulateColumnSums(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, rows: Int,
                                            columns: Int, accumulate: Bool = true) {
        guard columns > 0 else { return }
        if !accumulate { y.update(repeating: 0, count: columns) }
        guard rows > 0 else { return }
        let blocks = (columns + 7) / 8
        let chunks = rows * columns >= 2 * Parallel.minimumElementsPerChunk ? min(Parallel.coreCount, blocks) : 1
        let body = { (chunk: Int) in
            let start = chunk * blocks / chunks * 8, end = min(columns, (chunk + 1) * blocks / chunks * 8)
            withUnsafeTemporaryAllocation(of: Float.self, capacity: columnSumBlock) { buffer in
                let total = buffer.baseAddress!
                var j0 = start
                while j0 < end {
                    let width = min(columnSumBlock, end - j0), vectorWidth = width & ~7
                    total.update(repeating: 0, count: width)
                    var r = 0
                    while r < rows {
                        // Up to four rows added in order to each total: (((t + x_r) + x_r+1) + …).
                        let count = min(4, rows - r), row = x + (r &* columns &+ j0)
                        var j = 0
                        while j < vectorWidth {
                            var t = loadVector(total + j)
                            for i in 0..<count { t += loadVector(row + (i &* columns &+ j)) }
                            storeVector(t, total + j)
                            j += 8
                        }
                        while j < width {
                            for i in 0..<count { total[j] += row[i &* columns &+ j] }
                            j += 1
                        }
                        r += count
                    }
                    for j in 0..<width { y[j0 + j] += total[j] }
                    j0 += width
                }
            }
        }
        if chunks <= 1 { body(0) } else { Parallel.perform(iterations: chunks, body) }
    }

    /// Columns summed per pass of `accumulateColumnSums` (their totals: 4 KiB).
    public static let columnSumBlock = 1024

    /// Naive twin of `accumulateColumnSums`: one scalar loop, no SIMD, no threads.
    public static func naiveColumnSums(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, rows: Int, columns: Int,
                                       accumulate: Bool = true) {
        for j in 0..<columns {
            var total: Float = 0
            for r in 0..<rows { total += x[r * columns + j] }
            y[j] = accumulate ? y[j] + total : total
        }
    }
}
