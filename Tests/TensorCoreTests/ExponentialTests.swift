import Foundation
import TensorCore
import XCTest

/// The SIMD exponential against its naive twin, Foundation's expf.
final class ExponentialTests: XCTestCase {
    func testLanesMatchExpfAcrossTheRange() {
        var generator = SplitMix64(seed: 8)
        var worst: Float = 0
        for _ in 0..<20_000 {
            let lanes = SIMD8<Float>((0..<8).map { _ in Float(generator.nextUniform()) * 180 - 90 })
            let fast = Kernels.exponential(lanes)
            for i in 0..<8 where lanes[i] > -87 && lanes[i] < 88.3 { // beyond 88.7 expf overflows to +∞
                worst = max(worst, abs(fast[i] - expf(lanes[i])) / expf(lanes[i]))
            }
        }
        XCTAssertLessThan(worst, 4e-7)
        let edges = SIMD8<Float>(0, -.infinity, -100, 1, -1, 88, 1e-8, -87.3)
        let result = Kernels.exponential(edges)
        XCTAssertEqual(result[0], 1)
        XCTAssertEqual(result[1], 0, "the causal mask's −∞ must give exactly 0")
        XCTAssertEqual(result[2], 0)
        XCTAssertEqual(result[3], expf(1), accuracy: 1e-6)
        XCTAssertEqual(result[5], expf(88), accuracy: expf(88) * 1e-6)
    }

    func testExponentiateHandlesTailsAndReturnsTheSum() {
        for count in [0, 1, 7, 8, 9, 23, 64] {
            var values = (0..<count).map { Float($0) * 0.37 - 3 }
            let reference = values.map { expf($0 - 0.5) }
            let sum = count == 0 ? 0 : values.withUnsafeMutableBufferPointer { Kernels.exponentiate($0.baseAddress!, count: count, subtracting: 0.5) }
            for (a, b) in zip(values, reference) { XCTAssertEqual(a, b, accuracy: b * 1e-6, "count \(count)") }
            XCTAssertEqual(sum, reference.reduce(0, +), accuracy: max(1e-6, reference.reduce(0, +) * 1e-5), "count \(count)")
        }
    }
}
