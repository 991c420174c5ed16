import Foundation
import NN
import PositionalEncodings
import TensorCore
#if canImport(Glibc)
import Glibc
#endif

/// The safetensors format (https://huggingface.co/docs/safetensors, "Format"): an 8-byte
/// little-endian unsigned header length N; N bytes of UTF-8 JSON mapping each tensor name to
/// {"dtype", "shape", "data_offsets": [begin, end]} (offsets into the byte buffer that follows
/// the header) plus an optional "__metadata__" map of strings to strings; then the buffer, each
/// tensor's values little-endian and row-major. Tensors are laid out in name order without gaps,
/// and the header is padded with spaces to a multiple of 8 bytes, as the reference writer does.
public enum SafeTensors {
    public struct File {
        public var tensors: [String: Tensor]
        public var metadata: [String: String]
    }

    public struct FormatError: Error, CustomStringConvertible {
        public let path: String
        public let reason: String
        public var description: String { "\(path): not a readable safetensors file: \(reason)" }
    }

    /// The file's bytes for `tensors` (Float32, "F32") and `metadata`.
    public static func encode(_ tensors: [(name: String, tensor: Tensor)], metadata: [String: String] = [:]) throws -> Data {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        let sorted = tensors.sorted { $0.name < $1.name }
        for (name, tensor) in sorted {
            guard header[name] == nil, name != "__metadata__" else {
                throw TensorError.invalidArgument(operation: "SafeTensors.encode", parameter: "name", value: name, allowed: "unique tensor names")
            }
            header[name] = ["dtype": "F32", "shape": tensor.shape, "data_offsets": [offset, offset + 4 * tensor.count]] as [String: Any]
            offset += 4 * tensor.count
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        json.append(contentsOf: [UInt8](repeating: 0x20, count: (8 - json.count % 8) % 8))
        var data = Data(capacity: 8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(json)
        for (_, tensor) in sorted {
            // Float32 is little-endian on every platform Swift runs this engine on (x86-64, arm64).
            data.append(UnsafeBufferPointer(start: tensor.storage.pointer, count: tensor.count))
        }
        return data
    }

    /// Writes `tensors` atomically to `url`.
    public static func write(_ tensors: [(name: String, tensor: Tensor)], metadata: [String: String] = [:], to url: URL) throws {
        try AtomicFile.write(encode(tensors, metadata: metadata), to: url)
    }

    /// Reads a file; F32 tensors load as they are, F16, BF16 and F64 convert to Float32.
    public static func read(_ url: URL) throws -> File {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw FormatError(path: url.path, reason: "cannot read it (\(error.localizedDescription))")
        }
        return try decode(data, path: url.path)
    }

    public static func decode(_ data: Data, path: String = "<data>") throws -> File {
        let index = try Index(data, path: path)
        var tensors: [String: Tensor] = [:]
        for name in index.names { tensors[name] = try index.tensor(name) }
        return File(tensors: tensors, metadata: index.metadata)
    }

    /// A file's header, checked whole (every entry, and that the tensors tile the buffer), with
    /// tensors decoded one at a time on request: loading a model need not hold every tensor twice.
    /// `Index(mapping:)` maps the file instead of reading it.
    public struct Index {
        public let metadata: [String: String]
        let data: Data
        let path: String
        let entries: [String: (dtype: String, shape: [Int], count: Int, range: Range<Int>)]

        public var names: [String] { entries.keys.sorted() }
        public func shape(of name: String) -> [Int]? { entries[name]?.shape }

        /// The file at `url`, memory-mapped.
        public init(mapping url: URL) throws {
            let data: Data
            do { data = try Data(contentsOf: url, options: .alwaysMapped) } catch {
                throw FormatError(path: url.path, reason: "cannot read it (\(error.localizedDescription))")
            }
            try self.init(data, path: url.path)
        }

        /// The tensor `name` in Float32, or nil when the file has none of that name.
        public func tensor(_ name: String) throws -> Tensor? {
            guard let e = entries[name] else { return nil }
            return SafeTensors.tensor(data[e.range], dtype: e.dtype, count: e.count, shape: e.shape)
        }

        public init(_ data: Data, path: String) throws {
            func fail(_ reason: String) -> FormatError { FormatError(path: path, reason: reason) }
            guard data.count >= 8 else { throw fail("shorter than the 8-byte header length") }
            let headerLength = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
            guard headerLength <= UInt64(data.count - 8) else { throw fail("header length \(headerLength) exceeds the file") }
            let start = data.startIndex + 8, bufferStart = start + Int(headerLength)
            guard let header = try? JSONSerialization.jsonObject(with: data[start..<bufferStart]) as? [String: Any] else {
                throw fail("the header is not a JSON object")
            }
            // JSONSerialization keeps one of two entries of the same name: which bytes a tensor has must not be a guess.
            if let name = DuplicateKeys.first(in: Data(data[start..<bufferStart])) { throw fail("the header names \(name) twice") }
            var metadata: [String: String] = [:]
            var entries: [String: (dtype: String, shape: [Int], count: Int, range: Range<Int>)] = [:]
            if let given = header["__metadata__"] {
                guard let strings = given as? [String: String] else { throw fail("__metadata__ must map strings to strings") }
                metadata = strings
            }
            let bufferLength = data.count - 8 - Int(headerLength)
            var spans: [(range: Range<Int>, name: String)] = []
            for (name, entry) in header where name != "__metadata__" {
                guard let entry = entry as? [String: Any], let dtype = entry["dtype"] as? String,
                      let shape = entry["shape"] as? [Int], let offsets = entry["data_offsets"] as? [Int], offsets.count == 2 else {
                    throw fail("entry \"\(name)\" lacks dtype, shape or data_offsets")
                }
                let widths = ["F32": 4, "F16": 2, "BF16": 2, "F64": 8]
                guard let width = widths[dtype] else { throw fail("tensor \"\(name)\" has dtype \(dtype); readable: \(widths.keys.sorted())") }
                guard shape.allSatisfy({ $0 >= 0 }) else { throw fail("tensor \"\(name)\" has a negative dimension in \(shape)") }
                // Sizes multiply with overflow checks: a header may claim more elements than an Int holds.
                var count = 1
                for extent in shape + [width] {
                    let (product, overflow) = count.multipliedReportingOverflow(by: extent)
                    guard !overflow else { throw fail("tensor \"\(name)\" of shape \(shape) \(dtype) has more bytes than an Int counts") }
                    count = product
                }
                let bytes = count
                count /= width
                guard offsets[0] >= 0, offsets[0] <= offsets[1], offsets[1] <= bufferLength, offsets[1] - offsets[0] == bytes else {
                    throw fail("tensor \"\(name)\" has offsets \(offsets) that do not hold \(shape) \(dtype) in a \(bufferLength)-byte buffer")
                }
                spans.append((offsets[0]..<offsets[1], name))
                entries[name] = (dtype, shape, count, (bufferStart + offsets[0])..<(bufferStart + offsets[1]))
            }
            // The format's rule: tensors tile the buffer, with no overlap, hole or trailing byte.
            var end = 0
            for span in spans.sorted(by: { ($0.range.lowerBound, $0.range.upperBound) < ($1.range.lowerBound, $1.range.upperBound) }) {
                guard span.range.lowerBound == end else {
                    throw fail(span.range.lowerBound < end ? "tensor \"\(span.name)\" overlaps another tensor's bytes"
                                                          : "bytes \(end)..<\(span.range.lowerBound) of the buffer belong to no tensor")
                }
                end = span.range.upperBound
            }
            guard end == bufferLength else { throw fail("\(bufferLength - end) trailing bytes after the last tensor") }
            self.metadata = metadata; self.data = data; self.path = path; self.entries = entries
        }
    }

    /// Little-endian values of `dtype` as a Float32 tensor, converted straight from the file's bytes.
    static func tensor(_ bytes: Data, dtype: String, count: Int, shape: [Int]) -> Tensor {
        let storage = TensorStorage(count: count, zeroed: false)
        let out = storage.pointer
        bytes.withUnsafeBytes { raw in
            switch dtype {
            case "F32":
                for i in 0..<count { out[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
            case "F64":
                for i in 0..<count { out[i] = Float(Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))) }
            case "BF16":
                for i in 0..<count { out[i] = Float(bitPattern: UInt32(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) << 16) }
            default:
                for i in 0..<count { out[i] = Float(Float16(bitPattern: UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))) }
            }
        }
        return Tensor(shape: shape, storage: storage)
    }
}

/// Writes files so that a crash at any moment leaves either the old file or the new one, never a
/// torn one: write a temporary file in the same folder, fsync it, rename it over the target,
/// fsync the folder (the rename is atomic on POSIX file systems).
public enum AtomicFile {
    /// Refuses a destination that is not a regular file (a folder, a device such as /dev/null, a
    /// FIFO, a symbolic link), or whose folder is not a folder: renaming over it would replace it.
    /// `parameter` names the option in the message; callers check before they spend compute.
    public static func checkDestination(_ url: URL, parameter: String = "output file") throws {
        var status = stat()
        if lstat(url.path, &status) == 0, status.st_mode & S_IFMT != S_IFREG {
            let kind: String
            switch status.st_mode & S_IFMT {
            case S_IFDIR: kind = "a folder"
            case S_IFLNK: kind = "a symbolic link"
            case S_IFCHR, S_IFBLK: kind = "a device"
            case S_IFIFO: kind = "a FIFO"
            default: kind = "not a regular file"
            }
            throw ConfigurationError(parameter: parameter, value: url.path,
                                     allowed: "the path of a regular file, or of a new one (this is \(kind))")
        }
        var folder = url.deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: folder.path), folder.path != "/" { folder.deleteLastPathComponent() }
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isFolder), isFolder.boolValue else {
            throw ConfigurationError(parameter: parameter, value: url.path, allowed: "a path inside a folder (\(folder.path) is a file)")
        }
    }

    public static func write(_ data: Data, to url: URL) throws {
        try checkDestination(url)
        let folder = url.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let temporary = folder.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())")
        let descriptor = open(temporary.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard descriptor >= 0 else { throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: temporary.path]) }
        var written = 0
        let ok = data.withUnsafeBytes { buffer -> Bool in
            while written < buffer.count {
                let n = Glibc.write(descriptor, buffer.baseAddress! + written, buffer.count - written)
                if n <= 0 { return false }
                written += n
            }
            return fsync(descriptor) == 0
        }
        close(descriptor)
        guard ok, rename(temporary.path, url.path) == 0 else {
            unlink(temporary.path)
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: url.path])
        }
        let folderDescriptor = open(folder.path, O_RDONLY)
        if folderDescriptor >= 0 { fsync(folderDescriptor); close(folderDescriptor) }
    }

    public static func write(_ text: String, to url: URL) throws { try write(Data(text.utf8), to: url) }
}
