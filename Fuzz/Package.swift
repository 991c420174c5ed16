// swift-tools-version:5.4
// 5.4: executables keep the symbol `main` (5.5 renames it to NAME_main for testable executables), so that
// libFuzzer's own main is the entry point under -parse-as-library.
import PackageDescription

/// libFuzzer targets for PositionLab's readers of untrusted input, in a package of their own so
/// that the library's manifest needs no sanitizer flags: `scripts/fuzz.sh` builds them with
/// `-Xswiftc -sanitize=fuzzer,address` and runs each against its seed corpus in Fuzz/Corpus/.
let names = ["FuzzSafeTensors", "FuzzRunConfiguration", "FuzzSweepConfiguration", "FuzzSchemeSpecification",
             "FuzzJSONLines", "FuzzText", "FuzzTokenizer", "FuzzTransformersConfig"]

let package = Package(
    name: "PositionLabFuzz",
    dependencies: [.package(name: "PositionLab", path: "..")],
    targets: names.map { name in
        .executableTarget(name: name, dependencies: [.product(name: "PositionLab", package: "PositionLab")],
                          path: "Sources/\(name)")
    }
)
