import Foundation
import Lab

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

    /// Installs the handlers (synchronously: no signal is lost after this returns). A handler only
    /// stores to an atomic flag, or calls `_exit`: both safe in a signal handler.
    func install() {
        for number in [SIGTERM, SIGINT] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { number in
                let request = StopOnSignal.shared.request  // initialised before the handler was installed
                if request.isRequested, number == SIGINT { _exit(128 + number) }
                request.request()
            }
            sigemptyset(&action.sa_mask)
            action.sa_flags = SA_RESTART
            sigaction(number, &action, nil)
        }
    }

    /// The request, listening from now on.
    static var installed: StopRequest {
        shared.install()
        return shared.request
    }
}
