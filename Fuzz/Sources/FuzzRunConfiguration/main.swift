import Foundation
import Lab

/// A run's config.json: any bytes decode to a validated run or throw, never trap or hang.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    if let run = try? JSONDecoder().decode(RunSpecification.self, from: Data(bytes: bytes, count: count)) {
        _ = run.name
        _ = try? run.modelConfiguration()
    }
    return 0
}
