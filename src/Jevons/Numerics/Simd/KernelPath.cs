using System.Runtime.Intrinsics;

namespace Jevons.Numerics.Simd;

/// <summary>The instruction-set width a kernel runs with. Wider paths fall back to narrower ones.</summary>
public enum KernelPath
{
    Scalar = 0,
    V128 = 1,
    V256 = 2,
    V512 = 3,
}

/// <summary>
/// Picks the kernel path: the widest hardware-accelerated vector width, unless the environment
/// variable <c>JEVONS_KERNELS</c> (scalar|v128|v256|v512) forces a narrower one.
/// </summary>
public static class KernelDispatch
{
    /// <summary>The widest path this CPU accelerates (IsHardwareAccelerated).</summary>
    public static KernelPath Hardware { get; } = Detect();

    /// <summary>The path kernels use unless told otherwise: <see cref="Hardware"/> limited by JEVONS_KERNELS.</summary>
    public static KernelPath Default { get; } = FromEnvironment(Environment.GetEnvironmentVariable("JEVONS_KERNELS"));

    static KernelPath Detect() =>
        Vector512.IsHardwareAccelerated ? KernelPath.V512 :
        Vector256.IsHardwareAccelerated ? KernelPath.V256 :
        Vector128.IsHardwareAccelerated ? KernelPath.V128 : KernelPath.Scalar;

    /// <summary>True when the path runs on hardware vectors here (not emulated).</summary>
    public static bool IsAccelerated(KernelPath path) => path <= Hardware;

    /// <summary>Parses scalar|v128|v256|v512 (case-insensitive); null/empty gives <see cref="Hardware"/>.
    /// A request wider than the hardware is clamped to it.</summary>
    public static KernelPath FromEnvironment(string? value)
    {
        if (string.IsNullOrWhiteSpace(value)) return Hardware;
        KernelPath p = value.Trim().ToLowerInvariant() switch
        {
            "scalar" => KernelPath.Scalar,
            "v128" => KernelPath.V128,
            "v256" => KernelPath.V256,
            "v512" => KernelPath.V512,
            _ => throw new JevonsException($"JEVONS_KERNELS='{value}' is not one of scalar, v128, v256, v512"),
        };
        return p > Hardware ? Hardware : p;
    }
}
