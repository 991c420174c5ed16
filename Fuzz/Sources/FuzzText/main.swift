import Foundation
import Tasks

/// The text loader: any bytes give a byte-level task or a clear error.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    _ = try? TextTask(bytes: Array(UnsafeBufferPointer(start: bytes, count: count)), path: "<fuzz>")
    return 0
}
