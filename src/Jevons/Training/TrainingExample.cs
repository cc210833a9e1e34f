namespace Jevons.Training;

/// <summary>One training sequence: token ids and, per token, the weight of predicting it (0 = no loss: prompt, padding).</summary>
public sealed record TrainingExample(int[] Ids, float[] LossMask)
{
    public static TrainingExample FromBools(int[] ids, bool[] mask) => new(ids, mask.Select(m => m ? 1f : 0f).ToArray());
}
