using System.Text.RegularExpressions;
using Jevons.Tests.Support;
using Xunit;

namespace Jevons.Tests.Numerics;

/// <summary>
/// Numerics is three layers with no import circle: Simd (vector helpers, the half/bf16/FP8 decoders, the float dots) at
/// the bottom, Quants (the block formats and their dots) above it, Kernels (the drivers: MatMul, Gemm, the worker pool,
/// the fused and grouped kernels) on top. A file may use its own layer and those below, never one above.
/// </summary>
public class LayeringTests
{
    static readonly string Numerics = Path.Combine(Golden.RepoRoot, "src", "Jevons", "Numerics");

    // What each layer must not name: the layers above it, by namespace or by a type only they hold.
    static readonly Dictionary<string, string[]> Forbidden = new()
    {
        ["Simd"] = ["Jevons.Numerics.Quants", "Jevons.Numerics.Kernels", "Quants.", "Kernels.", "Quantization.", "BlockBits", "IBlockFormat",
            "WorkerPool", "MatMul", "GemmTiles", "Linear"],
        ["Quants"] = ["Jevons.Numerics.Kernels", "Kernels.", "WorkerPool", "MatMul.", "GemmTiles", "GroupedGemm", "Int8Routes", "Linear w"],
    };

    public static TheoryData<string> Layers => new(Forbidden.Keys);

    [Theory]
    [MemberData(nameof(Layers))]
    public void NoFileNamesALayerAboveItsOwn(string layer)
    {
        var files = Directory.GetFiles(Path.Combine(Numerics, layer), "*.cs");
        Assert.NotEmpty(files);
        var offences = new List<string>();
        foreach (var file in files)
        {
            int line = 0;
            foreach (var text in File.ReadLines(file))
            {
                line++;
                string code = Regex.Replace(text, "//.*$", ""); // comments may mention the drivers they serve
                foreach (var word in Forbidden[layer])
                    if (Regex.IsMatch(code, $@"(?<![\w.]){Regex.Escape(word)}"))
                        offences.Add($"{Path.GetFileName(file)}:{line} names {word}: {text.Trim()}");
            }
        }
        Assert.True(offences.Count == 0, string.Join("\n", offences));
    }

    [Fact]
    public void TheCheckSeesAnOffence()
    {
        // The same pattern as above on a line that breaks the rule, so the check cannot pass by matching nothing.
        Assert.Matches($@"(?<![\w.]){Regex.Escape("Kernels.")}", "    var p = Kernels.KernelDispatch.Default;");
        Assert.DoesNotMatch($@"(?<![\w.]){Regex.Escape("Kernels.")}", "using Jevons.Numerics.Simd; // Jevons.Numerics.Kernels.X");
    }
}
