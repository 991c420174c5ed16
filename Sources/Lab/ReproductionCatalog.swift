import Foundation
import PositionalEncodings
import Tasks
import TensorCore

/// The claims `poslab reproduce` checks. Every size is fixed here, so a claim is one seeded,
/// resumable sweep; each is sized to finish within about ten minutes on two cores with three
/// seeds. Criteria are written before any run and never tuned to the result.
public enum ReproductionCatalog {
    public static var claims: [Claim] {
        [alibiText, nopeAndT5OnCopy, randomizedPositions, positionCoupling, predictivePositionCoupling, sparsity, hope, decayBound]
    }

    public static func claim(named name: String) throws -> Claim {
        guard let claim = claims.first(where: { $0.name == name }) else {
            throw ConfigurationError(parameter: "claim", value: "\"\(name)\"", allowed: claims.map(\.name).joined(separator: ", "))
        }
        return claim
    }

    /// An exact match (or token accuracy) a scheme must reach at its training length to count as
    /// having learned its task, so that its behaviour beyond says something.
    static let learned = 0.9

    /// Inconclusive when an arm did not learn in distribution (named in the summary); else `holds`.
    static func verdict(lagging: [String], summary: String, holds: @autoclosure () -> Bool) -> Claim.Verdict {
        guard lagging.isEmpty else {
            return .init(holds: nil, summary: "did not learn in distribution: " + lagging.joined(separator: ", ") + ". " + summary)
        }
        return .init(holds: holds(), summary: summary)
    }

    /// One arm's run: `steps` at full scale, a twentieth (at least 10) and 8 evaluation examples quick.
    static func arm(_ label: String, task: String, scheme: String, trainLength: Int, evalLengths: [Int], steps: Int,
                    options: TaskOptions = TaskOptions(), positions: PositionAssignment = .sequential, layers: Int = 2,
                    predictPositions: Bool = false, evalSamples: Int = 64) -> Claim.Arm {
        Claim.Arm(label: label) { seed, quick in
            try RunSpecification(task: task, taskOptions: options, pe: SchemeSpecification(parsing: scheme), positions: positions,
                                 seed: seed, trainLength: trainLength, layers: layers, steps: quick ? max(10, steps / 20) : steps,
                                 evalLengths: evalLengths, evalSamples: quick ? 8 : evalSamples, checkpointEvery: 500,
                                 predictPositions: predictPositions)
        }
    }

    // MARK: Press et al. 2022

    static let alibiText: Claim = {
        let (l, lengths) = (64, [64, 256, 1024])
        return Claim(
            name: "alibi-text", paper: "Press et al. 2022 (ALiBi)",
            statement: "Trained on short text, ALiBi's perplexity stays flat up to 16× the training length, while sinusoidal "
                + "and rotary positions degrade.",
            criterion: "Byte-level LM on the King James Bible, L = 64, evaluated at 64, 256 and 1024 bytes (non-overlapping windows). "
                + "Holds when ALiBi's perplexity at 16L is within 10% of its perplexity at L and sinusoidal's and RoPE's rise by "
                + "at least 50%. Inconclusive when a scheme's perplexity at L is over 1.25× the best scheme's.",
            arms: ["alibi", "sinusoidal", "rope"].map {
                arm($0, task: "text", scheme: $0, trainLength: l, evalLengths: lengths, steps: 1500, evalSamples: 24)
            },
            verdict: { f in
                let inDistribution = ["alibi", "sinusoidal", "rope"].map { f.mean($0, l, \.perplexity) }
                let best = inDistribution.filter(\.isFinite).min() ?? .nan
                let lagging = f.notLearning(["alibi", "sinusoidal", "rope"], at: l, \.perplexity, threshold: 1.25 * best, lowerIsBetter: true)
                let ratio = { (arm: String) in f.mean(arm, 16 * l, \.perplexity) / f.mean(arm, l, \.perplexity) }
                let summary = ["alibi", "sinusoidal", "rope"].map {
                    "\($0): perplexity \(format(f.mean($0, l, \.perplexity))) at L, \(format(f.mean($0, 16 * l, \.perplexity))) at 16L "
                        + "(×\(format(ratio($0))))"
                }.joined(separator: "; ")
                return verdict(lagging: lagging, summary: summary, holds: ratio("alibi") <= 1.1 && ratio("sinusoidal") >= 1.5 && ratio("rope") >= 1.5)
            }, analytic: nil)
    }()

    // MARK: Kazemnejad et al. 2023

    static let nopeAndT5OnCopy: Claim = {
        let (l, beyond) = (24, [36, 48])
        let schemes = ["nope", "t5", "learned", "sinusoidal"]
        return Claim(
            name: "nope-t5-copy", paper: "Kazemnejad et al. 2023",
            statement: "In decoder-only Transformers, NoPE and T5's relative bias generalise to longer inputs better than "
                + "absolute positions (learned, sinusoidal).",
            criterion: "Copy, 3 layers, L = 24, evaluated at 1.5L and 2L. Holds when NoPE's and T5's token accuracy beyond L (mean of "
                + "1.5L and 2L) each exceed both absolute schemes' by at least 0.05. Inconclusive when a scheme's exact match "
                + "at L is below 0.9.",
            // Three layers, the lab's default: with two, copy is learned or not by the seed (ALiBi and
            // NoPE in docs/baselines-notebook.md), and NoPE's mean exact match at L was 0.89 here.
            arms: schemes.map { arm($0, task: "copy", scheme: $0, trainLength: l, evalLengths: [l] + beyond, steps: 2000, layers: 3) },
            verdict: { f in
                let beyondL = { (arm: String) in f.mean(arm, beyond, \.tokenAccuracy) }
                let summary = schemes.map { "\($0): exact \(format(f.mean($0, l, \.accuracy))) at L, token accuracy "
                    + "\(format(beyondL($0))) beyond" }.joined(separator: "; ")
                let lagging = f.notLearning(schemes, at: l, \.accuracy, threshold: learned)
                let absolute = max(beyondL("learned"), beyondL("sinusoidal"))
                return verdict(lagging: lagging, summary: summary,
                               holds: beyondL("nope") >= absolute + 0.05 && beyondL("t5") >= absolute + 0.05)
            }, analytic: nil)
    }()

    // MARK: Ruoss et al. 2023

    static let randomizedPositions: Claim = {
        let (l, beyond) = (24, [48, 96])
        return Claim(
            name: "randomized-positions", paper: "Ruoss et al. 2023",
            statement: "Training on a random ordered subset of a larger range of positions lets a model use positions "
                + "beyond its training length: it generalises to longer sequences than with positions 0..L−1.",
            criterion: "Reverse, RoPE, 3 layers, 4000 steps, L = 24, positions drawn from [0, 192) (8L) against sequential ones, evaluated "
                + "at 2L and 4L (the randomized arm on positions drawn from the same range, as the paper evaluates). Holds when the randomized arm's token accuracy beyond L exceeds the sequential arm's by at least "
                + "0.05. Inconclusive when an arm's exact match at L is below 0.9.",
            // Evaluated on sequential IDs until 2026-11-29, the randomized arm scored 0.00 at L: a model
            // that had almost never seen neighbouring IDs, judged on 0..T−1 (see `PositionAssignment.atEvaluation`).
            // 2000 steps until 2026-11-29: the randomized arm did not fit reverse at L (exact 0.02, token
            // accuracy 0.67, three seeds); with 4000 a first seed did (1.00), so both arms now train 4000.
            arms: [arm("sequential", task: "reverse", scheme: "rope", trainLength: l, evalLengths: [l] + beyond, steps: 4000,
                       layers: 3),
                   arm("randomized", task: "reverse", scheme: "rope", trainLength: l, evalLengths: [l] + beyond, steps: 4000,
                       positions: .randomized(maximumPosition: 8 * l), layers: 3)],
            verdict: { f in
                let summary = ["sequential", "randomized"].map { "\($0): exact \(format(f.mean($0, l, \.accuracy))) at L, token "
                    + "accuracy \(format(f.mean($0, beyond, \.tokenAccuracy))) beyond" }.joined(separator: "; ")
                let lagging = f.notLearning(["sequential", "randomized"], at: l, \.accuracy, threshold: learned)
                return verdict(lagging: lagging, summary: summary, holds: f.mean("randomized", beyond, \.tokenAccuracy) >= f.mean("sequential", beyond, \.tokenAccuracy) + 0.05)
            }, analytic: nil)
    }()

    // MARK: Cho et al. 2024 and Golowich et al. 2025 on addition

    /// Addition of up to 10-digit operands (3n + 4 = 34 tokens), evaluated at 20 and 30 digits.
    static let additionLengths = (train: 34, beyond: [64, 94])

    /// The verdict on addition: `arm` reaches exact match 0.8 at 20 and 30 digits, having learned 10.
    static func additionVerdict(_ arm: String, others: [String] = []) -> @Sendable (ClaimFigures) -> Claim.Verdict {
        { f in
            let (l, beyond) = additionLengths
            let summary = ([arm] + others).map { a in "\(a): exact match \(format(f.mean(a, l, \.accuracy))) at 10 digits, "
                + "\(format(f.mean(a, beyond[0], \.accuracy))) at 20, \(format(f.mean(a, beyond[1], \.accuracy))) at 30 "
                + "(digits right \(format(f.mean(a, beyond[0], \.tokenAccuracy))) and \(format(f.mean(a, beyond[1], \.tokenAccuracy))))" }
                .joined(separator: "; ")
            return verdict(lagging: f.notLearning([arm], at: l, \.accuracy, threshold: learned), summary: summary,
                           holds: beyond.allSatisfy { f.mean(arm, $0, \.accuracy) >= 0.8 })
        }
    }

    /// The training options of both addition claims: offsets up to 30 and operands zero-padded to
    /// the longer's digits (as Cho et al. write them), "+" and "=" at coupled IDs.
    ///
    /// Until 2026-11-29 the markers had fixed IDs whatever the offset, so the first sum digit was
    /// predicted from a token whose ID said nothing about where the units were; then (3000 steps,
    /// 1 layer, one seed, exact match at 10 / 20 / 30 digits, token accuracy in brackets) learned
    /// absolute scored 0.00 (0.34) at 10 digits, a sinusoidal table 0.72 / 0.06 / 0.00, RoPE 0.09 /
    /// 0.00 / 0.00. With coupled markers, learned: 3000 steps 0.08 (0.89) at 10 digits; 6000 steps
    /// 1.00 / 0.00 / 0.00 (1.00 / 0.75 / 0.66); 12000 steps 1.00 / 0.00 / 0.00 (1.00 / 0.56 / 0.38);
    /// C = 128 at 3000 steps 0.00 (0.45). Sinusoidal 6000 steps 1.00 / 0.00 / 0.00 (1.00 / 0.87 /
    /// 0.67); RoPE 1.00 / 0.00 / 0.00 (1.00 / 0.88 / 0.42). At 20 digits the learned run gets the
    /// middle digits right and misses those near either end (`token_accuracy_by_index`): the digits
    /// whose IDs meet IDs more than 10 apart, a pair no 10-digit training example holds.
    static let additionOptions = TaskOptions(maximumOffset: 30, padOperands: true)

    /// Steps of both addition claims: 3000 do not fit 10 digits with one layer (above); 6000 do,
    /// for every scheme tried.
    static let additionSteps = 6000

    static let positionCoupling: Claim = {
        let (l, beyond) = additionLengths
        return Claim(
            name: "position-coupling", paper: "Cho et al. 2024",
            statement: "With position IDs coupled to digit significance (and a random offset in training), a 1-layer "
                + "Transformer trained on additions of up to 10 digits adds 20- and 30-digit numbers.",
            // The verdict arm is the paper's own setting. It was first a sinusoidal table, chosen after
            // seeing that it learned fastest here: a choice made from the results, so no longer the verdict.
            criterion: "Addition, 1 layer, 6000 steps, coupled IDs (\"+\" and \"=\" included) with training offsets up to 30, "
                + "operands zero-padded, L = 34 (10 digits); evaluated at 20 and 30 digits with offset 0. Holds when the "
                + "paper's setting, learned absolute embeddings of the coupled IDs, reaches exact match 0.8 at both; RoPE on "
                + "the same IDs is shown beside it. Inconclusive when the learned arm's exact match at 10 digits is below 0.9.",
            // A sinusoidal arm was dropped with the move to 6000 steps (three arms would take 13 minutes);
            // one seed of it is in `additionOptions`' notes.
            arms: ["learned", "rope"].map {
                arm($0, task: "addition", scheme: $0, trainLength: l, evalLengths: [l] + beyond, steps: additionSteps,
                    options: additionOptions, layers: 1)
            },
            verdict: additionVerdict("learned", others: ["rope"]), analytic: nil)
    }()

    /// Measured with fixed markers (3000 steps, one seed, exact match at 10 / 20 / 30 digits, token accuracy): sinusoidal,
    /// padded, 1 layer 0.66 / 0.00 / 0.00 (0.96 / 0.18 / 0.13); RoPE unpadded, 1 layer 0.00 (0.11,
    /// chance: the position loss swamps the single layer), 2 layers 0.11 / 0.00 / 0.00 (0.90 / 0.10 /
    /// 0.10): beyond 10 digits the predicted IDs go wrong.
    static let predictivePositionCoupling: Claim = {
        let (l, beyond) = additionLengths
        return Claim(
            name: "predictive-position-coupling", paper: "Golowich et al. 2025",
            statement: "Predictive Position Coupling: a model that predicts the coupled position IDs itself, and decodes "
                + "with them, keeps Position Coupling's length generalisation on addition.",
            criterion: "Position-coupling's setting (1 layer, 6000 steps) with a fixed sinusoidal table of the IDs (the "
                + "scheme this claim was first run with), plus a position head trained on the next token's ID and "
                + "free-running greedy decoding on the model's own IDs. Holds when exact match is at least 0.8 at 20 and 30 "
                + "digits. Inconclusive when exact match at 10 digits is below 0.9.",
            arms: [arm("predicted", task: "addition", scheme: "sinusoidal", trainLength: l, evalLengths: [l] + beyond,
                       steps: additionSteps, options: additionOptions, layers: 1, predictPositions: true)],
            verdict: additionVerdict("predicted"), analytic: nil)
    }()

    // MARK: Golowich et al. 2025 on sparsity

    static let sparsity: Claim = {
        let (l, beyond) = (24, [48, 96])
        let judged = [("k=1", 1, nil), ("k=2", 2, nil), ("k=3", 3, nil), ("k=2, local 6", 2, 6)] as [(String, Int, Int?)]
        // k = 4 is drawn beside the judged arms (issue 8 asks for k = 1…4); the criterion was fixed
        // for k ≤ 3 before it was added, so it neither decides the verdict nor makes it inconclusive.
        let arms = judged + [("k=4", 4, nil)]
        return Claim(
            name: "sparsity", paper: "Golowich et al. 2025",
            statement: "Length generalisation falls as each prediction depends on more earlier tokens (k), and rises when "
                + "those tokens are local.",
            criterion: "k-sparse planted correlations (the sum of k marked symbols of an alphabet of 8), RoPE, L = 24, evaluated "
                + "at 2L and 4L. "
                + "Holds when exact match beyond L falls strictly from k = 1 to 2 to 3, and k = 2 within the last 6 tokens "
                + "beats k = 2 anywhere by at least 0.05. Inconclusive when an arm's exact match at L is below 0.9. "
                + "k = 4 is shown beside, not judged.",
            arms: arms.map { label, k, locality in
                arm(label, task: "sparse", scheme: "rope", trainLength: l, evalLengths: [l] + beyond, steps: 3000,
                    options: TaskOptions(k: k, locality: locality))
            },
            verdict: { f in
                let labels = judged.map(\.0)
                let beyondL = { (arm: String) in f.mean(arm, beyond, \.accuracy) }
                let summary = arms.map(\.0).map { "\($0): \(format(f.mean($0, l, \.accuracy))) at L, \(format(beyondL($0))) beyond" }
                    .joined(separator: "; ") + " (k=4 not judged)"
                let lagging = f.notLearning(labels, at: l, \.accuracy, threshold: learned)
                let falls = beyondL("k=1") > beyondL("k=2") && beyondL("k=2") > beyondL("k=3")
                return verdict(lagging: lagging, summary: summary, holds: falls && beyondL("k=2, local 6") >= beyondL("k=2") + 0.05)
            }, analytic: nil)
    }()

    // MARK: Chen et al. 2024

    static let hope: Claim = {
        let (copyLength, copyBeyond) = (32, [64, 128])
        let (textLength, textBeyond) = (64, [128, 256])
        return Claim(
            name: "hope", paper: "Chen et al. 2024 (HoPE)",
            statement: "HoPE (RoPE without its low-frequency components) extrapolates better than RoPE: higher in-context "
                + "copy accuracy and lower perplexity beyond the training length.",
            criterion: "In-context copy of random strings (L = 32, evaluated at 2L, 4L) and byte-level text (L = 64, "
                + "evaluated at 2L, 4L). Holds when HoPE's mean token accuracy beyond L is higher on copy and its mean "
                + "perplexity beyond L lower on text. Inconclusive when either scheme's copy exact match at L is below 0.9 "
                + "or their text perplexities at L differ by more than 10%.",
            arms: ["rope", "hope"].flatMap { scheme in [
                arm("\(scheme) copy", task: "incontext", scheme: scheme, trainLength: copyLength,
                    evalLengths: [copyLength] + copyBeyond, steps: 2000),
                arm("\(scheme) text", task: "text", scheme: scheme, trainLength: textLength,
                    evalLengths: [textLength] + textBeyond, steps: 1500, evalSamples: 24),
            ] },
            verdict: { f in
                let copy = { (s: String) in f.mean("\(s) copy", copyBeyond, \.tokenAccuracy) }
                let text = { (s: String) in f.mean("\(s) text", textBeyond, \.perplexity) }
                let summary = ["rope", "hope"].map { "\($0): copy exact \(format(f.mean("\($0) copy", copyLength, \.accuracy))) at L, "
                    + "token accuracy \(format(copy($0))) beyond; text perplexity \(format(f.mean("\($0) text", textLength, \.perplexity))) "
                    + "at L, \(format(text($0))) beyond" }.joined(separator: "; ")
                var lagging = f.notLearning(["rope copy", "hope copy"], at: copyLength, \.accuracy, threshold: learned)
                let ropeText = f.mean("rope text", textLength, \.perplexity), hopeText = f.mean("hope text", textLength, \.perplexity)
                if !(max(ropeText, hopeText) <= 1.1 * min(ropeText, hopeText)) { lagging.append("text perplexity at L") }
                return verdict(lagging: lagging, summary: summary, holds: copy("hope") > copy("rope") && text("hope") < text("rope"))
            }, analytic: nil)
    }()

    // MARK: Su et al. 2021

    static let decayBound: Claim = Claim(
        name: "roformer-decay", paper: "Su et al. 2021 (RoFormer)",
        statement: "RoPE has long-term decay: the bound (1/(D/2))·Σ|S_j| on a query–key product falls as the relative "
            + "distance grows; HoPE, keeping only high frequencies, has none.",
        criterion: "D = 128, base 10000 (RoFormer's setting), distances 0…4096. Holds when the bound's mean falls from each "
            + "window to the next of [0, 16), [16, 128), [128, 1024), [1024, 4096], and HoPE's bound (cut at L = 512) does not: "
            + "its mean over [1024, 4096] is at least half its mean over [16, 128).",
        arms: [], verdict: { _ in .init(holds: nil, summary: "") },
        analytic: {
            let windows = [0..<16, 16..<128, 128..<1024, 1024..<4097]
            func means(_ theta: [Double]) -> [Double] {
                let bound = DecayCurve.bound(inverseFrequencies: theta, maximumDistance: 4096)
                return windows.map { w in w.map { bound[$0] }.reduce(0, +) / Double(w.count) }
            }
            let rope = try RotaryEncoding(configuration: RotaryConfiguration(), headDimension: 128)
            let hope = try HoPE.encoding(configuration: RotaryConfiguration(), headDimension: 128, cut: .trainingLength(512))
            let r = means(try rope.frequencies(sequenceLength: nil).inverseFrequencies)
            let h = means(try hope.frequencies(sequenceLength: nil).inverseFrequencies)
            let falls = zip(r, r.dropFirst()).allSatisfy { $0 > $1 }
            return .init(holds: falls && h[3] >= 0.5 * h[1],
                         summary: "RoPE's bound by window: " + r.map(format).joined(separator: ", ")
                            + "; HoPE's: " + h.map(format).joined(separator: ", "))
        })
}
