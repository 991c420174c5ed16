import Foundation
import Interop

/// A transformers config.json: any bytes give a model configuration or a clear error.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    _ = try? TransformersImport.configuration(json: Data(bytes: bytes, count: count), path: "<fuzz>")
    return 0
}
