import TensorCore
import XCTest

/// `Tensor.causalAttention` (blocked, online softmax) against its naive twin, the materialised
/// composition softmax(scale·QKᵀ + bias + mask)·V built from separately checked ops.
final class BlockedAttentionTests: XCTestCase {
    struct Case { let b, h, tq, tk, d: Int; let biased: Bool; let perRow: Bool }

    /// The materialised reference: [B, H, Tq, Tk] scores.
    func materialized(_ q: Tensor, _ k: Tensor, _ v: Tensor, scale: Float, bias: DistanceBias?) throws -> Tensor {
        let (b, h, tq, tk) = (q.shape[0], q.shape[1], q.shape[2], k.shape[2])
        var scores = try q.matmul(k, transposeOther: true).scaled(by: scale)
        var mask = [Float](repeating: 0, count: b * tq * tk)
        var rows = [Int](repeating: 0, count: b * tq * tk)
        for batch in 0..<b {
            let pb = bias.map { batch % $0.positionBatches } ?? 0
            for i in 0..<tq {
                for j in 0..<tk {
                    let index = (batch * tq + i) * tk + j
                    if j > i + tk - tq { mask[index] = -.infinity; continue }
                    if let bias { rows[index] = bias.queryPositions[pb * tq + i] - bias.keyPositions[pb * tk + j] - bias.minimumDistance }
                }
            }
        }
        if let bias {
            // table [H, span] → gather columns per (batch, query, key): [H, B·Tq·Tk] → [B, H, Tq, Tk].
            let gathered = try bias.table.transposed(0, 1).gatherRows(rows, indexShape: [b, tq, tk])
            scores = try scores + gathered.permuted([0, 3, 1, 2])
            _ = h
        }
        scores = try scores + Tensor(mask, shape: [b, 1, tq, tk])
        return try scores.softmax(axis: -1).matmul(v)
    }

    func testBlockedMatchesMaterializedForwardAndBackward() throws {
        let cases = [
            Case(b: 1, h: 1, tq: 1, tk: 1, d: 4, biased: false, perRow: false),
            Case(b: 2, h: 3, tq: 5, tk: 5, d: 8, biased: true, perRow: false),
            Case(b: 1, h: 2, tq: 64, tk: 64, d: 16, biased: true, perRow: false),
            Case(b: 2, h: 2, tq: 65, tk: 65, d: 8, biased: false, perRow: false),
            Case(b: 2, h: 2, tq: 130, tk: 130, d: 32, biased: true, perRow: true),
            Case(b: 2, h: 2, tq: 3, tk: 70, d: 8, biased: true, perRow: true),   // queries after a cache
            Case(b: 1, h: 4, tq: 70, tk: 200, d: 8, biased: true, perRow: false), // chunked prefill
        ]
        // Across the tiles' edges, whatever their sizes: one row or column past a query block and
        // a key block, and several key blocks with the queries after a cache.
        let (qb, kb) = (Kernels.attentionQueryBlock, Kernels.attentionKeyBlock)
        let edges = [
            Case(b: 1, h: 1, tq: qb + 1, tk: qb + 1, d: 8, biased: true, perRow: false),
            Case(b: 1, h: 2, tq: kb + 1, tk: kb + 1, d: 4, biased: false, perRow: false),
            Case(b: 1, h: 1, tq: qb + 3, tk: 2 * kb + 5, d: 4, biased: true, perRow: true),
        ]
        var generator = SplitMix64(seed: 21)
        for c in cases + edges {
            let label = "\(c)"
            let q = try Tensor(normal: [c.b, c.h, c.tq, c.d], generator: &generator, requiresGradient: true)
            let k = try Tensor(normal: [c.b, c.h, c.tk, c.d], generator: &generator, requiresGradient: true)
            let v = try Tensor(normal: [c.b, c.h, c.tk, c.d], generator: &generator, requiresGradient: true)
            var bias: DistanceBias?
            if c.biased {
                let n = c.perRow ? c.b : 1
                // Sorted random positions with gaps (as randomized positions are), per row when asked.
                var qp: [Int] = [], kp: [Int] = []
                for _ in 0..<n {
                    var p = generator.nextInt(in: 0..<5), row: [Int] = []
                    for _ in 0..<c.tk { row.append(p); p += 1 + generator.nextInt(in: 0..<3) }
                    kp += row; qp += row.suffix(c.tq)
                }
                let span = (qp.max()! - kp.min()!) + 1
                let table = try Tensor(normal: [c.h, span], generator: &generator, requiresGradient: true)
                bias = DistanceBias(table: table, minimumDistance: 0, queryPositions: qp, keyPositions: kp, positionBatches: n)
            }
            let weights = try Tensor(normal: [c.b, c.h, c.tq, c.d], generator: &generator)
            let parameters = [q, k, v] + (bias.map { [$0.table] } ?? [])

            let reference = try materialized(q, k, v, scale: 0.3, bias: bias)
            try (reference * weights).sum().backward()
            let referenceGradients = parameters.map { $0.gradient!.scalars }
            parameters.forEach { $0.zeroGradient() }

            let blocked = try Tensor.causalAttention(queries: q, keys: k, values: v, scale: 0.3, distanceBias: bias)
            try (blocked * weights).sum().backward()
            assertClose(blocked.scalars, reference.scalars, 1e-5, "\(label) forward")
            for (index, parameter) in parameters.enumerated() {
                assertClose(parameter.gradient!.scalars, referenceGradients[index], 1e-4, "\(label) gradient \(index)")
            }
        }
    }

    func testFiniteDifferencesOfTheBlockedOp() throws {
        var generator = SplitMix64(seed: 4)
        let q = try Tensor(normal: [1, 2, 3, 4], generator: &generator, requiresGradient: true)
        let k = try Tensor(normal: [1, 2, 5, 4], generator: &generator, requiresGradient: true)
        let v = try Tensor(normal: [1, 2, 5, 4], generator: &generator, requiresGradient: true)
        let table = try Tensor(normal: [2, 5], generator: &generator, requiresGradient: true)
        let bias = DistanceBias(table: table, minimumDistance: 0, queryPositions: [2, 3, 4], keyPositions: [0, 1, 2, 3, 4], positionBatches: 1)
        let weights = try Tensor(normal: [1, 2, 3, 4], generator: &generator)
        func loss() throws -> Tensor { try (Tensor.causalAttention(queries: q, keys: k, values: v, scale: 0.5, distanceBias: bias) * weights).sum() }
        try loss().backward()
        for parameter in [q, k, v, table] {
            let analytic = parameter.gradient!.scalars
            for index in 0..<parameter.count {
                let saved = parameter.storage.pointer[index], step: Float = 1e-2
                parameter.storage.pointer[index] = saved + step
                let up = try GradientMode.withoutGradient { try loss().item() }
                parameter.storage.pointer[index] = saved - step
                let down = try GradientMode.withoutGradient { try loss().item() }
                parameter.storage.pointer[index] = saved
                XCTAssertEqual(analytic[index], (up - down) / (2 * step), accuracy: 2e-3 * max(1, abs(analytic[index])), "\(parameter.shape) [\(index)]")
            }
        }
    }

    func testBadShapesAndOutOfTableDistancesThrow() throws {
        let q = try Tensor(zeros: [1, 2, 3, 4]), k = try Tensor(zeros: [1, 2, 2, 4])
        XCTAssertThrowsError(try Tensor.causalAttention(queries: q, keys: k, values: k, scale: 1)) {
            XCTAssertTrue("\($0)".contains("causalAttention"), "\($0)")
        }
        let table = try Tensor(zeros: [2, 2])
        let bias = DistanceBias(table: table, minimumDistance: 0, queryPositions: [0, 1, 2], keyPositions: [0, 1, 2], positionBatches: 1)
        let x = try Tensor(zeros: [1, 2, 3, 4])
        XCTAssertThrowsError(try Tensor.causalAttention(queries: x, keys: x, values: x, scale: 1, distanceBias: bias)) {
            XCTAssertTrue("\($0)".contains("distance bias table"), "\($0)")
        }
    }

    private func assertClose(_ a: [Float], _ b: [Float], _ tolerance: Float, _ message: String, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, message, line: line)
        var worst: Float = 0
        for (x, y) in zip(a, b) { worst = max(worst, abs(x - y) / max(1, abs(y))) }
        XCTAssertLessThanOrEqual(worst, tolerance, message, line: line)
    }
}
