using Jevons.Formats;
using Jevons.Tokenization;

namespace Jevons.Models;

/// <summary>A model with what it needs to talk: its tokenizer and the files they came from.</summary>
public sealed class LoadedModel : IDisposable
{
    LoadedModel(ModelSource source, Model model, Tokenizer? tokenizer)
    {
        Source = source;
        Model = model;
        Tokenizer = tokenizer;
    }

    public ModelSource Source { get; }
    public Model Model { get; }
    /// <summary>Null when the files hold no tokenizer (a GGUF without tokenizer.ggml.*, a directory without tokenizer.json).</summary>
    public Tokenizer? Tokenizer { get; }

    /// <summary>The tokenizer, or a one-line error saying where it was looked for.</summary>
    public Tokenizer RequireTokenizer() => Tokenizer
        ?? JevonsException.Throw<Tokenizer>(Source.Format == ModelFormat.Gguf
            ? "the GGUF file has no tokenizer (tokenizer.ggml.tokens is missing); pass token ids with --ids"
            : "no tokenizer.json beside the model; pass token ids with --ids", Source.Path);

    /// <summary>Opens a .gguf file or a Hugging Face directory, builds the model and loads its tokenizer.</summary>
    public static LoadedModel Load(string path, ModelOptions options, bool loadTokenizer = true)
    {
        var source = ModelLoader.Open(path);
        try
        {
            var model = ModelRegistry.Create(source, options);
            Tokenizer? tokenizer = loadTokenizer ? LoadTokenizer(source) : null;
            return new LoadedModel(source, model, tokenizer);
        }
        catch
        {
            source.Dispose();
            throw;
        }
    }

    /// <summary>Only the tokenizer of a model (no weights are touched).</summary>
    public static Tokenizer LoadTokenizer(string modelPath)
    {
        using var source = ModelLoader.Open(modelPath);
        return LoadTokenizer(source) ?? JevonsException.Throw<Tokenizer>(source.Format == ModelFormat.Gguf
            ? "the GGUF file has no tokenizer (tokenizer.ggml.tokens is missing)"
            : "no tokenizer.json beside the model", source.Path);
    }

    static Tokenizer? LoadTokenizer(ModelSource source)
    {
        if (source.Format == ModelFormat.Gguf)
            return source.Config.Has("tokenizer.ggml.tokens") ? Tokenizer.FromGguf(source.Config) : null;
        var dir = Directory.Exists(source.Path) ? source.Path : Path.GetDirectoryName(Path.GetFullPath(source.Path))!;
        return File.Exists(Path.Combine(dir, "tokenizer.json")) ? Tokenizer.Load(dir) : null;
    }

    public void Dispose()
    {
        Model.Dispose();
        Source.Dispose();
    }
}
