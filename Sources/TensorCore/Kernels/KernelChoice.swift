import CKernels
import Foundation

/// The AVX2 kernels' switches: each set of them (element-wise, small products) runs where the CPU
/// has AVX2 and FMA, unless an environment variable forces its fallback.
extension Kernels {
    /// True when this CPU runs AVX2 with FMA and `variable` is not set to `fallback`.
    static func runsAVX2(unless variable: String, is fallback: String) -> Bool {
        ProcessInfo.processInfo.environment[variable] != fallback && ck_has_avx2_fma() != 0
    }

    /// Refuses a value of `variable` other than `fallback` (or none): a misspelling would otherwise run
    /// the default kernels without a word. `fallbackMeaning` and `defaultMeaning` say what each choice runs.
    static func checkSetting(_ variable: String, fallback: String, fallbackMeaning: String, defaultMeaning: String) throws {
        guard let value = ProcessInfo.processInfo.environment[variable], value != fallback else { return }
        throw ConfigurationError(parameter: variable, value: "\"\(value)\"",
                                 allowed: "\"\(fallback)\" (\(fallbackMeaning)), or unset (\(defaultMeaning))")
    }
}
