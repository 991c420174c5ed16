import Foundation
import PositionalEncodings
import TensorCore

/// A scheme as `--pe` takes it (`rope{"rope_type": "yarn", …}`), resolved for a run, built, and
/// its rotary frequencies computed at a longer length: a clear error or values, never a trap.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: bytes, count: count), as: UTF8.self)
    guard let specification = try? SchemeSpecification(parsing: text) else { return 0 }
    _ = specification.description
    guard let scheme = try? specification.resolved(trainingLength: 64, maximumLength: 256, modelDimension: 64) else { return 0 }
    var generator = SplitMix64(seed: 0)
    let encoding = try? scheme.makeEncoding(modelDimension: 64, numberOfHeads: 4, generator: &generator)
    if let rotary = encoding as? RotaryEncoding { _ = try? rotary.frequencies(sequenceLength: 1024) }
    return 0
}
