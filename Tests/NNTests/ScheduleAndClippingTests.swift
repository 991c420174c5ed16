import Foundation
import NN
import TensorCore
import XCTest

/// The warm-up + cosine learning-rate schedule and global gradient-norm clipping.
final class ScheduleAndClippingTests: XCTestCase {
    func testWarmupThenCosineAtKnownSteps() throws {
        let schedule = try LearningRateSchedule(peak: 1e-3, minimum: 1e-4, warmupSteps: 10, totalSteps: 110)
        // (step, rate): linear warm-up to the peak over steps 0…9, then min + (peak − min)·½(1 + cos(π·progress)).
        let known: [(Int, Double)] = [
            (0, 1e-4), (4, 5e-4), (9, 1e-3),          // warm-up: peak·(step + 1)/10
            (10, 1e-3),                               // progress 0
            (35, 1e-4 + 9e-4 * 0.853_553_390_593_273_8), // progress ¼: ½(1 + cos π/4)
            (60, 5.5e-4),                             // progress ½
            (85, 1e-4 + 9e-4 * 0.146_446_609_406_726_24), // progress ¾
            (110, 1e-4), (111, 1e-4), (10_000, 1e-4), // the end and beyond: the minimum
        ]
        for (step, rate) in known {
            XCTAssertEqual(Double(schedule.rate(at: step)), rate, accuracy: 1e-9, "step \(step)")
        }
        // Rising during warm-up, falling afterwards, never below the minimum.
        let rates = (0..<120).map { schedule.rate(at: $0) }
        for step in 1..<10 { XCTAssertGreaterThan(rates[step], rates[step - 1]) }
        for step in 11..<110 { XCTAssertLessThan(rates[step], rates[step - 1]) }
        XCTAssertTrue(rates.allSatisfy { $0 >= 1e-4 && $0 <= 1e-3 })
    }

    func testDefaultsAndEdgeSchedules() throws {
        let noWarmup = try LearningRateSchedule(peak: 0.5, warmupSteps: 0, totalSteps: 4)
        XCTAssertEqual(noWarmup.minimum, 0.05, "the minimum defaults to a tenth of the peak")
        XCTAssertEqual(noWarmup.rate(at: 0), 0.5)
        XCTAssertEqual(Double(noWarmup.rate(at: 2)), 0.05 + 0.45 * 0.5, accuracy: 1e-7)
        XCTAssertEqual(noWarmup.rate(at: 4), 0.05)
        let allWarmup = try LearningRateSchedule(peak: 2, minimum: 0, warmupSteps: 4, totalSteps: 4)
        XCTAssertEqual((0..<4).map { allWarmup.rate(at: $0) }, [0.5, 1, 1.5, 2])
        XCTAssertEqual(allWarmup.rate(at: 4), 2, "the cosine starts at the peak")
        XCTAssertEqual(allWarmup.rate(at: 5), 0)
        let constant = try LearningRateSchedule(peak: 0.1, minimum: 0.1, warmupSteps: 0, totalSteps: 10)
        XCTAssertTrue((0..<20).allSatisfy { abs(constant.rate(at: $0) - 0.1) < 1e-8 })
        XCTAssertEqual(try JSONDecoder().decode(LearningRateSchedule.self, from: JSONEncoder().encode(noWarmup)), noWarmup)
    }

    func testInvalidSchedulesAreRejectedByName() {
        func expect(_ parameter: String, file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void) {
            XCTAssertThrowsError(try body(), file: file, line: line) { error in
                XCTAssertEqual((error as? ConfigurationError)?.parameter, parameter, "\(error)", file: file, line: line)
                XCTAssertTrue("\(error)".contains(parameter), file: file, line: line)
            }
        }
        expect("learningRate") { _ = try LearningRateSchedule(peak: -1e-3, warmupSteps: 0, totalSteps: 10) }
        expect("learningRate") { _ = try LearningRateSchedule(peak: 0, warmupSteps: 0, totalSteps: 10) }
        expect("learningRate") { _ = try LearningRateSchedule(peak: .infinity, warmupSteps: 0, totalSteps: 10) }
        expect("minimumLearningRate") { _ = try LearningRateSchedule(peak: 1e-3, minimum: 2e-3, warmupSteps: 0, totalSteps: 10) }
        expect("minimumLearningRate") { _ = try LearningRateSchedule(peak: 1e-3, minimum: -1, warmupSteps: 0, totalSteps: 10) }
        expect("steps") { _ = try LearningRateSchedule(peak: 1e-3, warmupSteps: 0, totalSteps: 0) }
        expect("warmupSteps") { _ = try LearningRateSchedule(peak: 1e-3, warmupSteps: 11, totalSteps: 10) }
        expect("warmupSteps") { _ = try LearningRateSchedule(peak: 1e-3, warmupSteps: -1, totalSteps: 10) }
        let bad = Data(#"{"peak": 0.001, "minimum": 0.0001, "warmupSteps": 20, "totalSteps": 10}"#.utf8)
        expect("warmupSteps") { _ = try JSONDecoder().decode(LearningRateSchedule.self, from: bad) }
        expect("maxGradientNorm") { try clipGradientNorm([], maxNorm: 0) }
        expect("maxGradientNorm") { try clipGradientNorm([], maxNorm: -1) }
    }

    /// Parameters whose gradients are exactly `gradients` (through L = Σ p ⊙ G).
    func parameters(withGradients gradients: [[Float]]) throws -> [Tensor] {
        try gradients.map { g in
            let p = try Tensor(zeros: [g.count], requiresGradient: true)
            try (p * Tensor(g, shape: [g.count])).sum().backward()
            return p
        }
    }

    func testClippingReturnsTheGlobalNormAndScales() throws {
        // ‖(3, 4, 12)‖ = 13 over two parameters; a third parameter has no gradient and is ignored.
        let ps = try parameters(withGradients: [[3, 4], [12]])
        let idle = try Tensor(zeros: [3], requiresGradient: true)
        let norm = try clipGradientNorm(ps + [idle], maxNorm: 6.5)
        XCTAssertEqual(norm, 13, accuracy: 1e-6, "the norm before clipping")
        let scale: Float = 6.5 / 13
        XCTAssertEqual(ps[0].gradient!.scalars[0], 3 * scale, accuracy: 1e-6)
        XCTAssertEqual(ps[0].gradient!.scalars[1], 4 * scale, accuracy: 1e-6)
        XCTAssertEqual(ps[1].gradient!.scalars[0], 12 * scale, accuracy: 1e-6)
        XCTAssertNil(idle.gradient)
        XCTAssertEqual(try clipGradientNorm(ps, maxNorm: 6.5), 6.5, accuracy: 1e-5, "clipped to the maximum")

        // Below the maximum: returned, and nothing changes.
        let small = try parameters(withGradients: [[3, 4], [12]])
        XCTAssertEqual(try clipGradientNorm(small, maxNorm: 20), 13, accuracy: 1e-6)
        XCTAssertEqual(small[0].gradient!.scalars, [3, 4])
        XCTAssertEqual(small[1].gradient!.scalars, [12])
        XCTAssertEqual(try clipGradientNorm([idle], maxNorm: 1), 0, "no gradients: norm 0")
    }

    func testClippingALargeGradientMatchesDouble() throws {
        var generator = SplitMix64(seed: 1)
        // Long enough to cross the partial-sum flushes of the norm kernel, with an odd tail.
        let gradients = [(0..<20_003).map { _ in generator.nextNormal() }, (0..<5).map { _ in generator.nextNormal() * 100 }]
        let ps = try parameters(withGradients: gradients)
        let exact = gradients.joined().reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        let norm = try clipGradientNorm(ps, maxNorm: 1)
        XCTAssertEqual(Double(norm), exact, accuracy: 1e-5 * exact)
        let after = ps.flatMap { $0.gradient!.scalars }.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        XCTAssertEqual(after, 1, accuracy: 1e-4)
        // Directions are kept: every gradient is scaled by the same factor.
        let ratio = Double(ps[1].gradient!.scalars[0]) / Double(gradients[1][0])
        XCTAssertEqual(ratio, 1 / exact, accuracy: 1e-5 / exact)
        XCTAssertEqual(Double(ps[0].gradient!.scalars[7]) / Double(gradients[0][7]), ratio, accuracy: 1e-4 * ratio)
    }
}
