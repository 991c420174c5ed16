import Foundation
import Tasks

/// tokenizer.json: any bytes give a tokenizer or a clear error; a tokenizer encodes and decodes
/// a text with Unicode, whitespace runs and an added token without trapping.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    guard let tokenizer = try? ByteLevelBPE(json: Data(bytes: bytes, count: count), path: "<fuzz>") else { return 0 }
    if let ids = try? tokenizer.encode("In the beginning — ünïcode  \t\n<|endoftext|>12345 it's") {
        _ = try? tokenizer.decode(ids)
    }
    return 0
}
