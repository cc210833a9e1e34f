namespace Jevons.Tokenization;

/// <summary>
/// The regex sets llama.cpp uses for each GGUF tokenizer.ggml.pre name (src/llama-vocab.cpp at
/// the golden commit). Each regex splits every piece the previous one left, keeping matches
/// and the text between them.
/// </summary>
public static class PreTokenizerPresets
{
    /// <summary>GPT-2's split regex.</summary>
    public const string Gpt2 = ByteLevelSplit.Gpt2Pattern;

    /// <summary>Llama-3 (tiktoken cl100k style; llama.cpp spells the case-insensitive part out).</summary>
    public const string Llama3 =
        @"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// <summary>Qwen2 / R1-Distill-Qwen: Llama-3's regex with single digits.</summary>
    public const string Qwen2 =
        @"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// <summary>DeepSeek-V3 / R1: digits in runs of 1-3, CJK and kana runs, then the main regex.</summary>
    public static readonly string[] DeepSeekV3 =
    [
        @"\p{N}{1,3}",
        "[一-龥぀-ゟ゠-ヿ]+",
        "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
    ];

    /// <summary>
    /// DeepSeek-LLM (V2 family). The letter class lists cased-letter ranges; its five ranges
    /// outside the BMP (Deseret, Osage, Old Hungarian, Warang Citi, Adlam) are left out here.
    /// </summary>
    public static readonly string[] DeepSeekLlm =
    [
        "[\r\n]",
        "\\s?[A-Za-z\\u00B5\\u00C0-\\u00D6\\u00D8-\\u00F6\\u00F8-\\u01BA\\u01BC-\\u01BF\\u01C4-\\u0293\\u0295-\\u02AF\\u0370-\\u0373\\u0376\\u0377\\u037B-\\u037D\\u037F\\u0386\\u0388-\\u038A\\u038C\\u038E-\\u03A1\\u03A3-\\u03F5\\u03F7-\\u0481\\u048A-\\u052F\\u0531-\\u0556\\u10A0-\\u10C5\\u13A0-\\u13F5\\u13F8-\\u13FD\\u1C90-\\u1CBA\\u1CBD-\\u1CBF\\u1D00-\\u1D2B\\u1D6B-\\u1D77\\u1D79-\\u1D9A\\u1E00-\\u1F15\\u1F18-\\u1F1D\\u1F20-\\u1F45\\u1F48-\\u1F4D\\u1F50-\\u1F57\\u1F59\\u1F5B\\u1F5D\\u1F5F-\\u1F7D\\u1F80-\\u1FB4\\u1FB6-\\u1FBC\\u1FBE\\u1FC2-\\u1FC4\\u1FC6-\\u1FCC\\u1FD0-\\u1FD3\\u1FD6-\\u1FDB\\u1FE0-\\u1FEC\\u1FF2-\\u1FF4\\u1FF6-\\u1FFC\\u2102\\u2107\\u210A-\\u2113\\u2115\\u2119-\\u211D\\u2124\\u2126\\u2128\\u212A-\\u212D\\u212F-\\u2134\\u2139\\u213C-\\u213F\\u2145-\\u2149\\u214E\\u2183\\u2184\\u2C00-\\u2C7B\\u2C7E-\\u2CE4\\u2CEB-\\u2CEE\\u2CF2\\u2CF3\\uA640-\\uA66D\\uA680-\\uA69B\\uA722-\\uA76F\\uA771-\\uA787\\uA78B-\\uA78E\\uAB70-\\uABBF\\uFB00-\\uFB06\\uFB13-\\uFB17\\uFF21-\\uFF3A\\uFF41-\\uFF5A]+",
        "\\s?[!-/:-~！-／：-～‘-‟　-。]+",
        "\\s+$",
        "[一-龥ࠀ-一가-퟿]+",
        @"\p{N}+",
    ];

    public static readonly string[] DeepSeekCoder =
    [
        "[\r\n]",
        @"\s?\p{L}+",
        @"\s?\p{P}+",
        "[一-龥ࠀ-一가-퟿]+",
        @"\p{N}",
    ];

    /// <summary>llama.cpp's fallback for an unknown or "default" pre-tokenizer.</summary>
    public static readonly string[] Default =
    [
        @"[\p{P}\$\+<=>\^~\|]+",
        Gpt2,
        @"\p{N}+",
        "[0-9][0-9][0-9]",
    ];

    /// <summary>The regexes for a tokenizer.ggml.pre value, or null when it is not supported.</summary>
    public static string[]? ForGguf(string? pre) => pre switch
    {
        null or "default" => Default,
        "llama3" or "llama-v3" or "llama-bpe" or "falcon3" or "dbrx" or "smaug-bpe" => [Llama3],
        "qwen2" or "deepseek-r1-qwen" or "stablelm2" => [Qwen2],
        "deepseek-v3" => DeepSeekV3,
        "deepseek-llm" => DeepSeekLlm,
        "deepseek-coder" => DeepSeekCoder,
        "gpt-2" or "gpt2" or "mpt" or "olmo" or "jais" => [Gpt2],
        _ => null,
    };

    /// <summary>The steps of a regex set (every split isolates its matches).</summary>
    public static PreTokenizer[] Build(IEnumerable<string> regexes) => regexes.Select(r => (PreTokenizer)new RegexSplit(r)).ToArray();
}
