import ArgumentParser
import Foundation
import Lab
import TensorCore

/// `poslab reproduce`: small, seeded reproductions of published claims, each with a verdict.
struct Reproduce: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check published claims about positional encodings with small, seeded reproductions.",
        discussion: "Each claim is a resumable sweep of arms × seeds under --out/NAME (with its report.html); its criterion "
            + "is fixed in advance and its verdict is holds, does not hold, or inconclusive (a scheme it compares did not "
            + "learn in distribution). --out/reproduce.json and reproduce.html collect every verdict with its figures.")

    @Argument(help: "Claims to run (see --list).") var names: [String] = []
    @Flag(help: "List the claims and exit.") var list = false
    @Flag(help: "Run every claim.") var all = false
    @Option(help: "Seeds, comma-separated (at least 3 for a band).") var seeds = "0,1,2"
    @Option(help: "Runs at a time, at most 64 (one per core unless given); side by side, each keeps to one core.")
    var jobs = min(64, Parallel.coreCount)
    @Option(help: "Folder for the claims' sweeps and reproduce.json/html.") var out = "runs/reproduce"
    @Flag(help: "Smoke scale: a twentieth of the steps and one seed; the verdicts are then not evidence.") var quick = false

    func validate() throws {
        guard jobs >= 1, jobs <= 64 else { throw ValidationError("--jobs must be from 1 to 64, not \(jobs)") }
        if !list, names.isEmpty, !all { throw ValidationError("name claims to run, or pass --all or --list") }
        if all, !names.isEmpty { throw ValidationError("give claim names or --all, not both") }
    }

    func run() throws {
        if list {
            for claim in ReproductionCatalog.claims {
                print("\(claim.name)  (\(claim.paper); \(claim.arms.isEmpty ? "analytic, no training" : "\(claim.arms.count) arm\(claim.arms.count == 1 ? "" : "s")"))\n    \(claim.statement)\n    criterion: \(claim.criterion)")
            }
            return
        }
        let seedList = try seeds.split(separator: ",").map { text -> UInt64 in
            guard let seed = UInt64(text.trimmingCharacters(in: .whitespaces)) else {
                throw ValidationError("--seeds: \"\(text)\" is not a seed (a whole number from 0 to \(UInt64.max))")
            }
            return seed
        }
        guard !seedList.isEmpty, Set(seedList).count == seedList.count else { throw ValidationError("--seeds must be distinct seeds") }
        // Every claim and its runs are checked before any trains.
        let claims = try all ? ReproductionCatalog.claims : names.map(ReproductionCatalog.claim(named:))
        try checkOutputFolder(out)
        let folder = URL(fileURLWithPath: out)
        let sweeps = try claims.map { try Reproduction.sweep($0, folder: folder, seeds: seedList, quick: quick) }
        var page = folder.appendingPathComponent(Reproduction.pageFile)
        for (claim, sweep) in zip(claims, sweeps) {
            print("\n== \(claim.name): \(claim.paper)\n   \(claim.statement)")
            let start = Date()
            if let sweep {
                try runSweep(sweep, jobs: jobs)
                try Report.write(sweepFolder: sweep.folder)
                try warnIfMixedKernels(sweep.folder)
            }
            let outcome = try Reproduction.outcome(claim, folder: folder, seeds: seedList, quick: quick,
                                                   seconds: Date().timeIntervalSince(start))
            page = try Reproduction.record(outcome, folder: folder)
            print("   \(outcome.verdictText.uppercased()): \(outcome.summary)")
        }
        let outcomes = try JSONDecoder().decode([ClaimOutcome].self,
                                                from: Data(contentsOf: folder.appendingPathComponent(Reproduction.resultsFile)))
        print("\n" + table(["claim", "paper", "verdict"], outcomes.map { [$0.name, $0.paper, $0.verdictText + ($0.quick ? " (quick)" : "")] }))
        print("report: \(page.path)")
    }
}
