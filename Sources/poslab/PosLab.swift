import ArgumentParser
import Foundation
@preconcurrency import SwiftGlibc  // stdout, a C global the compiler cannot prove race-free; set once, before any thread starts
import Lab
import TensorCore

@main
struct PosLab: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "poslab",
        abstract: "PositionLab: how Transformers know where tokens are.",
        subcommands: [Quickstart.self, Train.self, Eval.self, FineTune.self, Export.self, PasskeyCommand.self, Reproduce.self, SweepCommand.self, ReportCommand.self, Analyze.self, Generate.self, Positions.self, Bench.self]
    )

    /// Bad input of any kind (an unknown option, an invalid value, a library error) exits with
    /// code 2 and a message naming the parameter; help and version requests exit with 0; a run
    /// that diverged exits with 1 after recording it; training stopped by SIGTERM or SIGINT exits
    /// with 75 after writing its checkpoint.
    static func main() {
        // Progress reaches a log file or a pipe line by line, not when a 4 KiB buffer fills.
        setvbuf(stdout, nil, _IOLBF, 0)
        do {
            var command = try parseAsRoot(joiningNegativeValues(Array(CommandLine.arguments.dropFirst())))
            // Before any compute: OpenBLAS with kernels for this CPU, or a clear message and exit 2
            // (help needs none: it works before the dependencies are installed).
            if String(describing: type(of: command)) != "HelpCommand" {
                let kernels = try BLAS.load()
                if let warning = kernels.warning { printError(warning) }
                try Kernels.checkElementwiseSetting()
                try Kernels.checkSmallProductSetting()
                try Kernels.checkProductTilesSetting()
            }
            do { try command.run() } catch let error as ValidationError {
                // Found while running (a folder's state, a file's content): the message, without the usage.
                printError("Error: \(error.message)")
                Foundation.exit(2)
            }
        } catch let stopped as TrainingStopped {
            // Asked to stop (SIGTERM, SIGINT): a checkpoint is written; the same command with --resume
            // (a sweep: the same sweep command) continues to the weights an uninterrupted run reaches.
            printError("\(stopped); continue with --resume (a sweep: run the same command again)")
            Foundation.exit(StopOnSignal.exitCode)
        } catch let code as ExitCode {
            Foundation.exit(code.rawValue)  // the command has said why (a diverged run: 1)
        } catch {
            if exitCode(for: error) == .success { exit(withError: error) }
            printError(fullMessage(for: error))
            Foundation.exit(2)
        }
    }
}

/// `--option -5` as `--option=-5`: the argument parser takes a word that starts with "-" for an
/// option, so a negative value would be reported as a missing one; joined, it reaches the
/// option's own check, which names the value and the allowed range. (No positional argument of
/// poslab is a number, and a flag given a value is refused as before.)
func joiningNegativeValues(_ arguments: [String]) -> [String] {
    var joined: [String] = []
    for argument in arguments {
        let isNegativeNumber = argument.count > 1 && argument.first == "-"
            && argument.dropFirst().first.map { $0.isNumber || $0 == "." } == true
        if isNegativeNumber, let previous = joined.last, previous.hasPrefix("--"), previous.count > 2, !previous.contains("=") {
            joined[joined.count - 1] = previous + "=" + argument
        } else {
            joined.append(argument)
        }
    }
    return joined
}

/// Writes to standard error (progress and messages; results go to standard output).
func printError(_ text: String, newline: Bool = true) {
    FileHandle.standardError.write(Data((text + (newline ? "\n" : "")).utf8))
}

/// Prints `value` as pretty JSON with sorted keys on standard output.
func printJSON<T: Encodable>(_ value: T) throws {
    print(try prettyJSON(value), terminator: "")
}

/// Formats rows as a plain table with right-aligned columns.
func table(_ header: [String], _ rows: [[String]]) -> String {
    let widths = header.indices.map { c in ([header[c]] + rows.map { $0[c] }).map(\.count).max() ?? 0 }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { String(repeating: " ", count: widths[$0.offset] - $0.element.count) + $0.element }.joined(separator: "  ")
    }
    return ([line(header)] + rows.map(line)).joined(separator: "\n")
}
