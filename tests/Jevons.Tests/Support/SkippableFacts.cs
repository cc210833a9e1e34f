using Xunit;

namespace Jevons.Tests.Support;

/// <summary>A fact that is skipped, with the reason, when ../shared/golden is absent.</summary>
public sealed class GoldenFactAttribute : FactAttribute
{
    public GoldenFactAttribute()
    {
        if (Golden.Root is null) Skip = Golden.SkipReason;
    }
}

/// <summary>A theory that is skipped, with the reason, when ../shared/golden is absent.</summary>
public sealed class GoldenTheoryAttribute : TheoryAttribute
{
    public GoldenTheoryAttribute()
    {
        if (Golden.Root is null) Skip = Golden.SkipReason;
    }
}
