import Foundation

/// RoFormer's long-term-decay curve (Su et al. 2021, §3.4.3): for relative distance r,
///
///     bound(r) = (1/(D/2)) · Σ_{j=1}^{D/2} |S_j|,   S_j = Σ_{k<j} e^{i·r·θ_k}
///
/// which bounds how strongly a rotated query–key product can depend on content at distance r.
/// It falls with r for RoPE; with HoPE's zeroed low frequencies it levels off instead (θ = 0
/// terms add 1 at every distance: no long-term decay). Computed in Double.
public enum DecayCurve {
    public static func bound(inverseFrequencies theta: [Double], maximumDistance: Int) -> [Double] {
        let pairs = Double(max(theta.count, 1))
        return (0...max(0, maximumDistance)).map { r in
            var re = 0.0, im = 0.0, total = 0.0
            for t in theta {
                re += cos(Double(r) * t); im += sin(Double(r) * t)
                total += (re * re + im * im).squareRoot()
            }
            return total / pairs
        }
    }
}
