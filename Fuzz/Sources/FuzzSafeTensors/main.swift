import Foundation
import Models

/// The safetensors reader: any bytes give a file or a `FormatError`, never a trap.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    _ = try? SafeTensors.decode(Data(bytes: bytes, count: count), path: "<fuzz>")
    return 0
}
