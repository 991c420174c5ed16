import TensorCore
import XCTest

/// The choice of OpenBLAS's kernels from a CPU's flags (injected), the refusal of explicit cores a
/// CPU cannot run, and the messages when the library cannot be loaded.
final class BLASTests: XCTestCase {
    static let emeraldRapids = CPUInfo(cpuinfo: """
        processor\t: 0
        vendor_id\t: GenuineIntel
        cpu family\t: 6
        model\t\t: 207
        model name\t: INTEL(R) XEON(R) PLATINUM 8581C CPU @ 2.10GHz
        flags\t\t: fpu sse sse2 pni ssse3 fma sse4_1 sse4_2 avx avx2 avx512f avx512dq avx512cd avx512bw avx512vl \
        avx512_bf16 amx_tile

        processor\t: 1
        vendor_id\t: SomethingElse
        """)
    static let milan = CPUInfo(vendor: "AuthenticAMD", modelName: "AMD EPYC 7B13",
                               flags: ["sse2", "pni", "avx", "avx2", "fma"])
    static let skylakeClient = CPUInfo(vendor: "GenuineIntel", modelName: "Intel Core i7-6700",
                                       flags: ["sse2", "avx", "avx2", "fma"])
    static let sandyBridge = CPUInfo(vendor: "GenuineIntel", modelName: "Xeon E5-2670", flags: ["sse2", "avx"])
    static let graviton = CPUInfo(vendor: "", modelName: "unknown CPU", flags: ["fp", "asimd", "sve"])

    func testCPUInfoReadsTheFirstProcessor() {
        let cpu = Self.emeraldRapids
        XCTAssertEqual(cpu.vendor, "GenuineIntel")
        XCTAssertEqual(cpu.modelName, "INTEL(R) XEON(R) PLATINUM 8581C CPU @ 2.10GHz")
        XCTAssertTrue(cpu.flags.isSuperset(of: ["avx512f", "avx512vl", "avx2", "amx_tile"]))
        XCTAssertEqual(cpu.instructionSet, .avx512)
    }

    func testChoiceFollowsTheWidestVectorExtension() {
        // The model OpenBLAS 0.3.21 does not know gets AVX-512 kernels, not its Prescott fallback.
        XCTAssertEqual(OpenBLASCore.choice(for: Self.emeraldRapids), "SkylakeX")
        XCTAssertEqual(OpenBLASCore.choice(for: Self.milan), "Zen")
        XCTAssertEqual(OpenBLASCore.choice(for: Self.skylakeClient), "Haswell")
        XCTAssertEqual(OpenBLASCore.choice(for: Self.sandyBridge), "Sandybridge")
        XCTAssertNil(OpenBLASCore.choice(for: Self.graviton), "off x86-64 OpenBLAS decides")
        // AVX-512F alone (Knights Landing) lacks BW/DQ/VL, which SkylakeX's kernels use.
        let knights = CPUInfo(vendor: "GenuineIntel", modelName: "Xeon Phi", flags: ["avx", "avx2", "fma", "avx512f", "avx512cd"])
        XCTAssertEqual(OpenBLASCore.choice(for: knights), "Haswell")
    }

    func testExplicitCoresAreCheckedAgainstTheCPU() throws {
        XCTAssertNoThrow(try OpenBLASCore.check(explicit: "Prescott", cpu: Self.milan))
        XCTAssertNoThrow(try OpenBLASCore.check(explicit: "haswell", cpu: Self.milan))
        XCTAssertNoThrow(try OpenBLASCore.check(explicit: "Cooperlake", cpu: Self.emeraldRapids))
        XCTAssertThrowsError(try OpenBLASCore.check(explicit: "SkylakeX", cpu: Self.milan)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("OPENBLAS_CORETYPE=SkylakeX"), text)
            XCTAssertTrue(text.contains("avx512bw") && text.contains("AMD EPYC 7B13") && text.contains("Zen"), text)
        }
        XCTAssertThrowsError(try OpenBLASCore.check(explicit: "Skylake", cpu: Self.milan)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("OPENBLAS_CORETYPE=Skylake ") && text.contains("SkylakeX") && text.contains("Prescott"), text)
        }
        XCTAssertNoThrow(try OpenBLASCore.check(explicit: "NEOVERSEN1", cpu: Self.graviton), "ARM cores are OpenBLAS's to check")
    }

    func testKernelsNarrowerThanTheCPUAreNamedInAWarning() {
        let slow = BLASKernels(library: "libopenblas.so.0", core: "Prescott", chosenBy: .user, coreInstructionSet: .sse,
                               cpu: "AMD EPYC", cpuInstructionSet: .avx2, configuration: "OpenBLAS 0.3.21")
        XCTAssertTrue(slow.isSlowerThanCPU)
        let warning = slow.warning ?? ""
        XCTAssertTrue(warning.contains("Prescott") && warning.contains("AVX2") && warning.contains("unset OPENBLAS_CORETYPE"), warning)
        XCTAssertTrue(warning.contains("2-5x slower"), warning)
        // AVX2 kernels on an AVX-512 CPU: slower on some CPUs (two 512-bit units), level on others (Zen 4).
        let narrower = BLASKernels(library: "libopenblas.so.0", core: "Zen", chosenBy: .user, coreInstructionSet: .avx2,
                                   cpu: "AMD EPYC", cpuInstructionSet: .avx512, configuration: "OpenBLAS 0.3.21")
        let mild = narrower.warning ?? ""
        XCTAssertTrue(mild.contains("up to 2x slower") && mild.contains("unset OPENBLAS_CORETYPE (now Zen)"), mild)
        let avx = BLASKernels(library: "libopenblas.so.0", core: "Sandybridge", chosenBy: .positionLab,
                              coreInstructionSet: .avx, cpu: "AMD EPYC", cpuInstructionSet: .avx2, configuration: "")
        XCTAssertTrue((avx.warning ?? "").contains("up to 2x slower"), avx.warning ?? "")
        let fine = BLASKernels(library: "libopenblas.so.0", core: "Zen", chosenBy: .positionLab, coreInstructionSet: .avx2,
                               cpu: "AMD EPYC", cpuInstructionSet: .avx2, configuration: "OpenBLAS 0.3.21")
        XCTAssertFalse(fine.isSlowerThanCPU)
        XCTAssertNil(fine.warning)
    }

    func testALibraryThatCannotBeLoadedIsNamedWithHowToInstallIt() {
        XCTAssertThrowsError(try BLAS.open(names: ["libno-such-blas.so.9"], cpu: Self.graviton,
                                           environment: ["OPENBLAS_NUM_THREADS": "1"])) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("libno-such-blas.so.9") && text.contains("apt-get install libopenblas0"), text)
        }
        XCTAssertThrowsError(try BLAS.open(names: ["libc.so.6"], cpu: Self.graviton,
                                           environment: ["OPENBLAS_NUM_THREADS": "1"])) { error in
            XCTAssertTrue("\(error)".contains("cblas_sgemm"), "\(error)")
        }
    }

    func testThisProcessRunsTheKernelsChosenForItsCPU() throws {
        let kernels = try BLAS.load()
        if ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil || kernels.chosenBy == .positionLab {
            if let choice = OpenBLASCore.choice(for: .current) {
                XCTAssertEqual(kernels.core, choice)
                XCTAssertEqual(kernels.chosenBy, .positionLab)
                XCTAssertFalse(kernels.isSlowerThanCPU)
            }
        }
        XCTAssertTrue(kernels.configuration.contains("OpenBLAS"), kernels.configuration)
    }
}
