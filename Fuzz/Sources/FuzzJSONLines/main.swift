import Foundation
import Tasks

/// The JSON-lines task loader: any bytes give a task or a clear error.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    _ = try? JSONLinesTask(bytes: Array(UnsafeBufferPointer(start: bytes, count: count)), path: "<fuzz>")
    return 0
}
