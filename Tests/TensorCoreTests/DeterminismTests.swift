import CKernels
import Foundation
import TensorCore
import XCTest

/// Same seed, same bits: random streams, initialisations, dropout masks, and whole
/// forward/backward passes (including the parallel kernels and OpenBLAS) are reproducible.
final class DeterminismTests: XCTestCase {
    /// Published SplitMix64 outputs (Steele, Lea and Flood's algorithm as in Vigna's reference C code).
    func testASlurmTaskUsesTheCoresItWasGiven() {
        XCTAssertEqual(Parallel.coreCount(active: 8, environment: [:]), 8)
        XCTAssertEqual(Parallel.coreCount(active: 8, environment: ["SLURM_CPUS_PER_TASK": "2"]), 2)
        XCTAssertEqual(Parallel.coreCount(active: 2, environment: ["SLURM_CPUS_PER_TASK": "16"]), 2, "never more than exist")
        for bad in ["0", "-3", "two", ""] {
            XCTAssertEqual(Parallel.coreCount(active: 4, environment: ["SLURM_CPUS_PER_TASK": bad]), 4, bad)
        }
        // An affinity mask (taskset, a cpuset) or a cgroup quota (docker --cpus) of fewer CPUs.
        XCTAssertEqual(Parallel.coreCount(active: 8, allowed: 1, environment: [:]), 1)
        XCTAssertEqual(Parallel.coreCount(active: 8, allowed: 0, quota: nil, environment: [:]), 8, "0: unknown")
        XCTAssertEqual(Parallel.coreCount(active: 8, allowed: 8, quota: 3,
                                          environment: ["SLURM_CPUS_PER_TASK": "4"]), 3)
        XCTAssertEqual(Parallel.cgroupCPUQuota("150000 100000\n"), 1, "1.5 CPUs: one whole core")
        XCTAssertEqual(Parallel.cgroupCPUQuota("400000 100000"), 4)
        XCTAssertEqual(Parallel.cgroupCPUQuota("50000 100000"), 1, "at least one")
        for none in ["max 100000\n", "", "garbage", "100000", "-1 100000", "0 100000", "inf 1", "1e400 1", "1.5 1"] {
            XCTAssertNil(Parallel.cgroupCPUQuota(none), none)
        }
        XCTAssertNil(Parallel.cgroupCPUQuota(nil))
        XCTAssertEqual(Parallel.cgroupCPUQuota("9223372036854775807 1"), Int.max, "no trap at the largest quota")
        if ck_cpus_allowed() > 0 { XCTAssertLessThanOrEqual(Parallel.coreCount, Int(ck_cpus_allowed())) }
    }

    func testSplitMix64KnownAnswers() {
        var zero = SplitMix64(seed: 0)
        XCTAssertEqual([zero.next(), zero.next(), zero.next()], [0xE220_A839_7B1D_CDAF, 0x6E78_9E6A_A1B9_65F4, 0x06C4_5D18_8009_454F])
        var other = SplitMix64(seed: 1_234_567)
        XCTAssertEqual([other.next(), other.next(), other.next()],
                       [6_457_827_717_110_365_317, 3_203_168_211_198_807_973, 9_817_491_932_198_370_423])
    }

    func testSameSeedSameStream() {
        var a = SplitMix64(seed: 42), b = SplitMix64(seed: 42), c = SplitMix64(seed: 43)
        let streamA = (0..<1000).map { _ in a.next() }, streamB = (0..<1000).map { _ in b.next() }
        let streamC = (0..<1000).map { _ in c.next() }
        XCTAssertEqual(streamA, streamB)
        XCTAssertNotEqual(streamA, streamC)
        XCTAssertEqual(Set(streamA).count, 1000, "no repeats in a short stream")
        XCTAssertEqual(a, b, "equal states after equal draws")
    }

    func testDerivedValuesAndSplitStreams() throws {
        var a = SplitMix64(seed: 7), b = SplitMix64(seed: 7)
        for _ in 0..<100 {
            let raw = b.next()
            let u = a.nextUniform()
            XCTAssertEqual(u, Float(raw >> 40) / 16_777_216, "a uniform is the top 24 bits")
            XCTAssertTrue((0..<1).contains(u))
        }
        var normals1 = SplitMix64(seed: 8), normals2 = SplitMix64(seed: 8)
        XCTAssertEqual(bits((0..<100).map { _ in normals1.nextNormal() }), bits((0..<100).map { _ in normals2.nextNormal() }))
        var ints1 = SplitMix64(seed: 9), ints2 = SplitMix64(seed: 9)
        let drawn = (0..<200).map { _ in ints1.nextInt(in: 3..<10) }
        XCTAssertEqual(drawn, (0..<200).map { _ in ints2.nextInt(in: 3..<10) })
        XCTAssertTrue(drawn.allSatisfy { (3..<10).contains($0) })
        XCTAssertEqual(Set(drawn), Set(3..<10))

        // split() advances the parent by one draw and seeds the child from it.
        var parent = SplitMix64(seed: 10), replay = SplitMix64(seed: 10)
        var child = parent.split()
        XCTAssertEqual(child, SplitMix64(seed: replay.next()))
        XCTAssertEqual(parent, replay)
        XCTAssertNotEqual((0..<10).map { _ in child.next() }, (0..<10).map { _ in parent.next() })

        // A saved state resumes the same stream.
        var saved = SplitMix64(seed: 11)
        _ = (0..<5).map { _ in saved.next() }
        var restored = try JSONDecoder().decode(SplitMix64.self, from: JSONEncoder().encode(saved))
        XCTAssertEqual((0..<10).map { _ in restored.next() }, (0..<10).map { _ in saved.next() })
    }

    func testNormalDrawsHaveTheRightMoments() {
        var generator = SplitMix64(seed: 12)
        let values = (0..<200_000).map { _ in Double(generator.nextNormal()) }
        let mean = values.reduce(0, +) / Double(values.count)
        let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count)
        XCTAssertEqual(mean, 0, accuracy: 0.01)
        XCTAssertEqual(variance, 1, accuracy: 0.02)
        XCTAssertTrue(values.allSatisfy(\.isFinite))
    }

    func testInitialisersAreReproducible() throws {
        var g1 = SplitMix64(seed: 13), g2 = SplitMix64(seed: 13), g3 = SplitMix64(seed: 14)
        let a = try Tensor(normal: [64, 33], standardDeviation: 0.02, generator: &g1)
        let b = try Tensor(normal: [64, 33], standardDeviation: 0.02, generator: &g2)
        let c = try Tensor(normal: [64, 33], standardDeviation: 0.02, generator: &g3)
        XCTAssertEqual(bits(a.scalars), bits(b.scalars))
        XCTAssertNotEqual(bits(a.scalars), bits(c.scalars))
        let u1 = try Tensor(uniform: [100], lower: -2, upper: 3, generator: &g1)
        let u2 = try Tensor(uniform: [100], lower: -2, upper: 3, generator: &g2)
        XCTAssertEqual(bits(u1.scalars), bits(u2.scalars))
        XCTAssertTrue(u1.scalars.allSatisfy { $0 >= -2 && $0 < 3 })
    }

    func testDropoutMasksAreReproducible() throws {
        let x = try Tensor(repeating: 1, shape: [5_000])
        func mask(_ seed: UInt64) throws -> [UInt32] {
            var generator = SplitMix64(seed: seed)
            return bits(try x.dropout(probability: 0.4, generator: &generator).scalars)
        }
        XCTAssertEqual(try mask(15), try mask(15))
        XCTAssertNotEqual(try mask(15), try mask(16))
        // Consecutive calls on one generator give different masks (the stream advances).
        var generator = SplitMix64(seed: 15)
        let first = bits(try x.dropout(probability: 0.4, generator: &generator).scalars)
        let second = bits(try x.dropout(probability: 0.4, generator: &generator).scalars)
        XCTAssertEqual(first, try mask(15))
        XCTAssertNotEqual(first, second)
    }

    /// A two-layer step with every kind of kernel, sized so that several of them run on two cores.
    func forwardBackward(seed: UInt64) throws -> (loss: [UInt32], gradients: [[UInt32]]) {
        var generator = SplitMix64(seed: seed)
        let (batch, length, width, vocabulary) = (4, 128, 96, 80) // gather, layerNorm, softmax and loss all split
        let embedding = try Tensor(normal: [vocabulary, width], standardDeviation: 0.5, generator: &generator, requiresGradient: true)
        let w1 = try Tensor(normal: [width, 4 * width], standardDeviation: 0.1, generator: &generator, requiresGradient: true)
        let w2 = try Tensor(normal: [4 * width, vocabulary], standardDeviation: 0.1, generator: &generator, requiresGradient: true)
        let gamma = try Tensor(repeating: 1, shape: [width], requiresGradient: true)
        let beta = try Tensor(zeros: [width], requiresGradient: true)
        let ids = (0..<(batch * length)).map { _ in generator.nextInt(in: 0..<vocabulary) }
        let targets = (0..<(batch * length)).map { _ in generator.nextInt(in: 0..<vocabulary) }
        let mask = (0..<(batch * length)).map { $0 % 3 != 0 }

        let x = try embedding.gatherRows(ids, indexShape: [batch, length])
        let normalized = try x.layerNorm(gamma: gamma, beta: beta)
        let attention = try normalized.matmul(normalized, transposeOther: true).scaled(by: 0.1).softmax()
        let mixed = try attention.matmul(normalized) + x
        var dropoutGenerator = generator.split()
        let hidden = try mixed.matmul(w1).gelu().dropout(probability: 0.1, generator: &dropoutGenerator)
        let logits = try hidden.matmul(w2)
        let loss = try logits.crossEntropy(targets: targets, mask: mask)
        try loss.backward()
        let parameters = [embedding, w1, w2, gamma, beta]
        return (bits(loss.scalars), try parameters.map { bits(try XCTUnwrap($0.gradient).scalars) })
    }

    func testForwardAndBackwardTwiceGiveIdenticalBits() throws {
        let first = try forwardBackward(seed: 21), second = try forwardBackward(seed: 21)
        XCTAssertEqual(first.loss, second.loss)
        XCTAssertEqual(first.gradients.count, second.gradients.count)
        for (index, (a, b)) in zip(first.gradients, second.gradients).enumerated() {
            XCTAssertEqual(a, b, "parameter \(index): gradients must match bit for bit")
        }
        let other = try forwardBackward(seed: 22)
        XCTAssertNotEqual(first.loss, other.loss)
    }

    func testParallelReductionsAreReproducible() {
        let x = Random.floats(5 * Parallel.minimumElementsPerChunk + 3, seed: 23)
        let sums = (0..<5).map { _ in Kernels.sum(x, count: x.count).bitPattern }
        XCTAssertEqual(Set(sums).count, 1)
        let squares = (0..<5).map { _ in Kernels.sumOfSquares(x, count: x.count).bitPattern }
        XCTAssertEqual(Set(squares).count, 1)
    }
}
