import Foundation
import NN
import TensorCore

/// How queries and keys are rotated: base, pairing, the rotated fraction of each head and the
/// context-extension scaling. Validated on creation; Codable with transformers' key names for the
/// scaling part.
public struct RotaryConfiguration: Codable, Equatable, Sendable {
    /// θ_i = base^(−2i/R) before scaling (transformers' `rope_theta`).
    public var base: Double
    public var pairing: RotaryPairing
    /// The fraction of the head dimension that is rotated (`partial_rotary_factor`); the rest passes through.
    public var partialRotaryFactor: Double
    public var scaling: RoPEScaling
    /// The model's `max_position_embeddings`, read by dynamic, yarn and longrope scaling.
    public var maximumPositionEmbeddings: Int?

    public init(base: Double = 10_000, pairing: RotaryPairing = .halfSplit, partialRotaryFactor: Double = 1,
                scaling: RoPEScaling = .none, maximumPositionEmbeddings: Int? = nil) throws {
        guard base > 1, base.isFinite else { throw ConfigurationError(parameter: "base", value: "\(base)", allowed: "a finite number above 1") }
        guard partialRotaryFactor > 0, partialRotaryFactor <= 1 else {
            throw ConfigurationError(parameter: "partial_rotary_factor", value: "\(partialRotaryFactor)", allowed: "0 < fraction ≤ 1")
        }
        if let m = maximumPositionEmbeddings, m <= 0 {
            throw ConfigurationError(parameter: "max_position_embeddings", value: "\(m)", allowed: "a positive length")
        }
        self.base = base
        self.pairing = pairing
        self.partialRotaryFactor = partialRotaryFactor
        self.scaling = scaling
        self.maximumPositionEmbeddings = maximumPositionEmbeddings
    }

    /// A configuration from a pasted transformers dictionary; `rope_theta` and
    /// `partial_rotary_factor` inside it override `base` and `partialRotaryFactor`, except for
    /// "proportional", whose `partial_rotary_factor` is the kept fraction of a whole-head rotation
    /// (transformers' `_compute_proportional_rope_parameters`), not a smaller rotary dimension.
    public init(ropeParameters: [String: JSONValue], base: Double = 10_000, pairing: RotaryPairing = .halfSplit,
                partialRotaryFactor: Double = 1, maximumPositionEmbeddings: Int? = nil) throws {
        let reader = ParameterReader(values: ropeParameters, context: "rope_parameters")
        let scaling = try RoPEScaling(parameters: ropeParameters)
        var partial = try reader.number("partial_rotary_factor") ?? partialRotaryFactor
        if case .proportional = scaling { partial = partialRotaryFactor }
        try self.init(base: try reader.number("rope_theta") ?? base, pairing: pairing, partialRotaryFactor: partial, scaling: scaling,
                      maximumPositionEmbeddings: try reader.number("max_position_embeddings").map { value in
                          guard value >= 1, value <= 1e9, value == value.rounded() else {
                              throw ConfigurationError(parameter: "rope_parameters.max_position_embeddings", value: "\(value)",
                                                       allowed: "a whole number from 1 to 1000000000")
                          }
                          return Int(value)
                      } ?? maximumPositionEmbeddings)
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try self.init(base: c.decode(Double.self, forKey: .base), pairing: c.decode(RotaryPairing.self, forKey: .pairing),
                      partialRotaryFactor: c.decode(Double.self, forKey: .partialRotaryFactor),
                      scaling: c.decode(RoPEScaling.self, forKey: .scaling),
                      maximumPositionEmbeddings: c.decodeIfPresent(Int.self, forKey: .maximumPositionEmbeddings))
    }

    /// R = ⌊D · partial_rotary_factor⌋, which must be even and positive (as transformers computes it).
    public func rotaryDimension(headDimension: Int) throws -> Int {
        let r = Int(Double(headDimension) * partialRotaryFactor)
        guard r > 0, r % 2 == 0 else {
            throw ConfigurationError(parameter: "partial_rotary_factor", value: "\(partialRotaryFactor) of head dimension \(headDimension) = \(r) dimensions",
                                     allowed: "a fraction leaving an even, positive number of rotated dimensions")
        }
        return r
    }
}

/// RoPE (Su et al. 2021, "RoFormer: Enhanced Transformer with Rotary Position Embedding"): pair i
/// of a query or key at position m is rotated by the angle m·θ_i, so that
///
///     ⟨R(mθ)q, R(nθ)k⟩ = ⟨q, R((n − m)θ)k⟩
///
/// depends on positions only through n − m. Injection point: queries and keys, before their dot
/// product. Covers both pairings, partial rotation, the context-extension scalings of
/// `RoPEScaling`, and (through `positionIndependentPairs`) HoPE.
public final class RotaryEncoding: PositionalEncoding {
    public let configuration: RotaryConfiguration
    public let headDimension: Int
    public let rotaryDimension: Int
    /// Pairs left unrotated (θ = 0): HoPE's position-independent components.
    public let positionIndependentPairs: Set<Int>

    public init(configuration: RotaryConfiguration, headDimension: Int, positionIndependentPairs: Set<Int> = []) throws {
        self.configuration = configuration
        self.headDimension = headDimension
        rotaryDimension = try configuration.rotaryDimension(headDimension: headDimension)
        self.positionIndependentPairs = positionIndependentPairs
        _ = try frequencies(sequenceLength: nil) // reject a bad scaling (wrong factor count, missing length) now
    }

    public var injectionPoint: InjectionPoint { .queryKeyRotation }
    public var rotationDependsOnLength: Bool { configuration.scaling.dependsOnLength }
    public var namedParameters: [(name: String, tensor: Tensor)] { [] }

    /// θ_i after scaling, with HoPE's position-independent pairs set to 0, and the attention factor.
    public func frequencies(sequenceLength: Int?) throws -> RoPEFrequencies {
        var f = try configuration.scaling.frequencies(rotaryDimension: rotaryDimension, base: configuration.base,
                                                      maximumPositionEmbeddings: configuration.maximumPositionEmbeddings,
                                                      sequenceLength: sequenceLength)
        for i in positionIndependentPairs where i < f.inverseFrequencies.count { f.inverseFrequencies[i] = 0 }
        return f
    }

    /// cos(m·θ_i)·a and sin(m·θ_i)·a for every position of `positions`: [1 or B, T, R/2], one table
    /// when every row has the same positions. Angles are formed in Double.
    public func tables(positions: PositionIDs, sequenceLength: Int) throws -> (cos: [Float], sin: [Float]) {
        let f = try frequencies(sequenceLength: sequenceLength)
        let half = rotaryDimension / 2, t = positions.length
        let rowsEqual = positions.batchSize <= 1 || (1..<positions.batchSize).allSatisfy { positions.row($0).elementsEqual(positions.row(0)) }
        let rows = rowsEqual ? min(1, positions.batchSize) : positions.batchSize
        var cosines = [Float](repeating: 0, count: rows * t * half), sines = cosines
        for index in 0..<(rows * t) {
            let m = Double(positions.values[index])
            for i in 0..<half {
                let angle = m * f.inverseFrequencies[i]
                cosines[index * half + i] = Float(cos(angle) * f.attentionFactor)
                sines[index * half + i] = Float(sin(angle) * f.attentionFactor)
            }
        }
        return (cosines, sines)
    }

    public func rotate(_ x: Tensor, positions: PositionIDs, sequenceLength: Int, layout: HeadLayout) throws -> Tensor {
        guard x.rank == 4, x.shape[0] == positions.batchSize, x.shape[layout.timeAxis] == positions.length,
              x.shape[3] == headDimension else {
            throw TensorError.shapeMismatch(operation: "RotaryEncoding.rotate",
                                            shapes: [x.shape, [positions.batchSize, positions.length]],
                                            detail: "expects \(layout.legend) with D = \(headDimension) and positions [B, T]")
        }
        let (c, s) = try tables(positions: positions, sequenceLength: sequenceLength)
        return try x.rotatedPairs(cos: c, sin: s, rotaryDimension: rotaryDimension, pairing: configuration.pairing,
                                  layout: layout)
    }
}
