using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using Jevons.Formats;
using Jevons.Models;
using Jevons.Numerics;
using Jevons.Training.Autograd;

namespace Jevons.Training.Export;

/// <summary>
/// Writes a trained <see cref="TinyDeepSeek"/> as DeepSeek-V3 ships (a Hugging Face directory) and as
/// llama.cpp's converter writes it (GGUF deepseek2), through the engine's SafetensorsWriter and GgufWriter.
/// The MTP module is layer index num_hidden_layers, with its own copies of the shared embedding and head
/// (model.layers.N.embed_tokens / shared_head.head; GGUF blk.N.nextn.*).
/// </summary>
public static class TinyDeepSeekExport
{
    /// <summary>Every exported tensor by HF name (F32), router biases and the MTP copies included, in name order.</summary>
    public static SortedDictionary<string, (int[] Shape, float[] Data)> HfTensors(TinyDeepSeek model)
    {
        var c = model.Config;
        var all = new SortedDictionary<string, (int[], float[])>(StringComparer.Ordinal);
        foreach (var (name, t) in model.Parameters) all[name] = (t.Shape, t.Data);
        foreach (var (layer, bias) in model.RouterBias) all[Trainer.BiasName(layer)] = ([bias.Length], bias);
        if (c.MtpLayers > 0)
        {
            var embed = model.Parameters["model.embed_tokens.weight"];
            var head = model.Parameters["lm_head.weight"];
            all[$"model.layers.{c.Layers}.embed_tokens.weight"] = (embed.Shape, embed.Data);
            all[$"model.layers.{c.Layers}.shared_head.head.weight"] = (head.Shape, head.Data);
        }
        return all;
    }

    /// <summary>config.json, model.safetensors (F32), and tokenizer.json / tokenizer_config.json copied from <paramref name="tokenizerDir"/>.</summary>
    public static void WriteHuggingFace(TinyDeepSeek model, string directory, string? tokenizerDir = null)
    {
        Directory.CreateDirectory(directory);
        var writer = new SafetensorsWriter();
        foreach (var (name, (shape, data)) in HfTensors(model))
            writer.AddTensor(name, DType.F32, shape.Select(d => (long)d).ToArray(), Bytes(data));
        writer.Write(Path.Combine(directory, "model.safetensors"));
        File.WriteAllText(Path.Combine(directory, "config.json"),
            model.Config.ToHfConfig().ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        if (tokenizerDir is not null)
            foreach (var f in new[] { "tokenizer.json", "tokenizer_config.json", "generation_config.json" })
            {
                var src = Path.Combine(tokenizerDir, f);
                if (File.Exists(src)) File.Copy(src, Path.Combine(directory, f), overwrite: true);
            }
    }

    /// <summary>
    /// Reads back a Hugging Face directory <see cref="WriteHuggingFace"/> wrote (config.json with every key the
    /// trainer needs, model.safetensors in F32/F16/BF16): the trainable model with its router biases. The MTP
    /// module's embedding and head copies are not read (the trainer shares them).
    /// </summary>
    public static TinyDeepSeek ReadHuggingFace(string directory)
    {
        var configPath = Path.Combine(directory, "config.json");
        if (!File.Exists(configPath)) JevonsException.Throw("no config.json: not a Hugging Face model directory", directory);
        TinyDeepSeekConfig config;
        try
        {
            var json = JsonNode.Parse(File.ReadAllText(configPath)) as JsonObject
                ?? JevonsException.Throw<JsonObject>("config.json is not a JSON object", configPath);
            if (json["model_type"]?.GetValue<string>() is not ("deepseek_v3" or "qwen2"))
                JevonsException.Throw($"model_type is '{json["model_type"]}', the trainer reads deepseek_v3 or qwen2 (a model `jevons train` wrote)", configPath);
            config = TinyDeepSeekConfig.FromHfConfig(json);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or NullReferenceException)
        {
            throw new JevonsException($"config.json does not describe a trainer model ({e.Message.Split('\n')[0]})", configPath);
        }
        var model = new TinyDeepSeek(config, new TrainRandom(0));
        using var weights = SafetensorsCheckpoint.Open(directory);
        void Read(string name, float[] into)
        {
            var v = (weights.TryGet(name) ?? JevonsException.Throw<TensorView>("missing tensor", directory, name)).ToFloatArray();
            if (v.Length != into.Length) JevonsException.Throw($"has {v.Length} values, config.json needs {into.Length}", directory, name);
            v.CopyTo(into, 0);
        }
        foreach (var (name, p) in model.Parameters) Read(name, p.Data);
        foreach (var (layer, bias) in model.RouterBias) Read(Trainer.BiasName(layer), bias);
        return model;
    }

    /// <summary>GGUF tensor name of an HF tensor name (llama.cpp's deepseek2 map; routed experts are stacked separately).</summary>
    public static string GgufName(string hf, int layers)
    {
        switch (hf)
        {
            case "model.embed_tokens.weight": return "token_embd.weight";
            case "model.norm.weight": return "output_norm.weight";
            case "lm_head.weight": return "output.weight";
        }
        const string prefix = "model.layers.";
        if (!hf.StartsWith(prefix, StringComparison.Ordinal)) throw new ArgumentException($"no GGUF name for '{hf}'");
        int dot = hf.IndexOf('.', prefix.Length);
        int l = int.Parse(hf.AsSpan(prefix.Length, dot - prefix.Length), CultureInfo.InvariantCulture);
        string rest = hf[(dot + 1)..], b = $"blk.{l}.";
        string? name = rest switch
        {
            "input_layernorm.weight" => "attn_norm.weight",
            "post_attention_layernorm.weight" => "ffn_norm.weight",
            "self_attn.q_proj.weight" => "attn_q.weight",
            "self_attn.q_proj.bias" => "attn_q.bias",
            "self_attn.k_proj.weight" => "attn_k.weight",
            "self_attn.k_proj.bias" => "attn_k.bias",
            "self_attn.v_proj.weight" => "attn_v.weight",
            "self_attn.v_proj.bias" => "attn_v.bias",
            "self_attn.q_a_proj.weight" => "attn_q_a.weight",
            "self_attn.q_a_layernorm.weight" => "attn_q_a_norm.weight",
            "self_attn.q_b_proj.weight" => "attn_q_b.weight",
            "self_attn.kv_a_proj_with_mqa.weight" => "attn_kv_a_mqa.weight",
            "self_attn.kv_a_layernorm.weight" => "attn_kv_a_norm.weight",
            "self_attn.kv_b_proj.weight" => "attn_kv_b.weight",
            "self_attn.o_proj.weight" => "attn_output.weight",
            "mlp.gate_proj.weight" => "ffn_gate.weight",
            "mlp.up_proj.weight" => "ffn_up.weight",
            "mlp.down_proj.weight" => "ffn_down.weight",
            "mlp.gate.weight" => "ffn_gate_inp.weight",
            "mlp.gate.e_score_correction_bias" => "exp_probs_b.bias",
            "mlp.shared_experts.gate_proj.weight" => "ffn_gate_shexp.weight",
            "mlp.shared_experts.up_proj.weight" => "ffn_up_shexp.weight",
            "mlp.shared_experts.down_proj.weight" => "ffn_down_shexp.weight",
            "enorm.weight" => "nextn.enorm.weight",
            "hnorm.weight" => "nextn.hnorm.weight",
            "eh_proj.weight" => "nextn.eh_proj.weight",
            "embed_tokens.weight" => "nextn.embed_tokens.weight",
            "shared_head.norm.weight" => "nextn.shared_head_norm.weight",
            "shared_head.head.weight" => "nextn.shared_head_head.weight",
            _ => null,
        };
        return name is null ? throw new ArgumentException($"no GGUF name for '{hf}'") : b + name;
    }

    /// <summary>
    /// A GGUF deepseek2 file (F32): llama.cpp's metadata keys (block_count includes the MTP layer, as
    /// nextn_predict_layers says), kv_b unsplit, routed experts stacked [experts, out, in], and the tokenizer
    /// from <paramref name="tokenizerDir"/>'s tokenizer.json when given.
    /// </summary>
    public static void WriteGguf(TinyDeepSeek model, string path, string? tokenizerDir = null, string preTokenizer = "deepseek-v3")
    {
        var c = model.Config;
        var w = new GgufWriter();
        foreach (var (key, value) in c.IsQwen2 ? Qwen2GgufMetadata(c) : DeepSeekConfigWriter.GgufMetadata(c.ToDeepSeekConfig(), "jevons-tiny-deepseek", fileType: 0))
            w.Set(key, value);
        if (tokenizerDir is not null) WriteGgufTokenizer(w, Path.Combine(tokenizerDir, "tokenizer.json"), preTokenizer, c);

        foreach (var (name, (shape, data)) in HfTensors(model))
        {
            if (name.Contains(".mlp.experts.", StringComparison.Ordinal)) continue;
            w.AddTensor(GgufName(name, c.Layers), DType.F32, shape.Select(d => (long)d).ToArray(), Bytes(data));
        }
        foreach (var layer in model.RouterBias.Keys.Order())
            foreach (var proj in new[] { "gate", "up", "down" })
            {
                var first = model.Parameters[$"model.layers.{layer}.mlp.experts.0.{proj}_proj.weight"];
                var stacked = new float[first.Length * c.RoutedExperts];
                for (int e = 0; e < c.RoutedExperts; e++)
                    model.Parameters[$"model.layers.{layer}.mlp.experts.{e}.{proj}_proj.weight"].Data.CopyTo(stacked, e * first.Length);
                w.AddTensor($"blk.{layer}.ffn_{proj}_exps.weight", DType.F32, [c.RoutedExperts, first.Shape[0], first.Shape[1]], Bytes(stacked));
            }
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        w.Write(path);
    }

    /// <summary>llama.cpp's qwen2 keys, as its converter writes them for R1-Distill-Qwen (the synth plan's), F32.</summary>
    static IEnumerable<KeyValuePair<string, GgufValue>> Qwen2GgufMetadata(TinyDeepSeekConfig c) =>
        c.ToQwen2Shape().Plan().GgufMetadata
            .Select(kv => kv.Key == "general.name" ? new KeyValuePair<string, GgufValue>(kv.Key, GgufValue.String("jevons-tiny-qwen2")) : kv)
            .Append(new("general.file_type", GgufValue.UInt32(0)));

    /// <summary>tokenizer.ggml.* from a byte-level BPE tokenizer.json (model.vocab, model.merges, added_tokens).</summary>
    static void WriteGgufTokenizer(GgufWriter w, string tokenizerJson, string preTokenizer, TinyDeepSeekConfig c)
    {
        var root = JsonNode.Parse(File.ReadAllText(tokenizerJson))!;
        var vocab = root["model"]!["vocab"]!.AsObject();
        var specials = new HashSet<int>();
        int size = c.VocabSize;
        var tokens = new string[size];
        foreach (var (tok, id) in vocab)
        {
            int i = id!.GetValue<int>();
            if (i < size) tokens[i] = tok;
        }
        if (root["added_tokens"] is JsonArray added)
            foreach (var t in added)
            {
                int i = t!["id"]!.GetValue<int>();
                if (i >= size) continue;
                tokens[i] = t["content"]!.GetValue<string>();
                if (t["special"]?.GetValue<bool>() ?? true) specials.Add(i);
            }
        var types = new int[size];
        for (int i = 0; i < size; i++)
        {
            types[i] = specials.Contains(i) ? 3 : 1; // CONTROL : NORMAL
            if (tokens[i] is null) { tokens[i] = $"[PAD{i}]"; types[i] = 5; } // UNUSED
        }
        var merges = root["model"]!["merges"]!.AsArray()
            .Select(m => m is JsonArray pair ? $"{pair[0]!.GetValue<string>()} {pair[1]!.GetValue<string>()}" : m!.GetValue<string>()).ToArray();
        w.Set("tokenizer.ggml.model", GgufValue.String("gpt2"));
        w.Set("tokenizer.ggml.pre", GgufValue.String(preTokenizer));
        w.Set("tokenizer.ggml.tokens", GgufValue.Array(tokens));
        w.Set("tokenizer.ggml.token_type", GgufValue.Array(types));
        w.Set("tokenizer.ggml.merges", GgufValue.Array(merges));
        w.Set("tokenizer.ggml.bos_token_id", GgufValue.UInt32((uint)c.BosTokenId));
        w.Set("tokenizer.ggml.eos_token_id", GgufValue.UInt32((uint)c.EosTokenId));
        w.Set("tokenizer.ggml.add_bos_token", GgufValue.Bool(true));
        w.Set("tokenizer.ggml.add_eos_token", GgufValue.Bool(false));
    }

    static ReadOnlyMemory<byte> Bytes(float[] data) => MemoryMarshal.AsBytes(data.AsSpan()).ToArray();
}
