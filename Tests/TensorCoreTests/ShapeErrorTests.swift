import TensorCore
import XCTest

/// Bad shapes, indices, axes and arguments throw a `TensorError` (never a trap, never a silently
/// wrong result: release builds run with -Ounchecked) whose message names the operation and the
/// shapes or values involved.
final class ShapeErrorTests: XCTestCase {
    func tensor(_ shape: [Int]) throws -> Tensor { try Tensor(zeros: shape) }

    func testElementwiseShapesThatDoNotBroadcast() throws {
        let a = try tensor([2, 3]), b = try tensor([4, 3]), c = try tensor([3, 2])
        assertTensorError(["add", "[2, 3]", "[4, 3]"]) { try a + b }
        assertTensorError(["subtract", "[2, 3]", "[3, 2]"]) { try a - c }
        assertTensorError(["multiply", "[4, 3]", "[3, 2]"]) { try b * c }
        assertTensorError(["divide", "[2, 3]", "[2]"]) { try a / self.tensor([2]) }
        assertTensorError(["add", "[2, 3, 3]", "[2, 2, 3]"]) { try self.tensor([2, 3, 3]) + self.tensor([2, 2, 3]) }
        // Broadcastable shapes do not throw.
        XCTAssertEqual(try (a + tensor([1, 3])).shape, [2, 3])
        XCTAssertEqual(try (tensor([2, 1, 3]) * tensor([4, 1])).shape, [2, 4, 3])
    }

    func testMatrixProductShapes() throws {
        let a = try tensor([2, 3, 4])
        assertTensorError(["matmul", "[2, 3, 4]", "[5, 6]", "inner"]) { try a.matmul(self.tensor([5, 6])) }
        assertTensorError(["matmul", "[2, 3, 4]", "[4, 6]"]) { try a.matmul(self.tensor([4, 6]), transposeSelf: true) }
        assertTensorError(["matmul", "[4]", "[4, 6]"]) { try self.tensor([4]).matmul(self.tensor([4, 6])) }
        assertTensorError(["matmul", "[3, 4]", "[2, 4, 5]"]) { try self.tensor([3, 4]).matmul(self.tensor([2, 4, 5])) }
        assertTensorError(["matmul", "[2, 3, 4]", "[3, 4, 5]", "leading"]) { try a.matmul(self.tensor([3, 4, 5])) }
        XCTAssertEqual(try a.matmul(tensor([6, 4]), transposeOther: true).shape, [2, 3, 6])
        XCTAssertEqual(try a.matmul(tensor([2, 3, 5]), transposeSelf: true).shape, [2, 4, 5])
    }

    func testConcatenateShapes() throws {
        assertTensorError(["concatenate", "[2, 3]", "[2, 4]", "axis 0"]) {
            try Tensor.concatenate([self.tensor([2, 3]), self.tensor([2, 4])], axis: 0)
        }
        assertTensorError(["concatenate", "[2, 3]", "[2, 3, 1]", "ranks"]) {
            try Tensor.concatenate([self.tensor([2, 3]), self.tensor([2, 3, 1])], axis: 0)
        }
        assertTensorError(["concatenate", "tensors"]) { try Tensor.concatenate([], axis: 0) }
        assertTensorError(["concatenate", "axis", "2"]) { try Tensor.concatenate([self.tensor([2, 3])], axis: 2) }
        XCTAssertEqual(try Tensor.concatenate([tensor([2, 3]), tensor([2, 4])], axis: 1).shape, [2, 7])
    }

    func testGatherIndicesOutOfRange() throws {
        let table = try tensor([5, 3])
        assertTensorError(["embedding", "5", "0..<5"]) { try table.gatherRows([0, 5], indexShape: [2]) }
        assertTensorError(["embedding", "-1"]) { try table.gatherRows([-1], indexShape: [1]) }
        assertTensorError(["embedding", "[2, 2]", "[3]"]) { try table.gatherRows([0, 1, 2], indexShape: [2, 2]) }
        assertTensorError(["embedding", "[5, 3, 1]"]) { try self.tensor([5, 3, 1]).gatherRows([0], indexShape: [1]) }
        let x = try tensor([2, 3, 4])
        assertTensorError(["gatheringLastAxis", "4", "0..<4"]) { try x.gatheringLastAxis([Int](repeating: 4, count: 6), columns: 2) }
        assertTensorError(["gatheringLastAxis", "[2, 3, 4]"]) { try x.gatheringLastAxis([0, 1], columns: 2) }
        assertTensorError(["gatheringLastAxis"]) { try x.gatheringLastAxis([Int](repeating: 0, count: 18), columns: 2, indexBatches: 3) }
        assertTensorError(["gatheringLastAxis", "[4]"]) { try self.tensor([4]).gatheringLastAxis([0], columns: 1) }
    }

    func testInvalidAxes() throws {
        let x = try tensor([2, 3])
        assertTensorError(["softmax", "axis", "2", "-2..<2"]) { try x.softmax(axis: 2) }
        assertTensorError(["logSoftmax", "axis", "-3"]) { try x.logSoftmax(axis: -3) }
        assertTensorError(["sum(axis:)", "axis", "5"]) { try x.sum(axis: 5) }
        assertTensorError(["mean(axis:)", "axis"]) { try x.mean(axis: -3) }
        assertTensorError(["transpose", "axis"]) { try x.transposed(0, 2) }
        assertTensorError(["slice", "axis"]) { try x.sliced(axis: 2, 0..<1) }
        assertTensorError(["l2Normalize", "axis"]) { try x.l2Normalized(axis: 9) }
        assertTensorError(["softmax", "axis"]) { try Tensor(scalar: 1).softmax() }
        assertTensorError(["permute", "order", "[0, 0]", "[2, 3]"]) { try x.permuted([0, 0]) }
        assertTensorError(["permute", "order"]) { try x.permuted([1, 0, 2]) }
    }

    func testRangesCountsAndArguments() throws {
        let x = try tensor([2, 3])
        assertTensorError(["slice", "0..<4", "[2, 3]"]) { try x.sliced(axis: 1, 0..<4) }
        assertTensorError(["slice", "-1"]) { try x.sliced(axis: 0, -1..<1) }
        assertTensorError(["reshape", "[2, 3]", "[4, 2]"]) { try x.reshaped([4, 2]) }
        assertTensorError(["reshape", "−1"]) { try x.reshaped([-1, -1]) }
        assertTensorError(["reshape", "[2, 3]", "[4, -1]"]) { try x.reshaped([4, -1]) }
        assertTensorError(["Tensor(_:shape:)", "[2, 2]", "[3]"]) { try Tensor([1, 2, 3], shape: [2, 2]) }
        assertTensorError(["Tensor(zeros:)", "shape", "[2, -1]"]) { try Tensor(zeros: [2, -1]) }
        assertTensorError(["Tensor(normal:)", "shape"]) { var g = SplitMix64(seed: 0); return try Tensor(normal: [-3], generator: &g) }
        assertTensorError(["item", "[2, 3]"]) { try x.item() }
        assertTensorError(["assign", "[2, 3]", "[5]"]) { try x.assign(from: self.tensor([5])) }
        assertTensorError(["mean", "[0]"]) { try self.tensor([0]).mean() }
        assertTensorError(["mean(axis:)", "[2, 0]"]) { try self.tensor([2, 0]).mean(axis: 1) }
        var generator = SplitMix64(seed: 0)
        assertTensorError(["dropout", "probability", "1.0"]) { try x.dropout(probability: 1, generator: &generator) }
        assertTensorError(["dropout", "probability", "-0.5"]) { try x.dropout(probability: -0.5, generator: &generator) }
    }

    func testNormalizationShapes() throws {
        let x = try tensor([2, 4])
        assertTensorError(["layerNorm", "[2, 4]", "[3]"]) { try x.layerNorm(gamma: self.tensor([3]), beta: nil) }
        assertTensorError(["layerNorm", "[4]", "[5]"]) { try x.layerNorm(gamma: self.tensor([4]), beta: self.tensor([5])) }
        assertTensorError(["rmsNorm", "[2, 4]", "[4, 1]"]) { try x.rmsNorm(gamma: self.tensor([4, 1])) }
        assertTensorError(["layerNorm", "[2, 0]"]) { try self.tensor([2, 0]).layerNorm(gamma: self.tensor([0]), beta: nil) }
    }

    func testCrossEntropyArguments() throws {
        let logits = try tensor([2, 3, 5])
        assertTensorError(["crossEntropy", "[2, 3, 5]", "[5]"]) { try logits.crossEntropy(targets: [0, 1, 2, 3, 4]) }
        assertTensorError(["crossEntropy", "row 4", "5", "0..<5"]) { try logits.crossEntropy(targets: [0, 1, 2, 3, 5, 0]) }
        assertTensorError(["crossEntropy", "-1"]) { try logits.crossEntropy(targets: [-1, 1, 2, 3, 4, 0]) }
        assertTensorError(["crossEntropy", "[2, 3, 5]", "[2]"]) { try logits.crossEntropy(targets: [Int](repeating: 0, count: 6), mask: [true, false]) }
        assertTensorError(["crossEntropy", "mask"]) {
            try logits.crossEntropy(targets: [Int](repeating: 0, count: 6), mask: [Bool](repeating: false, count: 6))
        }
        assertTensorError(["crossEntropy", "[2, 0]"]) { try self.tensor([2, 0]).crossEntropy(targets: []) }
    }

    func testRotationArguments() throws {
        let x = try tensor([1, 2, 3, 8])
        let table = [Float](repeating: 1, count: 3 * 4)
        assertTensorError(["rotatedPairs", "rotaryDimension", "7"]) { try x.rotatedPairs(cos: table, sin: table, rotaryDimension: 7, pairing: .interleaved) }
        assertTensorError(["rotatedPairs", "rotaryDimension", "10"]) { try x.rotatedPairs(cos: table, sin: table, rotaryDimension: 10, pairing: .halfSplit) }
        assertTensorError(["rotatedPairs", "[1, 2, 3, 8]", "[12]", "[11]"]) {
            try x.rotatedPairs(cos: table, sin: Array(table.dropLast()), rotaryDimension: 8, pairing: .interleaved)
        }
        assertTensorError(["rotatedPairs", "[2, 3, 8]"]) { try self.tensor([2, 3, 8]).rotatedPairs(cos: table, sin: table, rotaryDimension: 8, pairing: .interleaved) }
    }

    func testBackwardArguments() throws {
        let x = try Tensor([1, 2, 3], shape: [3], requiresGradient: true)
        let y = x.scaled(by: 2)
        assertTensorError(["backward", "[3]", "one-element"]) { try y.backward() }
        assertTensorError(["backward", "[3]", "[2]"]) { try y.backward(seed: self.tensor([2])) }
        XCTAssertNil(x.gradient, "a rejected backward leaves no gradient")
    }

    func testMessagesReadWell() {
        let shape = TensorError.shapeMismatch(operation: "add", shapes: [[2, 3], [4]], detail: "why")
        XCTAssertEqual(shape.description, "add: incompatible shapes [2, 3] and [4]: why")
        XCTAssertEqual(TensorError.indexOutOfRange(operation: "embedding", index: 7, validRange: 0..<5).description,
                       "embedding: index 7 is outside 0..<5")
        XCTAssertEqual(TensorError.invalidArgument(operation: "dropout", parameter: "probability", value: "2", allowed: "0 ≤ p < 1").description,
                       "dropout: invalid probability = 2; allowed: 0 ≤ p < 1")
        XCTAssertEqual(shape.errorDescription, shape.description)
    }
}
