import Foundation
import Lab

/// A sweep file (`poslab sweep --config`): any bytes give a plan of validated runs or throw.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    if let sweep = try? JSONDecoder().decode(SweepSpecification.self, from: Data(bytes: bytes, count: count)) {
        _ = try? sweep.runs().prefix(64).map(\.name)
    }
    return 0
}
