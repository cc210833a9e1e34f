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
        "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ]+",
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
