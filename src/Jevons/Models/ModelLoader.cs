using Jevons.Formats;

namespace Jevons.Models;

/// <summary>
/// Opens a model from what a user points at: a <c>.gguf</c> file, a Hugging Face directory
/// (config.json plus safetensors, sharded or not), a <c>.safetensors</c> or <c>*.index.json</c>
/// file with config.json beside it, or config.json itself. Only headers are read; weights stay
/// mapped. Every wrong path is a one-line <see cref="JevonsException"/>.
/// </summary>
public static class ModelLoader
{
    public static ModelSource Open(string path)
    {
        if (string.IsNullOrWhiteSpace(path))
            JevonsException.Throw("the model path is empty");
        if (Directory.Exists(path)) return OpenDirectory(path);
        if (!File.Exists(path))
            JevonsException.Throw("path does not exist", path);

        var name = Path.GetFileName(path);
        if (name.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase))
            return OpenGguf(path);
        if (name.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase) || name.EndsWith(".index.json", StringComparison.OrdinalIgnoreCase))
            return OpenHuggingFace(path, Path.Combine(DirectoryOf(path), "config.json"), path);
        if (name.Equals("config.json", StringComparison.OrdinalIgnoreCase))
            return OpenHuggingFace(DirectoryOf(path), path, DirectoryOf(path));
        return JevonsException.Throw<ModelSource>(
            $"unknown model file type '{Path.GetExtension(path)}' (expected a .gguf or .safetensors file, or a Hugging Face model directory)", path);
    }

    static string DirectoryOf(string file) => Path.GetDirectoryName(Path.GetFullPath(file))!;

    static ModelSource OpenDirectory(string dir)
    {
        var config = Path.Combine(dir, "config.json");
        if (File.Exists(config)) return OpenHuggingFace(dir, config, dir);

        var ggufs = Directory.GetFiles(dir, "*.gguf");
        if (ggufs.Length == 1) return OpenGguf(ggufs[0]);
        return JevonsException.Throw<ModelSource>(ggufs.Length == 0
            ? "directory has no config.json (a Hugging Face model needs one) and no .gguf file"
            : $"directory has no config.json and {ggufs.Length} .gguf files; name the one to load", dir);
    }

    static ModelSource OpenGguf(string path)
    {
        var gguf = GgufFile.Open(path);
        try
        {
            var arch = gguf.Metadata.GetString("general.architecture");
            if (string.IsNullOrEmpty(arch))
                JevonsException.Throw("GGUF metadata has no general.architecture", path);
            return new ModelSource(path, ModelFormat.Gguf, arch, gguf, gguf.Metadata);
        }
        catch
        {
            gguf.Dispose();
            throw;
        }
    }

    static ModelSource OpenHuggingFace(string path, string configPath, string weightsPath)
    {
        if (!File.Exists(configPath))
            JevonsException.Throw("no config.json beside the weights (a Hugging Face model needs one)", path);
        var config = JsonConfig.Load(configPath);
        var architectures = config.GetStringArray("architectures");
        var arch = architectures is { Length: > 0 } ? architectures[0] : config.GetString("model_type");
        if (string.IsNullOrEmpty(arch))
            JevonsException.Throw("config.json has neither 'architectures' nor 'model_type'", configPath);
        var weights = SafetensorsCheckpoint.Open(weightsPath);
        return new ModelSource(path, ModelFormat.HuggingFace, arch, weights, config);
    }
}
