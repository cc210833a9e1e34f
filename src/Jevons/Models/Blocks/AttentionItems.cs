namespace Jevons.Models.Blocks;

/// <summary>
/// The parallel work items of one step's attention, shared by <see cref="GqaAttention"/> and <see cref="Mla"/>:
/// item = segment · heads + head. Each item owns a slice of one scratch array: a float per position its
/// segment's block table can address (the scores; sized by the table, not the position, so the slice stays the
/// same while a sequence decodes) plus a fixed part the block lays out as it likes.
/// </summary>
internal static class AttentionItems
{
    /// <summary>Floats of one item's scratch.</summary>
    public static int Scratch(int positions, int fixedPart) => positions + fixedPart;

    /// <summary>Sets <paramref name="itemBase"/>[segment] (where its head 0 starts) and grows <paramref name="scratch"/> to hold every item.</summary>
    public static void Layout(StepWorkspace step, int heads, int blockSize, int fixedPart, ref int[] itemBase, ref float[] scratch)
    {
        var bases = StepWorkspace.Ensure(ref itemBase, step.Segments);
        long total = 0;
        for (int sg = 0; sg < step.Segments; sg++)
        {
            bases[sg] = checked((int)total);
            total += (long)heads * Scratch(step.PositionBound(sg, blockSize), fixedPart);
        }
        StepWorkspace.Ensure(ref scratch, total);
    }

    /// <summary>Item <paramref name="item"/> of a step laid out by <see cref="Layout"/>.</summary>
    public static Item Get(StepWorkspace step, int item, int heads, int blockSize, int fixedPart, int[] itemBase, float[] scratch)
    {
        int sg = item / heads, h = item % heads, bound = step.PositionBound(sg, blockSize), size = Scratch(bound, fixedPart);
        return new Item(h, step.Table(sg), step.Row0(sg), step.Count(sg), step.Pos0(sg), bound, scratch.AsSpan(itemBase[sg] + h * size, size));
    }

    /// <summary>
    /// One (segment, head): the head, the segment's block table, its rows Row0 .. Row0 + Count − 1 at positions
    /// Pos0 .. Pos0 + Count − 1, the positions its table addresses, and the item's scratch.
    /// </summary>
    public readonly ref struct Item(int head, ReadOnlySpan<int> table, int row0, int count, int pos0, int bound, Span<float> scratch)
    {
        public readonly int Head = head, Row0 = row0, Count = count, Pos0 = pos0, Bound = bound;
        public readonly ReadOnlySpan<int> Table = table;
        public readonly Span<float> Scratch = scratch;
    }
}
