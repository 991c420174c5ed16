import CKernels
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

    func testAVX2ExponentialMatchesExpfAndKeepsNaN() throws {
        try XCTSkipUnless(ck_has_avx2_fma() != 0, "this CPU has no AVX2/FMA; the portable kernel is tested alone")
        var generator = SplitMix64(seed: 9)
        var values = (0..<20_000).map { _ in Float(generator.nextUniform()) * 175 - 87 }
        let reference = values.map { expf($0) }
        _ = values.withUnsafeMutableBufferPointer { ck_exponentiate($0.baseAddress!, $0.count, 0) }
        var worst: Float = 0
        for (a, b) in zip(values, reference) where b.isFinite && b > 0 { worst = max(worst, abs(a - b) / b) }
        XCTAssertLessThan(worst, 4e-7)
        var edges: [Float] = [0, -.infinity, -100, 1, .nan, 88, 1e-8, -87.3, 2]
        _ = edges.withUnsafeMutableBufferPointer { ck_exponentiate($0.baseAddress!, $0.count, 0) }
        XCTAssertEqual(edges[0], 1)
        XCTAssertEqual(edges[1], 0, "the causal mask's −∞ must give exactly 0")
        XCTAssertEqual(edges[2], 0)
        XCTAssertTrue(edges[4].isNaN, "a NaN score stays NaN: a diverged model must not look finite")
        XCTAssertEqual(edges[5], expf(88), accuracy: expf(88) * 1e-6)
        XCTAssertEqual(edges[8], expf(2), accuracy: expf(2) * 1e-6, "the tail lane")
    }

    func testExponentiateHandlesTailsAndReturnsTheSum() {
        for count in [0, 1, 7, 8, 9, 23, 64] {
            var values = (0..<count).map { Float($0) * 0.37 - 3 }
            let reference = values.map { expf($0 - 0.5) }
            let original = values
            for kernels in elementwiseKernels {
                values = original + [.nan]  // a sentinel: nothing past count is read into the sum or written
                let sum = values.withUnsafeMutableBufferPointer { pointer in
                    kernels == .avx2FMA ? ck_exponentiate(pointer.baseAddress!, count, 0.5)
                        : Kernels.exponentiatePortable(pointer.baseAddress!, count: count, subtracting: 0.5)
                }
                XCTAssertTrue(values[count].isNaN)
                for (a, b) in zip(values, reference) { XCTAssertEqual(a, b, accuracy: b * 1e-6, "\(kernels) count \(count)") }
                XCTAssertEqual(sum, reference.reduce(0, +), accuracy: max(1e-6, reference.reduce(0, +) * 1e-5), "\(kernels) count \(count)")
            }
        }
    }

    func testMaximumMatchesAScalarLoop() {
        var generator = SplitMix64(seed: 5)
        for count in [0, 1, 7, 8, 9, 23, 64, 257] {
            var values = (0..<count).map { _ in Float(generator.nextInt(in: 0..<2001) - 1000) / 7 }
            if count > 3 { values[1] = -.infinity }  // masked scores
            let naive = values.reduce(-Float.infinity) { $1 > $0 ? $1 : $0 }
            let storage = values + [.infinity]  // a sentinel past count, never read
            XCTAssertEqual(storage.withUnsafeBufferPointer { Kernels.maximumPortable($0.baseAddress!, count: count) }, naive, "count \(count)")
            if ck_has_avx2_fma() != 0 {
                XCTAssertEqual(storage.withUnsafeBufferPointer { ck_maximum($0.baseAddress!, count) }, naive, "avx2 count \(count)")
            }
        }
    }
}
