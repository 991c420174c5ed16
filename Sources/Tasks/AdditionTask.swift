import Models
import TensorCore

/// The order digits are written in.
public enum DigitOrder: String, Codable, CaseIterable, Sendable {
    /// Operands and sum least significant digit first (Lee et al. 2024, "Teaching Arithmetic to
    /// Small Transformers", reversed format): each sum digit follows the digits it depends on.
    case leastSignificantFirst
    /// Operands and sum as usually written.
    case mostSignificantFirst
    /// Operands most significant digit first, the sum least significant first (the format of Cho et
    /// al. 2024, "Position Coupling").
    case reversedResult
}

/// Where the "+" and "=" markers of an addition sit among the coupled position IDs.
public enum AdditionMarkers: String, Codable, CaseIterable, Sendable {
    /// As Cho et al. 2024 (their code gives "+" and "=" the ID one step below the units digit):
    /// both markers take the ID of the significance before the sum's first written digit: −1 when
    /// the sum is written units first, so every sum digit, the first included, is predicted from a
    /// token whose ID is one significance below its own, at every offset; for a sum written most
    /// significant first, one above the highest significance the operands allow (n, the carry).
    case coupled
    /// Fixed IDs (plus 1, separator 2) whatever the offset: the layout of runs made before
    /// 2026-11-29. With random offsets the first sum digit is predicted from an ID that says
    /// nothing about where the units digits are.
    case fixed
}

/// Multi-digit addition a + b = c with Position Coupling (Cho et al. 2024, "Position Coupling:
/// Improving Length Generalization of Arithmetic Transformers Using Task Structure"): the position
/// IDs follow significance, so digits of equal significance in a, b and c share one ID and the
/// model finds the digits to add by position whatever the length; training draws a random offset
/// per example from 0…maximumOffset, as the paper does, so that the IDs of long operands are seen.
///
/// `size` = n is the digit count of the longer operand; the other has 1…n digits (drawn
/// uniformly; which operand is the longer is random), leading digits non-zero. With
/// `padOperands`, both are written with n digits and the sum with n + 1 (leading zeros, as in Cho
/// et al.), so every example has the longest length. Digits are written in `digitOrder`.
///
///     tokens     addition: 6 5 3 + 4 9 = 2 0 7     (653 + 49 = 702 in the default .reversedResult)
///     positions  0         4 3 2 1 3 2 1 2 3 4     (offset 0)
///
/// Tokens: prefix 10, a's digits, plus 4, b's digits, separator 1, c's digits; at most
/// 3n + 4 tokens (n + 1 sum digits); the loss counts c's digits.
///
/// Position IDs (`Example.positions`): prefix 0, a digit of significance j (j = 0 for units)
/// 2 + offset + j, in a, b and c alike; "+" and "=" as `markers` says (by default the ID of
/// significance −1, 1 + offset, for a sum written units first).
/// None exceeds 3 + maximumOffset + n (`maximumPositionID`).
/// `Example.positionTargets` holds each token's successor's ID, the targets of Predictive Position
/// Coupling (Golowich et al. 2025), where a head learns to predict the coupled IDs so that they
/// need not be computed from the input at inference.
public struct AdditionTask: SequenceTask {
    public static let prefixPosition = 0, firstDigitPosition = 2
    /// The markers' IDs in the `.fixed` layout.
    public static let fixedPlusPosition = 1, fixedSeparatorPosition = 2
    public let digitOrder: DigitOrder
    public let maximumOffset: Int
    public let padOperands: Bool
    public let markers: AdditionMarkers

    /// `maximumOffset` ≥ 0: the random offset of the digits' position IDs (0 for evaluation).
    public init(digitOrder: DigitOrder = .reversedResult, maximumOffset: Int = 0, padOperands: Bool = false,
                markers: AdditionMarkers = .coupled) throws {
        try requireArgument(maximumOffset >= 0, "AdditionTask", "maximumOffset", maximumOffset, "a non-negative offset")
        self.digitOrder = digitOrder
        self.maximumOffset = maximumOffset
        self.padOperands = padOperands
        self.markers = markers
    }

    public var vocabularySize: Int { TaskVocabulary.size }
    public var name: String { "addition" }
    public func sequenceLength(size: Int) -> Int { 3 * size + 4 }
    /// Evaluation places the digits at offset 0, as Cho et al. do: a longer sum's IDs then reach
    /// 3 + n, which training covered when its offsets went up to n − 10 or more.
    public var evaluationTask: any SequenceTask {
        (try? AdditionTask(digitOrder: digitOrder, maximumOffset: 0, padOperands: padOperands, markers: markers)) ?? self
    }

    /// A bound on the position IDs of an example of `size` (for tables of learned position
    /// embeddings): reached by "=" above a sum written most significant first (`.coupled`), or by
    /// the carry digit of the `.fixed` layout, whose digits start one ID higher.
    public func maximumPositionID(size: Int) -> Int { 3 + maximumOffset + size }

    public func example(size: Int, generator: inout SplitMix64) throws -> Example {
        try checkSize(size, "AdditionTask")
        let shorter = generator.nextInt(in: 1..<(size + 1))
        var a = randomNumber(digits: size, generator: &generator), b = randomNumber(digits: shorter, generator: &generator)
        if generator.nextInt(in: 0..<2) == 1 { swap(&a, &b) }
        let offset = generator.nextInt(in: 0..<(maximumOffset + 1))
        return try example(a: a, b: b, offset: offset, width: padOperands ? size : nil)
    }

    /// The example of a + b, operands as digit arrays least significant first, position IDs shifted by
    /// `offset`; `width` pads operands to `width` digits and the sum to `width` + 1.
    public func example(a: [Int], b: [Int], offset: Int = 0, width: Int? = nil) throws -> Example {
        for (name, digits) in [("a", a), ("b", b)] {
            try requireArgument(!digits.isEmpty && digits.allSatisfy { (0...9).contains($0) }, "AdditionTask", name, digits,
                                "one or more digits 0…9, least significant first")
            try requireArgument(width.map { digits.count <= $0 } ?? true, "AdditionTask", "width", width ?? 0, "at least \(name)'s \(digits.count) digits")
        }
        let c = AdditionTask.sum(a, b)
        let (pa, pb, pc) = (padded(a, width), padded(b, width), padded(c, width.map { $0 + 1 }))
        let operandsReversed = digitOrder == .leastSignificantFirst, sumReversed = digitOrder != .mostSignificantFirst
        // Significance of each written digit, in writing order.
        func written(_ digits: [Int], _ leastFirst: Bool) -> [(digit: Int, significance: Int)] {
            let indexed = digits.enumerated().map { ($0.element, $0.offset) }
            return leastFirst ? indexed : indexed.reversed()
        }
        let wa = written(pa, operandsReversed), wb = written(pb, operandsReversed), wc = written(pc, sumReversed)
        // The fixed layout started the digits at 3 (IDs 1 and 2 were the markers').
        let first = markers == .fixed ? AdditionTask.firstDigitPosition + 1 : AdditionTask.firstDigitPosition
        let digitID = { (significance: Int) in first + offset + significance }
        let (plusID, separatorID): (Int, Int)
        switch markers {
        case .fixed: (plusID, separatorID) = (AdditionTask.fixedPlusPosition, AdditionTask.fixedSeparatorPosition)
        case .coupled:
            // Before the sum's first written digit: −1 units first; else one above the highest
            // significance a sum of these operands can have (not the sum's own length, which is the answer's).
            let beforeSum = sumReversed ? -1 : max(pa.count, pb.count) + 1
            (plusID, separatorID) = (digitID(beforeSum), digitID(beforeSum))
        }
        let input = wa.map { TaskVocabulary.digit($0.digit) } + [TaskVocabulary.plus] + wb.map { TaskVocabulary.digit($0.digit) }
        let positions = [AdditionTask.prefixPosition] + wa.map { digitID($0.significance) } + [plusID]
            + wb.map { digitID($0.significance) } + [separatorID] + wc.map { digitID($0.significance) }
        return Example.framed(prefix: TaskVocabulary.prefix(.addition), input: input,
                              target: wc.map { TaskVocabulary.digit($0.digit) }, positions: positions)
    }

    /// a + b, digit arrays least significant first.
    public static func sum(_ a: [Int], _ b: [Int]) -> [Int] {
        var c: [Int] = [], carry = 0
        for i in 0..<max(a.count, b.count) {
            let s = (i < a.count ? a[i] : 0) + (i < b.count ? b[i] : 0) + carry
            c.append(s % 10)
            carry = s / 10
        }
        if carry > 0 { c.append(carry) }
        return c
    }

    private func padded(_ digits: [Int], _ width: Int?) -> [Int] {
        digits + [Int](repeating: 0, count: max(0, (width ?? 0) - digits.count))
    }

    /// `digits` random digits least significant first, the most significant non-zero (unless a single digit).
    private func randomNumber(digits: Int, generator: inout SplitMix64) -> [Int] {
        (0..<digits).map { i in i == digits - 1 && digits > 1 ? generator.nextInt(in: 1..<10) : generator.nextInt(in: 0..<10) }
    }
}
