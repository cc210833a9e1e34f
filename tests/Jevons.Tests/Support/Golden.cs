namespace Jevons.Tests.Support;

/// <summary>Locates ../shared/golden (or $JEVONS_GOLDEN) and the repository root.</summary>
public static class Golden
{
    public static string RepoRoot { get; } = FindRepoRoot();

    static string FindRepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !System.IO.File.Exists(Path.Combine(dir.FullName, "Jevons.sln")))
            dir = dir.Parent;
        return dir?.FullName ?? Directory.GetCurrentDirectory();
    }

    /// <summary>The golden folder, or null when it is absent (tests then skip with a reason).</summary>
    public static string? Root
    {
        get
        {
            var env = Environment.GetEnvironmentVariable("JEVONS_GOLDEN");
            var path = string.IsNullOrEmpty(env) ? Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared", "golden")) : env;
            return Directory.Exists(path) ? path : null;
        }
    }

    public static string SkipReason => "golden data not found: set JEVONS_GOLDEN or put ../shared/golden beside the repository";

    /// <summary>Path of a golden file, or null (skip) when the golden folder is absent.</summary>
    public static string? File(params string[] parts) => Root is null ? null : Path.Combine([Root, .. parts]);

    public static float[] ReadF32(string path)
    {
        var bytes = System.IO.File.ReadAllBytes(path);
        var result = new float[bytes.Length / 4];
        Buffer.BlockCopy(bytes, 0, result, 0, result.Length * 4);
        return result;
    }
}
