import NN
import TensorCore
import XCTest

/// Linear, Embedding, LayerNorm and RMSNorm: shapes, parameters, values and configuration errors.
final class LayerTests: XCTestCase {
    func testLinearShapesParametersAndValues() throws {
        var generator = SplitMix64(seed: 1)
        let layer = try Linear(inputs: 5, outputs: 3, generator: &generator)
        XCTAssertEqual(layer.weight.shape, [3, 5], "PyTorch's [outputs, inputs] layout")
        XCTAssertEqual(layer.bias?.shape, [3])
        XCTAssertEqual(layer.parameterCount, 5 * 3 + 3)
        XCTAssertEqual(layer.namedParameters.map(\.name), ["weight", "bias"])
        XCTAssertTrue(layer.parameters.allSatisfy(\.requiresGradient))
        XCTAssertEqual(layer.bias?.scalars, [0, 0, 0], "the bias starts at zero")
        let std = (layer.weight.scalars.reduce(0.0) { $0 + Double($1 * $1) } / 15).squareRoot()
        XCTAssertEqual(std, 0.02, accuracy: 0.015, "weights from N(0, 0.02²)")

        try layer.bias!.assign(from: Tensor([0.5, -1, 2], shape: [3]))
        let x = try Tensor(normal: [2, 4, 5], generator: &generator)
        let y = try layer(x)
        XCTAssertEqual(y.shape, [2, 4, 3])
        // y = x·Wᵀ + b, in Double.
        let xs = x.scalars, w = layer.weight.scalars, b = layer.bias!.scalars
        var expected: [Double] = []
        for r in 0..<8 {
            for o in 0..<3 {
                var total = Double(b[o])
                for i in 0..<5 { total += Double(xs[r * 5 + i]) * Double(w[o * 5 + i]) }
                expected.append(total)
            }
        }
        assertClose(y.scalars, expected, tolerance: 1e-5)

        // Gradients reach both parameters: dL/db is the sum of the output gradients over rows.
        try y.sum().backward()
        XCTAssertEqual(layer.bias!.gradient!.scalars, [8, 8, 8])
        XCTAssertEqual(layer.weight.gradient?.shape, [3, 5])
        layer.zeroGradients()
        XCTAssertTrue(layer.parameters.allSatisfy { $0.gradient == nil })

        let noBias = try Linear(inputs: 4, outputs: 6, bias: false, generator: &generator)
        XCTAssertNil(noBias.bias)
        XCTAssertEqual(noBias.parameterCount, 24)
        XCTAssertEqual(noBias.namedParameters.map(\.name), ["weight"])
        XCTAssertEqual(try noBias(Tensor(zeros: [7, 4])).shape, [7, 6])
        XCTAssertThrowsError(try noBias(Tensor(zeros: [7, 5])), "wrong input width") { error in
            XCTAssertTrue("\(error)".contains("linear") && "\(error)".contains("5"), "\(error)")
        }
    }

    func testEmbeddingShapesAndLookups() throws {
        var generator = SplitMix64(seed: 2)
        let embedding = try Embedding(count: 10, dimension: 4, generator: &generator)
        XCTAssertEqual(embedding.weight.shape, [10, 4])
        XCTAssertEqual(embedding.parameterCount, 40)
        XCTAssertEqual(embedding.namedParameters.map(\.name), ["weight"])
        let ids = [3, 0, 9, 3, 1, 2]
        let y = try embedding(ids, shape: [2, 3])
        XCTAssertEqual(y.shape, [2, 3, 4])
        let table = embedding.weight.scalars
        for (i, id) in ids.enumerated() {
            XCTAssertEqual(Array(y.scalars[(i * 4)..<((i + 1) * 4)]), Array(table[(id * 4)..<((id + 1) * 4)]))
        }
        XCTAssertThrowsError(try embedding([10], shape: [1]))
        XCTAssertThrowsError(try embedding([0, 1], shape: [3]))
    }

    func testNormalizationLayers() throws {
        let layerNorm = try LayerNorm(dimension: 6)
        XCTAssertEqual(layerNorm.parameterCount, 12)
        XCTAssertEqual(layerNorm.namedParameters.map(\.name), ["weight", "bias"])
        XCTAssertEqual(layerNorm.scale.scalars, [Float](repeating: 1, count: 6))
        XCTAssertEqual(layerNorm.shift?.scalars, [Float](repeating: 0, count: 6))
        XCTAssertEqual(layerNorm.epsilon, 1e-5)
        XCTAssertEqual(try LayerNorm(dimension: 6, bias: false).parameterCount, 6)
        var generator = SplitMix64(seed: 3)
        let x = try Tensor(normal: [2, 5, 6], standardDeviation: 3, generator: &generator)
        let y = try layerNorm(x)
        XCTAssertEqual(y.shape, [2, 5, 6])
        // At initialisation each row is standardised: mean 0, variance 1 (up to ε).
        for row in 0..<10 {
            let values = y.scalars[(row * 6)..<((row + 1) * 6)].map(Double.init)
            let mean = values.reduce(0, +) / 6
            XCTAssertEqual(mean, 0, accuracy: 1e-5)
            XCTAssertEqual(values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / 6, 1, accuracy: 1e-3)
        }

        let rmsNorm = try RMSNorm(dimension: 6)
        XCTAssertEqual(rmsNorm.parameterCount, 6)
        XCTAssertEqual(rmsNorm.namedParameters.map(\.name), ["weight"])
        XCTAssertEqual(rmsNorm.epsilon, 1e-6)
        let z = try rmsNorm(x)
        XCTAssertEqual(z.shape, [2, 5, 6])
        for row in 0..<10 {
            let meanSquare = z.scalars[(row * 6)..<((row + 1) * 6)].reduce(0.0) { $0 + Double($1 * $1) } / 6
            XCTAssertEqual(meanSquare, 1, accuracy: 1e-4, "unit root mean square at initialisation")
        }
        XCTAssertThrowsError(try rmsNorm(Tensor(zeros: [2, 5])))
        XCTAssertThrowsError(try layerNorm(Tensor(zeros: [2, 7])))
    }

    func testNamesArePrefixedForSubLayers() throws {
        var generator = SplitMix64(seed: 4)
        let layer = try Linear(inputs: 2, outputs: 2, generator: &generator)
        XCTAssertEqual(prefixed("blocks.0.mlp", layer.namedParameters).map(\.name), ["blocks.0.mlp.weight", "blocks.0.mlp.bias"])
        XCTAssertTrue(prefixed("x", layer.namedParameters)[0].tensor === layer.weight)
    }

    func testInvalidLayerConfigurationsAreRejectedByName() {
        func expect(_ parameter: String, file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void) {
            XCTAssertThrowsError(try body(), file: file, line: line) { error in
                XCTAssertEqual((error as? ConfigurationError)?.parameter, parameter, "\(error)", file: file, line: line)
                XCTAssertTrue("\(error)".contains("invalid \(parameter)"), "\(error)", file: file, line: line)
            }
        }
        var generator = SplitMix64(seed: 5)
        expect("inputs") { _ = try Linear(inputs: 0, outputs: 3, generator: &generator) }
        expect("outputs") { _ = try Linear(inputs: 3, outputs: -1, generator: &generator) }
        expect("count") { _ = try Embedding(count: 0, dimension: 3, generator: &generator) }
        expect("dimension") { _ = try Embedding(count: 3, dimension: 0, generator: &generator) }
        expect("dimension") { _ = try LayerNorm(dimension: 0) }
        expect("epsilon") { _ = try LayerNorm(dimension: 4, epsilon: 0) }
        expect("dimension") { _ = try RMSNorm(dimension: -2) }
        expect("epsilon") { _ = try RMSNorm(dimension: 4, epsilon: -1e-6) }
    }
}
