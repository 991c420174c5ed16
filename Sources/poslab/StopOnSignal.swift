import Dispatch
import Foundation
import Lab
import Synchronization

/// SIGTERM (a scheduler's preemption or time limit, `kill`) and SIGINT (Ctrl-C) while training: the
/// first asks every running run to stop at its next step boundary and write a checkpoint there (the
/// process then exits with `exitCode`, 75, EX_TEMPFAIL: "try again"). A second SIGINT ends the
/// process at once, which loses nothing either, as every file is written atomically; a repeated
/// SIGTERM changes nothing (Slurm signals every process of a job, and its batch script forwards
/// the signal too).
final class StopOnSignal: Sendable {
    static let shared = StopOnSignal()
    /// The exit code of a run stopped on request, to be continued (`--resume`, the same sweep again).
    static let exitCode: Int32 = 75

    let request = StopRequest()
    private let sources = Mutex<[any DispatchSourceSignal]>([])

    /// Starts listening (once per process); training commands call it before they train.
    func install() {
        sources.withLock { sources in
            guard sources.isEmpty else { return }
            for (number, name) in [(SIGTERM, "SIGTERM"), (SIGINT, "SIGINT")] {
                signal(number, SIG_IGN)  // delivered to the source below instead of ending the process
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler { [request] in
                    if request.isRequested {
                        if number == SIGINT { Foundation.exit(128 + number) }
                        return
                    }
                    request.request()
                    printError("\n\(name): stopping at the next step boundary, with a checkpoint"
                               + (number == SIGINT ? " (Ctrl-C again stops at once)" : ""))
                }
                source.resume()
                sources.append(source)
            }
        }
    }

    /// The request, listening from now on.
    static var installed: StopRequest {
        shared.install()
        return shared.request
    }
}
