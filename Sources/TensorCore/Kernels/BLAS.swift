import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The BLAS library behind `Kernels.sgemm`: OpenBLAS, loaded at run time with kernels that match
/// the CPU.
///
/// Why at run time: Debian's OpenBLAS picks its kernels (its "core") once, in the library's
/// constructor, from a table of CPU models. A model newer than the build (OpenBLAS 0.3.21 on an
/// Emerald Rapids Xeon) falls back to SSE3 kernels ("Prescott"), 3–5× slower than the AVX-512
/// ones it could run. Linking the library would run that constructor before `main`; loading it
/// with `dlopen` lets `OPENBLAS_CORETYPE` be decided first, from the CPU's feature flags
/// (`OpenBLASCore.choice(for:)`), when the user has not set it. A user's explicit
/// `OPENBLAS_CORETYPE` always wins, but one this CPU cannot run (AVX-512 kernels without
/// AVX-512 stop with an illegal instruction) or one OpenBLAS does not know is refused before the
/// library is loaded.
public enum BLAS {
    /// Loads OpenBLAS once (later calls return the first answer) and describes the kernels it runs.
    @discardableResult
    public static func load() throws -> BLASKernels {
        try loaded.get().kernels
    }

    /// The library names tried in order (Debian: `libopenblas0`, and `libopenblas-dev`'s symlink).
    public static let libraryNames = ["libopenblas.so.0", "libopenblas.so"]

    typealias SgemmFunction = @convention(c) (
        Int32, Int32, Int32, Int32, Int32, Int32, Float, UnsafePointer<Float>?, Int32,
        UnsafePointer<Float>?, Int32, Float, UnsafeMutablePointer<Float>?, Int32) -> Void

    typealias SgemvFunction = @convention(c) (
        Int32, Int32, Int32, Int32, Float, UnsafePointer<Float>?, Int32, UnsafePointer<Float>?, Int32, Float,
        UnsafeMutablePointer<Float>?, Int32) -> Void

    public struct Loaded: Sendable {
        public let kernels: BLASKernels
        let sgemm: SgemmFunction
        let sgemv: SgemvFunction
    }

    static let loaded: Result<Loaded, BLASError> = {
        do {
            return .success(try open(names: libraryNames, cpu: CPUInfo.current, environment: ProcessInfo.processInfo.environment))
        } catch let error as BLASError {
            return .failure(error)
        } catch {
            return .failure(.cannotLoad(tried: libraryNames, reasons: ["\(error)"]))
        }
    }()

    /// `sgemm` of the loaded library; a library that cannot be loaded stops here with the message
    /// (the command line calls `load()` first, so that users get the message and exit code 2).
    static let sgemm: SgemmFunction = library.sgemm
    static let sgemv: SgemvFunction = library.sgemv

    static var library: Loaded {
        switch loaded {
        case let .success(library): return library
        case let .failure(error): fatalError(error.description)
        }
    }

    /// CBLAS constants (cblas.h): row-major order, no transpose, transpose.
    static let rowMajor: Int32 = 101, noTranspose: Int32 = 111, transpose: Int32 = 112

    /// Decides the core, loads the first of `names` that opens and checks what it chose. `load()`
    /// calls it once with this process's CPU and environment; tests call it with others (a library
    /// already loaded keeps the core it chose).
    public static func open(names: [String], cpu: CPUInfo, environment: [String: String]) throws -> Loaded {
        let explicit = environment["OPENBLAS_CORETYPE"].flatMap { $0.isEmpty ? nil : $0 }
        let chosenBy: BLASKernels.ChosenBy
        let requested: String?
        if let explicit {
            try OpenBLASCore.check(explicit: explicit, cpu: cpu)
            (chosenBy, requested) = (.user, explicit)
        } else if let choice = OpenBLASCore.choice(for: cpu) {
            (chosenBy, requested) = (.positionLab, choice)
        } else {
            (chosenBy, requested) = (.library, nil)
        }
        // OpenBLAS reads its environment once, in the constructor that dlopen runs; the variables
        // set for it are removed afterwards, so that child processes make their own choice.
        var temporary: [String] = []
        if chosenBy == .positionLab, let requested { temporary.append("OPENBLAS_CORETYPE"); setenv("OPENBLAS_CORETYPE", requested, 1) }
        // The engine splits products over cores itself: OpenBLAS's own pool would only spin.
        if environment["OPENBLAS_NUM_THREADS"] == nil { temporary.append("OPENBLAS_NUM_THREADS"); setenv("OPENBLAS_NUM_THREADS", "1", 1) }
        defer { for name in temporary { unsetenv(name) } }

        var failures: [String] = []
        for name in names {
            guard let handle = dlopen(name, RTLD_NOW | RTLD_LOCAL) else {
                failures.append(dlerror().map { String(cString: $0) } ?? name)
                continue
            }
            func symbol(_ s: String) throws -> UnsafeMutableRawPointer {
                guard let p = dlsym(handle, s) else { throw BLASError.missingSymbol(library: name, symbol: s) }
                return p
            }
            let sgemm = unsafeBitCast(try symbol("cblas_sgemm"), to: SgemmFunction.self)
            let sgemv = unsafeBitCast(try symbol("cblas_sgemv"), to: SgemvFunction.self)
            typealias SetThreads = @convention(c) (Int32) -> Void
            typealias Text = @convention(c) () -> UnsafePointer<CChar>?
            unsafeBitCast(try symbol("openblas_set_num_threads"), to: SetThreads.self)(1)
            let core = unsafeBitCast(try symbol("openblas_get_corename"), to: Text.self)().map { String(cString: $0) } ?? "unknown"
            let configuration = unsafeBitCast(try symbol("openblas_get_config"), to: Text.self)().map { String(cString: $0) } ?? ""
            if let requested, OpenBLASCore.key(core) != OpenBLASCore.key(requested) {
                throw BLASError.coreRejected(requested: requested, chosenBy: chosenBy, running: core)
            }
            let kernels = BLASKernels(library: name, core: OpenBLASCore.canonicalName(core), chosenBy: chosenBy,
                                      coreInstructionSet: OpenBLASCore.instructionSet(of: core),
                                      cpu: cpu.modelName, cpuInstructionSet: cpu.instructionSet,
                                      configuration: configuration.trimmingCharacters(in: .whitespaces))
            return Loaded(kernels: kernels, sgemm: sgemm, sgemv: sgemv)
        }
        throw BLASError.cannotLoad(tried: names, reasons: failures)
    }
}

/// Which kernels ran: recorded by `poslab bench sgemm` and in every run folder.
public struct BLASKernels: Codable, Sendable, Equatable {
    public enum ChosenBy: String, Codable, Sendable {
        case user = "OPENBLAS_CORETYPE"  // the user's environment
        case positionLab = "poslab"      // from the CPU's feature flags
        case library = "OpenBLAS"        // OpenBLAS's own detection (no x86-64 vector extension found)
    }

    public let library: String
    /// OpenBLAS's core name (`openblas_get_corename`): "Haswell", "Zen", "SkylakeX", "Prescott", …
    public let core: String
    public let chosenBy: ChosenBy
    /// The widest vector extension the core's kernels use, and the CPU's.
    public let coreInstructionSet: InstructionSet?
    public let cpu: String
    public let cpuInstructionSet: InstructionSet?
    /// `openblas_get_config`: version and build options.
    public let configuration: String

    public init(library: String, core: String, chosenBy: ChosenBy, coreInstructionSet: InstructionSet?, cpu: String,
                cpuInstructionSet: InstructionSet?, configuration: String) {
        (self.library, self.core, self.chosenBy, self.coreInstructionSet) = (library, core, chosenBy, coreInstructionSet)
        (self.cpu, self.cpuInstructionSet, self.configuration) = (cpu, cpuInstructionSet, configuration)
    }

    /// True when the kernels use a narrower vector extension than the CPU has (an explicit
    /// `OPENBLAS_CORETYPE=Prescott` on an AVX2 machine): products run slower, SSE kernels several times.
    public var isSlowerThanCPU: Bool {
        guard let core = coreInstructionSet, let cpu = cpuInstructionSet else { return false }
        return core < cpu
    }

    /// One line: "OpenBLAS 0.3.21 … core Zen (AVX2, chosen by poslab) on AMD EPYC (AVX2)".
    public var summary: String {
        "\(configuration.isEmpty ? library : configuration), core \(core) (\(coreInstructionSet?.name ?? "?"), "
            + "chosen by \(chosenBy.rawValue)) on \(cpu) (\(cpuInstructionSet?.name ?? "?"))"
    }

    /// The warning the command line prints once when `isSlowerThanCPU`.
    public var warning: String? {
        guard isSlowerThanCPU, let cpuSet = cpuInstructionSet, let coreSet = coreInstructionSet else { return nil }
        let better = OpenBLASCore.choice(for: CPUInfo.current) ?? OpenBLASCore.best(for: cpuSet, vendor: nil)
        let how = chosenBy == .user ? "unset OPENBLAS_CORETYPE (now \(core)) to let poslab choose \(better)"
                                    : "set OPENBLAS_CORETYPE=\(better)"
        // SSE kernels' sgemm ran 2.7x (Zen 4) to 5.4x (Zen 3) slower than the CPU's own; AVX2 kernels on an
        // AVX-512 CPU were level on AMD Zen 4, which splits 512-bit operations in two, and could run at half
        // the speed where two 512-bit units run them (not measured); AVX kernels lack FMA (not measured).
        let cost = coreSet == .sse ? "will be 2-5x slower" : "may be up to 2x slower"
        return "warning: OpenBLAS runs its \(core) kernels (\(coreSet.name)) on a CPU with "
            + "\(cpuSet.name): matrix products \(cost); \(how)"
    }
}

public enum BLASError: Error, CustomStringConvertible, Sendable {
    case cannotLoad(tried: [String], reasons: [String])
    case missingSymbol(library: String, symbol: String)
    case unknownCore(value: String, allowed: [String])
    case coreNeedsMore(value: String, needs: [String], cpu: String, suggestion: String?)
    case coreRejected(requested: String, chosenBy: BLASKernels.ChosenBy, running: String)

    public var description: String {
        switch self {
        case let .cannotLoad(tried, reasons):
            return "cannot load OpenBLAS (tried \(tried.joined(separator: ", ")): \(reasons.joined(separator: "; "))); "
                + "install it with `sudo apt-get install libopenblas0` (or run scripts/install-dependencies.sh)"
        case let .missingSymbol(library, symbol):
            return "\(library) has no \(symbol): it is not OpenBLAS (or too old); install Debian's libopenblas0"
        case let .unknownCore(value, allowed):
            return "OPENBLAS_CORETYPE=\(value) is not a core OpenBLAS knows; allowed: \(allowed.joined(separator: ", ")) "
                + "(or unset it to let poslab choose from the CPU's feature flags)"
        case let .coreNeedsMore(value, needs, cpu, suggestion):
            return "OPENBLAS_CORETYPE=\(value) needs the CPU flags \(needs.joined(separator: ", ")), which this CPU (\(cpu)) "
                + "lacks: its kernels would stop with an illegal instruction; "
                + (suggestion.map { "unset OPENBLAS_CORETYPE to let poslab choose \($0)" } ?? "unset OPENBLAS_CORETYPE")
        case let .coreRejected(requested, chosenBy, running):
            let source = chosenBy == .user ? "OPENBLAS_CORETYPE=\(requested)" : "the core \(requested) (chosen by poslab)"
            return "OpenBLAS did not accept \(source): it runs \(running) instead; "
                + (chosenBy == .user ? "unset OPENBLAS_CORETYPE to let poslab choose" : "set OPENBLAS_CORETYPE to a core it has")
        }
    }
}

/// x86-64 vector extensions, in order of width.
public enum InstructionSet: String, Codable, Sendable, Comparable, CaseIterable {
    case sse = "SSE", avx = "AVX", avx2 = "AVX2", avx512 = "AVX-512"

    var rank: Int {
        switch self {
        case .sse: return 0
        case .avx: return 1
        case .avx2: return 2
        case .avx512: return 3
        }
    }

    public static func < (a: Self, b: Self) -> Bool { a.rank < b.rank }

    public var name: String { rawValue }
}

/// The CPU as /proc/cpuinfo describes it: vendor, model name and feature flags (x86-64 names).
public struct CPUInfo: Sendable, Equatable {
    public var vendor: String
    public var modelName: String
    public var flags: Set<String>

    public init(vendor: String, modelName: String, flags: Set<String>) {
        (self.vendor, self.modelName, self.flags) = (vendor, modelName, flags)
    }

    /// Parses the first processor's block of /proc/cpuinfo.
    public init(cpuinfo text: String) {
        var fields: [String: String] = [:]
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.trimmingCharacters(in: .whitespaces).isEmpty, !fields.isEmpty { break }
            guard let colon = line.firstIndex(of: ":") else { continue }
            let key = line[..<colon].trimmingCharacters(in: .whitespaces)
            if fields[key] == nil { fields[key] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces) }
        }
        self.init(vendor: fields["vendor_id"] ?? "", modelName: fields["model name"] ?? fields["Model"] ?? "unknown CPU",
                  flags: Set((fields["flags"] ?? "").split(separator: " ").map(String.init)))
    }

    public static let current: CPUInfo = {
        #if os(Linux)
        if let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) { return CPUInfo(cpuinfo: text) }
        #endif
        return CPUInfo(vendor: "", modelName: "unknown CPU", flags: [])
    }()

    /// The widest x86-64 vector extension whose every flag OpenBLAS's kernels use is present; nil
    /// on other architectures (no x86 flags).
    public var instructionSet: InstructionSet? {
        if OpenBLASCore.avx512Flags.isSubset(of: flags) { return .avx512 }
        if flags.isSuperset(of: ["avx2", "fma"]) { return .avx2 }
        if flags.contains("avx") { return .avx }
        if flags.contains("sse2") { return .sse }
        return nil
    }
}

/// OpenBLAS's x86-64 cores (the names `OPENBLAS_CORETYPE` takes, as in Debian's DYNAMIC_ARCH
/// build of 0.3.21), the flags their kernels need, and the choice from a CPU's flags.
public enum OpenBLASCore {
    /// The flags SkylakeX's kernels need (as OpenBLAS's own `support_avx512` checks).
    static let avx512Flags: Set<String> = ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"]

    /// Every core: its name, vector extension and the CPU flags its kernels need.
    public static let cores: [(name: String, instructionSet: InstructionSet, needs: Set<String>)] = {
        let sse = ["Katmai", "Coppermine", "Northwood", "Prescott", "Banias", "Atom", "Core2", "Penryn", "Dunnington",
                   "Nehalem", "Athlon", "Opteron", "Opteron_SSE3", "Barcelona", "Nano", "Bobcat"]
        return sse.map { ($0, InstructionSet.sse, Set<String>()) } + [
            ("Sandybridge", .avx, ["avx"]),
            ("Bulldozer", .avx, ["avx", "fma4"]), ("Piledriver", .avx, ["avx", "fma", "fma4"]),
            ("Steamroller", .avx, ["avx", "fma", "fma4"]), ("Excavator", .avx, ["avx", "fma", "fma4"]),
            ("Haswell", .avx2, ["avx2", "fma"]), ("Zen", .avx2, ["avx2", "fma"]),
            ("SkylakeX", .avx512, avx512Flags), ("Cooperlake", .avx512, avx512Flags.union(["avx512_bf16"])),
        ]
    }()

    /// Names compare as OpenBLAS compares them: case and punctuation aside ("Opteron(SSE3)").
    static func key(_ name: String) -> String { name.lowercased().filter { $0.isLetter || $0.isNumber } }

    static func core(named name: String) -> (name: String, instructionSet: InstructionSet, needs: Set<String>)? {
        cores.first { key($0.name) == key(name) }
    }

    static func canonicalName(_ name: String) -> String { core(named: name)?.name ?? name }

    public static func instructionSet(of core: String) -> InstructionSet? { self.core(named: core)?.instructionSet }

    /// The core for the widest vector extension `cpu` has: SkylakeX with AVX-512 (as OpenBLAS
    /// 0.3.22 and later choose for unknown models), Zen (AMD, Hygon) or Haswell with AVX2 and FMA
    /// (the same kernels), Sandybridge with AVX; nil without AVX or off x86-64 (OpenBLAS decides).
    public static func choice(for cpu: CPUInfo) -> String? {
        guard let set = cpu.instructionSet, set >= .avx else { return nil }
        return best(for: set, vendor: cpu.vendor)
    }

    static func best(for set: InstructionSet, vendor: String?) -> String {
        switch set {
        case .avx512: return "SkylakeX"
        case .avx2: return vendor == "AuthenticAMD" || vendor == "HygonGenuine" ? "Zen" : "Haswell"
        case .avx: return "Sandybridge"
        case .sse: return "Prescott"
        }
    }

    /// Refuses an explicit `OPENBLAS_CORETYPE` that OpenBLAS does not know (it would silently fall
    /// back to its own choice) or whose kernels this CPU cannot run. Off x86-64 the name is left
    /// to OpenBLAS (its ARM and POWER cores are not listed here); `BLAS` then checks what it ran.
    public static func check(explicit value: String, cpu: CPUInfo) throws {
        guard cpu.instructionSet != nil else { return }
        guard let core = core(named: value) else {
            throw BLASError.unknownCore(value: value, allowed: cores.map(\.name))
        }
        let missing = core.needs.subtracting(cpu.flags)
        if !missing.isEmpty {
            throw BLASError.coreNeedsMore(value: value, needs: missing.sorted(), cpu: cpu.modelName, suggestion: choice(for: cpu))
        }
    }
}
