import Foundation
import XCTest

/// End to end: run folders, a killed run resumed, generation from a checkpoint, benchmarks.
final class RunCommandTests: CommandTestCase {
    func testAKilledRunResumesToTheSameCheckpoint() throws {
        let arguments = ["train", "--steps", "300", "--checkpoint-every", "10", "--model-dimension", "32", "--train-length", "8", "--log-every", "1000"]
        let whole = folder.appendingPathComponent("whole").path, killed = folder.appendingPathComponent("killed").path
        XCTAssertEqual(try cli.poslab(arguments + ["--out", whole]).status, 0)

        // Start the same run, SIGKILL it once it has written a checkpoint, then resume it.
        let process = Process()
        process.executableURL = try cli.binary()
        process.arguments = arguments + ["--out", killed]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let checkpoint = URL(fileURLWithPath: killed).appendingPathComponent("checkpoint.safetensors")
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: checkpoint.path), Date() < deadline { usleep(5_000) }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let interrupted = process.terminationReason == .uncaughtSignal
        let resumed = try cli.poslab(arguments + ["--out", killed, "--resume"])
        XCTAssertEqual(resumed.status, 0, resumed.error)
        if interrupted { XCTAssertTrue(resumed.error.contains("resumed"), resumed.error) }
        let a = try Data(contentsOf: URL(fileURLWithPath: whole).appendingPathComponent("checkpoint.safetensors"))
        let b = try Data(contentsOf: checkpoint)
        XCTAssertEqual(a, b, "the resumed run's final checkpoint differs from the uninterrupted run's")
        let log = try String(contentsOfFile: killed + "/log.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(log.count, 300, "one log line per step, none repeated after the resume")
        XCTAssertTrue(FileManager.default.fileExists(atPath: killed + "/config.json"))
        // Each training session records the kernels it ran on, from the step it started at.
        let sessions = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: killed + "/environment.json")))
                                     as? [String: [[String: Any]]])["sessions"] ?? []
        XCTAssertEqual(sessions.count, interrupted ? 2 : 1, "\(sessions)")
        XCTAssertEqual(sessions.first?["fromStep"] as? Int, 0)
        if interrupted { XCTAssertGreaterThan(sessions.last?["fromStep"] as? Int ?? 0, 0) }
        XCTAssertNotNil((sessions.first?["kernels"] as? [String: Any])?["core"] as? String)

        // A run folder another process writes is refused, and taken over once that process is gone.
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/bin/sh")  // flock(1) holds the lock itself, then becomes sleep
        holder.arguments = ["-c", "exec 9>>\"$0\" && flock 9 && exec sleep 60", killed + "/.lock"]
        try holder.run()
        defer { if holder.isRunning { holder.terminate() } }
        var busy = try cli.poslab(arguments + ["--out", killed, "--resume"])
        for _ in 0..<100 where busy.status == 0 { usleep(20_000); busy = try cli.poslab(arguments + ["--out", killed, "--resume"]) }
        XCTAssertEqual(busy.status, 2, busy.error)
        XCTAssertTrue(busy.error.contains("is in use"), busy.error)
        kill(holder.processIdentifier, SIGKILL)
        holder.waitUntilExit()
        XCTAssertEqual(try cli.poslab(arguments + ["--out", killed, "--resume"]).status, 0)

        // An option that contradicts the run's config.json is refused with both values, not ignored;
        // the options the run was made with may be repeated.
        let before = try Data(contentsOf: checkpoint)
        let conflicting = try cli.poslab(["train", "--steps", "400", "--layers", "1", "--train-length", "8", "--out", killed, "--resume"])
        XCTAssertEqual(conflicting.status, 2, conflicting.error)
        for expected in ["steps = 300", "steps = 400", "layers = 3", "layers = 1"] {
            XCTAssertTrue(conflicting.error.contains(expected), "should name \(expected): \(conflicting.error)")
        }
        XCTAssertEqual(try Data(contentsOf: checkpoint), before, "a refused resume touches nothing")
        // A default given explicitly is still a given value: the run has 3 layers, so --layers 2 is refused.
        let explicitDefault = try cli.poslab(arguments + ["--layers", "2", "--out", killed, "--resume"])
        XCTAssertEqual(explicitDefault.status, 2, explicitDefault.error)
        XCTAssertTrue(explicitDefault.error.contains("layers = 2"), explicitDefault.error)

        // Starting over an existing run without --resume is refused.
        let again = try cli.poslab(arguments + ["--out", killed])
        XCTAssertEqual(again.status, 2)
        XCTAssertTrue(again.error.contains("--resume"), again.error)
    }

    func testASIGTERMdRunStopsWithACheckpointAndResumesToTheSameWeights() throws {
        let arguments = ["train", "--steps", "1000", "--checkpoint-every", "100000", "--model-dimension", "32", "--train-length", "8",
                         "--layers", "2", "--log-every", "100000", "--eval-lengths", "8"]
        let whole = folder.appendingPathComponent("whole").path, stopped = folder.appendingPathComponent("stopped").path
        XCTAssertEqual(try cli.poslab(arguments + ["--out", whole]).status, 0)

        let process = Process()
        process.executableURL = try cli.binary()
        process.arguments = arguments + ["--out", stopped]
        let errors = Pipe()
        let output = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let log = stopped + "/log.jsonl"
        func steps() -> Int { ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").count }
        // Step 1 is printed once training runs (the signal handlers are installed by then).
        var printed = ""
        while process.isRunning, !printed.contains("1/1000") {
            printed += String(decoding: output.fileHandleForReading.availableData, as: UTF8.self)
        }
        kill(process.processIdentifier, SIGTERM)
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 75, message)
        XCTAssertTrue(message.contains("stopped on request after step"), message)
        let checkpoint = URL(fileURLWithPath: stopped).appendingPathComponent("checkpoint.safetensors")
        XCTAssertTrue(FileManager.default.fileExists(atPath: checkpoint.path), "the stop writes a checkpoint")
        XCTAssertLessThan(steps(), 1000)

        let resumed = try cli.poslab(arguments + ["--out", stopped, "--resume"])
        XCTAssertEqual(resumed.status, 0, resumed.error)
        XCTAssertEqual(try Data(contentsOf: checkpoint),
                       try Data(contentsOf: URL(fileURLWithPath: whole).appendingPathComponent("checkpoint.safetensors")),
                       "the resumed run's final checkpoint differs from the uninterrupted run's")
        XCTAssertEqual(steps(), 1000, "one log line per step")
    }

    /// The same run on one core and on all of them, and with OpenBLAS's SSE3 kernels instead of the ones
    /// poslab chooses, gives the same checkpoint and evaluation bit for bit: every product of a model this
    /// size runs on the engine's own kernel (one in-order sum per element), and reductions split by size,
    /// not by core count; environment.json records that no product went to OpenBLAS (and counts them when
    /// `POSITIONLAB_SMALL_PRODUCTS=blas` sends them there); the kernel's AVX2 tiles give what its AVX-512 ones do.
    /// (On a CPU without AVX2 and FMA every product is OpenBLAS's: only the core count is varied there.)
    func testARunIsTheSameOnAnyCoreCountAndOpenBLASCore() throws {
        // 1024 rows a step (batch 32 × 32 tokens): LayerNorm's parameter gradients split into chunks, the
        // products over the cores, and the weight gradients have a depth of 1024. At 97 tokens evaluation
        // takes the blocked attention path, whose last slab of causal rows is one row (97 = 3 · 32 + 1).
        let arguments = ["train", "--task", "sparse", "--k", "1", "--pe", "rope", "--steps", "40",
                         "--model-dimension", "32", "--layers", "2", "--train-length", "32", "--batch-size", "32",
                         "--eval-lengths", "32,97", "--eval-samples", "64", "--log-every", "1000"]
        typealias Outcome = (checkpoint: Data, evaluation: Data, kernels: String)
        func run(_ name: String, _ environment: [String: String]) throws -> Outcome {
            let out = folder.appendingPathComponent(name)
            let result = try cli.poslab(arguments + ["--out", out.path], environment: environment)
            XCTAssertEqual(result.status, 0, "\(name): \(result.error)")
            let record = try String(contentsOf: out.appendingPathComponent("environment.json"), encoding: .utf8)
            return (try Data(contentsOf: out.appendingPathComponent("checkpoint.safetensors")),
                    try Data(contentsOf: out.appendingPathComponent("eval.json")), record)
        }
        let all = try run("all-cores", [:]), one = try run("one-core", ["SLURM_CPUS_PER_TASK": "1"])
        // (On a machine of one core, both are one core.)
        XCTAssertEqual(all.checkpoint, one.checkpoint, "one core against all")
        XCTAssertEqual(all.evaluation, one.evaluation, "one core against all")
        XCTAssertTrue(one.kernels.contains("\"cores\" : 1"), one.kernels)
        guard all.kernels.contains("\"smallProducts\" : \"avx2+fma\"") else { return }
        XCTAssertTrue(all.kernels.contains("\"blasProducts\" : 0,"), "no product on OpenBLAS: \(all.kernels)")
        let blas = try run("blas-products", ["POSITIONLAB_SMALL_PRODUCTS": "blas"])
        XCTAssertFalse(blas.kernels.contains("\"blasProducts\" : 0,"), "every product on OpenBLAS: \(blas.kernels)")
        XCTAssertFalse(blas.kernels.contains("productTiles"), "no kernel tiles ran: \(blas.kernels)")
        // Predictive Position Coupling decodes in its evaluation, through the KV cache: on the kernel too. (After
        // 20 steps rounding rarely flips a greedy token, so the count of OpenBLAS's products is the sharp check.)
        let coupled = ["train", "--task", "addition", "--predict-positions", "--steps", "20", "--model-dimension", "32",
                       "--layers", "2", "--train-length", "16", "--eval-lengths", "16,24", "--eval-samples", "16",
                       "--log-every", "1000"]
        var outcomes: [Outcome] = []
        for (name, environment) in [("ppc", [:]), ("ppc-sse3-blas", ["OPENBLAS_CORETYPE": "Prescott"])] {
            let out = folder.appendingPathComponent(name)
            let result = try cli.poslab(coupled + ["--out", out.path], environment: environment)
            XCTAssertEqual(result.status, 0, "\(name): \(result.error)")
            outcomes.append((try Data(contentsOf: out.appendingPathComponent("checkpoint.safetensors")),
                             try Data(contentsOf: out.appendingPathComponent("eval.json")),
                             try String(contentsOf: out.appendingPathComponent("environment.json"), encoding: .utf8)))
        }
        XCTAssertEqual(outcomes[0].evaluation, outcomes[1].evaluation, "decoding in evaluation, OpenBLAS's SSE3 kernels")
        XCTAssertEqual(outcomes[0].checkpoint, outcomes[1].checkpoint)
        XCTAssertTrue(outcomes[0].kernels.contains("\"blasProducts\" : 0,"), outcomes[0].kernels)
        let sse = try run("sse3-blas", ["OPENBLAS_CORETYPE": "Prescott"])
        XCTAssertTrue(sse.kernels.contains("Prescott"), sse.kernels)
        XCTAssertEqual(all.checkpoint, sse.checkpoint, "OpenBLAS's SSE3 kernels against the ones poslab chose")
        XCTAssertEqual(all.evaluation, sse.evaluation, "OpenBLAS's SSE3 kernels against the ones poslab chose")
        // The kernel's AVX2 tiles where poslab would run its AVX-512 ones: the same sums, so the same bits.
        let flags = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        if flags.contains(" avx512f") {  // this CPU has AVX-512: the runs above used those tiles
            XCTAssertTrue(all.kernels.contains("\"productTiles\" : \"avx512\""), all.kernels)
        }
        let narrow = try run("avx2-tiles", ["POSITIONLAB_PRODUCT_TILES": "avx2"])
        XCTAssertTrue(narrow.kernels.contains("\"productTiles\" : \"avx2\""), narrow.kernels)
        XCTAssertEqual(all.checkpoint, narrow.checkpoint, "the AVX2 tiles against the ones poslab chose")
        XCTAssertEqual(all.evaluation, narrow.evaluation, "the AVX2 tiles against the ones poslab chose")
    }

    func testTextTrainingAndGeneration() throws {
        let text = String(repeating: "the quick brown fox jumps over the lazy dog. ", count: 60)
        let data = folder.appendingPathComponent("corpus.txt")
        try text.write(to: data, atomically: true, encoding: .utf8)
        let run = folder.appendingPathComponent("text").path
        let trained = try cli.poslab(["train", "--task", "text", "--data", data.path, "--steps", "150", "--train-length", "32",
                                      "--model-dimension", "32", "--pe", "alibi", "--out", run, "--log-every", "50"])
        XCTAssertEqual(trained.status, 0, trained.error)
        let generated = try cli.poslab(["generate", "--model", run, "--prompt", "the quick brown ", "--count", "20"])
        XCTAssertEqual(generated.status, 0, generated.error)
        XCTAssertEqual(generated.output.utf8.count, 21, generated.output)
        let sampled = ["generate", "--model", run, "--prompt", "the ", "--count", "30", "--temperature", "1", "--top-k", "5", "--seed", "4"]
        XCTAssertEqual(try cli.poslab(sampled).output, try cli.poslab(sampled).output, "sampling is seeded")

        let binary = folder.appendingPathComponent("binary.txt")
        try Data([0x66, 0xFF, 0xFE, 0x00]).write(to: binary)
        let bad: [([String], String)] = [
            (["generate", "--model", folder.path, "--prompt", "x"], "checkpoint.safetensors"),
            (["generate", "--model", run, "--tokens", "1,x"], "--tokens"),
            (["generate", "--model", run, "--prompt", "x", "--temperature=-1"], "temperature"),
            (["train", "--task", "text", "--data", binary.path, "--steps", "1"], "UTF-8"),
            (["train", "--task", "text", "--data", folder.appendingPathComponent("absent.txt").path, "--steps", "1"], "absent.txt"),
            (["train", "--task", "sorting", "--steps", "1"], "sorting"),
        ]
        for (arguments, expected) in bad {
            let result = try cli.poslab(arguments)
            XCTAssertEqual(result.status, 2, "\(arguments)")
            XCTAssertTrue(result.error.contains(expected), "\(arguments): \(result.error)")
        }
    }

    func testBenchmarksRun() throws {
        let train = try cli.json(cli.poslab(["bench", "train", "--configurations", "small", "--repeats", "1", "--json"]))
        let rows = try XCTUnwrap(train["configurations"] as? [[String: Any]])
        XCTAssertEqual(rows.first?["name"] as? String, "small")
        XCTAssertGreaterThan(rows.first?["tokens_per_second"] as? Double ?? 0, 0)
        let memory = try cli.poslab(["bench", "memory", "--length", "600"])
        XCTAssertEqual(memory.status, 0, memory.error)
        XCTAssertTrue(memory.output.contains("peak resident memory"), memory.output)
        let sgemm = try cli.poslab(["bench", "sgemm", "--sizes", "64", "96"])
        XCTAssertTrue(sgemm.output.contains("GFLOP/s") && sgemm.output.contains("96×96"), sgemm.output)
        let attention = try cli.poslab(["bench", "attention", "--lengths", "64", "200", "--repeats", "1", "--dimension", "16"])
        XCTAssertTrue(attention.output.contains("blocked") && attention.output.contains("materialized"), attention.output)
        XCTAssertTrue(attention.output.contains("D = 16") && attention.output.contains("fwd/sgemm"), attention.output)
        let blockedOnly = try cli.poslab(["bench", "attention", "--lengths", "64", "--repeats", "1", "--paths", "blocked"])
        XCTAssertTrue(blockedOnly.output.contains("blocked") && !blockedOnly.output.contains("materialized"), blockedOnly.output)
        for (arguments, named) in [(["--dimension", "0"], "invalid dimension = 0"), (["--lengths", "0"], "invalid lengths = 0"),
                                   (["--paths", "fused"], "fused"),
                                   (["--paths", "materialized", "--lengths", "8192"], "invalid lengths = 8192 with --paths"),
                                   (["--heads", "64", "--dimension", "512", "--lengths", "65536"], "invalid memory")] {
            let bad = try cli.poslab(["bench", "attention"] + arguments)
            XCTAssertEqual(bad.status, 2, "\(arguments)")
            XCTAssertTrue(bad.error.contains(named), "\(arguments): \(bad.error)")
        }
        XCTAssertTrue((train["blas"] as? String ?? "").contains("core "), "\(train)")
    }

    func testTheKernelSetIsNamedAndAnExplicitCoreIsChecked() throws {
        let sgemm = try cli.poslab(["bench", "sgemm", "--sizes", "32"], environment: ["OPENBLAS_CORETYPE": "Prescott"])
        XCTAssertEqual(sgemm.status, 0, sgemm.error)
        XCTAssertTrue(sgemm.output.contains("core Prescott") && sgemm.output.contains("chosen by OPENBLAS_CORETYPE"), sgemm.output)
        let unknown = try cli.poslab(["bench", "sgemm", "--sizes", "32"], environment: ["OPENBLAS_CORETYPE": "Skylake"])
        XCTAssertEqual(unknown.status, 2)
        XCTAssertTrue(unknown.error.contains("OPENBLAS_CORETYPE=Skylake") && unknown.error.contains("SkylakeX"), unknown.error)
        XCTAssertEqual(unknown.output, "", "nothing runs before the check")
        // The kernels' own switches: a value other than their one fallback is refused before anything runs.
        for (variable, fallback) in [("POSITIONLAB_PRODUCT_TILES", "avx2"), ("POSITIONLAB_SMALL_PRODUCTS", "blas"),
                                     ("POSITIONLAB_ELEMENTWISE", "portable")] {
            let bad = try cli.poslab(["bench", "sgemm", "--sizes", "32"], environment: [variable: "avx-512"])
            XCTAssertEqual(bad.status, 2, variable)
            XCTAssertTrue(bad.error.contains(variable) && bad.error.contains("\"avx-512\"")
                          && bad.error.contains("\"\(fallback)\""), bad.error)
            XCTAssertEqual(bad.output, "", "nothing runs before the check")
        }
        // Help needs no kernels: it works where OpenBLAS cannot be used (before installing it, say).
        for arguments in [["train", "--help"], ["help", "sweep"], ["--help"]] {
            let help = try cli.poslab(arguments, environment: ["OPENBLAS_CORETYPE": "Skylake"])
            XCTAssertEqual(help.status, 0, "\(arguments): \(help.error)")
            XCTAssertTrue(help.output.contains("OVERVIEW"), "\(arguments): \(help.output)")
        }
    }
}
