/// Shape arithmetic shared by the operations: broadcasting, strides and axis splits.
public enum Shape {
    /// Row-major strides of `shape`, in elements.
    public static func strides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var running = 1
        for axis in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[axis] = running
            running *= shape[axis]
        }
        return strides
    }

    /// The broadcast shape of two operands under NumPy's rules (trailing axes aligned; an extent
    /// of 1 stretches), or an error naming the operation and both shapes.
    public static func broadcast(_ a: [Int], _ b: [Int], operation: String) throws -> [Int] {
        let rank = max(a.count, b.count)
        var result = [Int](repeating: 1, count: rank)
        for i in 0..<rank {
            let x = i < rank - a.count ? 1 : a[i - (rank - a.count)]
            let y = i < rank - b.count ? 1 : b[i - (rank - b.count)]
            guard x == y || x == 1 || y == 1 else {
                throw TensorError.shapeMismatch(operation: operation, shapes: [a, b],
                                                detail: "axis \(i) from the left of the result has extents \(x) and \(y), which do not broadcast")
            }
            result[i] = x == 1 ? y : x
        }
        return result
    }

    /// Strides for reading an operand of shape `operand` as if it had the broadcast shape
    /// `target`: broadcast axes get stride 0.
    public static func broadcastStrides(_ operand: [Int], to target: [Int]) -> [Int] {
        let own = strides(operand)
        let offset = target.count - operand.count
        return (0..<target.count).map { axis in
            let i = axis - offset
            return (i < 0 || operand[i] == 1) ? 0 : own[i]
        }
    }

    /// Splits `shape` around `axis` into (outer, extent, inner) so that element
    /// (o, j, i) sits at o·extent·inner + j·inner + i. Negative axes count from the end.
    public static func split(_ shape: [Int], axis: Int, operation: String) throws -> (outer: Int, extent: Int, inner: Int) {
        let resolved = try normalize(axis: axis, rank: shape.count, operation: operation)
        let outer = shape[..<resolved].reduce(1, *)
        let inner = shape[(resolved + 1)...].reduce(1, *)
        return (outer, shape[resolved], inner)
    }

    /// Resolves a possibly negative axis, or throws naming the operation.
    public static func normalize(axis: Int, rank: Int, operation: String) throws -> Int {
        let resolved = axis < 0 ? axis + rank : axis
        guard resolved >= 0, resolved < rank else {
            throw TensorError.indexOutOfRange(operation: operation + " (axis)", index: axis, validRange: -rank..<rank)
        }
        return resolved
    }
}

/// A walk over a broadcast result one row (last axis) at a time, with each operand's offset
/// and stride along the row. Rows are independent, so the walk can be split over cores.
struct BroadcastWalk {
    let shape: [Int]
    let rowLength: Int
    let rowCount: Int
    let operandStrides: [[Int]]

    init(shape: [Int], operands: [[Int]]) {
        self.shape = shape
        rowLength = shape.last ?? 1
        rowCount = rowLength == 0 ? 0 : shape.reduce(1, *) / rowLength
        operandStrides = operands.map { Shape.broadcastStrides($0, to: shape) }
    }

    /// Stride of operand `index` along the row.
    func rowStride(_ index: Int) -> Int { operandStrides[index].last ?? 0 }

    /// Offset of operand `index` at the start of `row`.
    func offset(row: Int, operand index: Int) -> Int {
        guard shape.count > 1 else { return 0 }
        var remainder = row
        var offset = 0
        let strides = operandStrides[index]
        // Wrapping arithmetic: an offset is below the operand's element count, which is an Int.
        for axis in stride(from: shape.count - 2, through: 0, by: -1) {
            let extent = shape[axis]
            offset = offset &+ (remainder % extent) &* strides[axis]
            remainder /= extent
        }
        return offset
    }

    /// Whether operand `index` has a broadcast (stride 0) axis of extent above 1, meaning that
    /// several result rows map onto the same operand values (accumulation must then be serial).
    func isReduced(operand index: Int) -> Bool {
        zip(shape, operandStrides[index]).contains { $0 > 1 && $1 == 0 }
    }
}
