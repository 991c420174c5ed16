import ArgumentParser
import Foundation

@main
struct PosLab: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "poslab",
        abstract: "PositionLab: how Transformers know where tokens are.",
        subcommands: [Train.self]
    )
}

/// Writes to standard error (progress and messages; results go to standard output).
func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}
