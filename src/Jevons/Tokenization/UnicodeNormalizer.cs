using System.Text;

namespace Jevons.Tokenization;

/// <summary>
/// Canonical Unicode normalization (NFC / NFD) from our own tables: the engine runs with
/// InvariantGlobalization, where <see cref="string.Normalize()"/> leaves text unchanged.
/// </summary>
public static class UnicodeNormalizer
{
    const int SBase = 0xAC00, LBase = 0x1100, VBase = 0x1161, TBase = 0x11A7, LCount = 19, VCount = 21, TCount = 28;
    const int NCount = VCount * TCount, SCount = LCount * NCount;

    static readonly Dictionary<int, int[]> Decompositions = BuildDecompositions();
    static readonly Dictionary<long, int> Compositions = BuildCompositions();

    static Dictionary<int, int[]> BuildDecompositions()
    {
        var table = NormalizationData.Decompositions;
        var map = new Dictionary<int, int[]>(2100);
        for (int i = 0; i < table.Length;)
        {
            int cp = table[i], n = table[i + 1];
            map[cp] = table.AsSpan(i + 2, n).ToArray();
            i += 2 + n;
        }
        return map;
    }

    static Dictionary<long, int> BuildCompositions()
    {
        var table = NormalizationData.Compositions;
        var map = new Dictionary<long, int>(table.Length / 3);
        for (int i = 0; i < table.Length; i += 3) map[((long)table[i] << 21) | (uint)table[i + 1]] = table[i + 2];
        return map;
    }

    /// <summary>Canonical combining class of a code point (0 for starters).</summary>
    public static int CombiningClass(int cp)
    {
        if (cp < 0x300) return 0;
        var t = NormalizationData.CombiningClasses;
        int lo = 0, hi = t.Length / 3 - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >> 1;
            if (cp < t[mid * 3]) hi = mid - 1;
            else if (cp > t[mid * 3 + 1]) lo = mid + 1;
            else return t[mid * 3 + 2];
        }
        return 0;
    }

    /// <summary>True when no code unit can take part in a canonical decomposition or composition.</summary>
    static bool IsTriviallyNormalized(string s)
    {
        foreach (var c in s) if (c >= 0x300) return false;
        return true;
    }

    public static string Nfd(string s) => IsTriviallyNormalized(s) ? s : ToString(Decompose(s));

    public static string Nfc(string s)
    {
        if (IsTriviallyNormalized(s)) return s;
        var cps = Decompose(s);
        Compose(cps);
        return ToString(cps);
    }

    static List<int> Decompose(string s)
    {
        var cps = new List<int>(s.Length + 8);
        for (int i = 0; i < s.Length; i++)
        {
            int cp = s[i];
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
                cp = char.ConvertToUtf32(s[i], s[++i]);
            if (cp >= SBase && cp < SBase + SCount)
            {
                int sIndex = cp - SBase;
                cps.Add(LBase + sIndex / NCount);
                cps.Add(VBase + sIndex % NCount / TCount);
                if (sIndex % TCount != 0) cps.Add(TBase + sIndex % TCount);
            }
            else if (cp >= 0xC0 && Decompositions.TryGetValue(cp, out var d)) cps.AddRange(d);
            else cps.Add(cp);
        }
        // Canonical ordering: stable sort of each run of non-starters by combining class.
        for (int i = 1; i < cps.Count; i++)
        {
            int cc = CombiningClass(cps[i]);
            if (cc == 0) continue;
            int j = i;
            while (j > 0)
            {
                int pc = CombiningClass(cps[j - 1]);
                if (pc == 0 || pc <= cc) break;
                (cps[j - 1], cps[j]) = (cps[j], cps[j - 1]);
                j--;
            }
        }
        return cps;
    }

    static int ComposePair(int a, int b)
    {
        if (a >= LBase && a < LBase + LCount && b >= VBase && b < VBase + VCount)
            return SBase + ((a - LBase) * VCount + (b - VBase)) * TCount;
        if (a >= SBase && a < SBase + SCount && (a - SBase) % TCount == 0 && b > TBase && b < TBase + TCount)
            return a + (b - TBase);
        return Compositions.TryGetValue(((long)a << 21) | (uint)b, out var c) ? c : -1;
    }

    static void Compose(List<int> cps)
    {
        if (cps.Count == 0) return;
        int starter = CombiningClass(cps[0]) == 0 ? 0 : -1;
        int lastClass = starter == 0 ? 0 : 256;
        int write = 1;
        for (int i = 1; i < cps.Count; i++)
        {
            int ch = cps[i], cc = CombiningClass(ch);
            if (starter >= 0 && (lastClass < cc || (lastClass == 0 && write - 1 == starter)))
            {
                int composite = ComposePair(cps[starter], ch);
                if (composite >= 0) { cps[starter] = composite; continue; }
            }
            if (cc == 0) starter = write;
            lastClass = cc;
            cps[write++] = ch;
        }
        cps.RemoveRange(write, cps.Count - write);
    }

    static string ToString(List<int> cps)
    {
        var sb = new StringBuilder(cps.Count);
        foreach (var cp in cps)
        {
            if (cp < 0x10000) sb.Append((char)cp);
            else sb.Append(char.ConvertFromUtf32(cp));
        }
        return sb.ToString();
    }
}
