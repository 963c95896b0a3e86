// `tunelab quantize`: a model folder's weights -> a quantized folder (packed codes + scales,
// engine/quant/quant_io) that `tunelab eval` and `tunelab generate` load (dequantized on load). Bad input: a
// message, exit 2, nothing written.
#include <cstdio>
#include <filesystem>

#include "common.hpp"
#include "core/error.hpp"
#include "model/model_io.hpp"
#include "quant/quant_io.hpp"

namespace tl::cli {

namespace {

struct QuantizeOptions {
    CommonOptions common;
    std::string model, out, format, granularity, symmetry = "symmetric", clip, double_quant = "none";
    std::int64_t group = 0;
    bool skip_embeddings = false;
};

std::string granularity_name(const QuantizeOptions& o) {
    std::string g = o.granularity.empty() ? (o.group > 0 ? "group" : "channel") : o.granularity;
    if (g == "tensor" || g == "channel" || g == "group") g = "per_" + g;
    if (g != "per_tensor" && g != "per_channel" && g != "per_group")
        throw Error("[cli] unknown granularity '" + o.granularity + "'; use tensor, channel or group");
    return g;
}

QuantScheme scheme_of(const QuantizeOptions& o) {
    const std::string g = granularity_name(o);
    const std::int64_t group = o.group > 0 ? o.group : 32;
    if (o.group < 0) throw Error("[cli] --group must be >= 1; got " + std::to_string(o.group));
    if (o.group > 0 && g != "per_group")
        throw Error("[cli] --group " + std::to_string(o.group) + " needs --granularity group; got " +
                    o.granularity);
    QuantScheme s = make_scheme(o.format, g, group);
    s.symmetry = parse_symmetry(o.symmetry);
    if (!o.clip.empty()) s.clip = parse_clip(o.clip);
    s.double_quant = parse_double_quant(o.double_quant);
    return s;
}

void run_quantize(const QuantizeOptions& o) {
    namespace fs = std::filesystem;
    const QuantScheme scheme = scheme_of(o);  // every check before any work or write
    check_output_folder(o.out);
    if (fs::exists(o.out) && fs::equivalent(o.model, o.out))
        throw Error("[cli] --out is the --model folder; write the quantized model to a new folder");
    if (is_quantized_folder(o.model))
        throw Error("[cli] " + o.model + " is already quantized; quantize the original fp32 folder instead");
    auto backend = make_backend(o.common);
    LoadedModel lm = load_model(o.model, *backend);
    const EmbeddingPolicy emb = o.skip_embeddings ? EmbeddingPolicy::keep_fp32 : EmbeddingPolicy::quantize;
    const QuantPlan plan = uniform_plan(*lm.model, scheme, emb);
    const QuantFootprint f = footprint(*lm.model, plan);
    save_quantized_model(o.out, *lm.model, plan, lm.meta);
    const auto file_bytes = fs::file_size(fs::path(o.out) / "model.safetensors");
    std::printf("%s: %zu tensors (%lld weights) at %.3f bits/weight; embeddings %s\n",
                describe(scheme).c_str(), plan.size(), (long long)f.quantized_params,
                f.bits_per_quantized_weight(), o.skip_embeddings ? "kept fp32" : "quantized");
    std::printf(
        "model %.1f KiB fp32 -> %.1f KiB (%.2f bits/weight over all %lld parameters); file %.1f KiB\n",
        4.0 * double(lm.model->params().total()) / 1024, f.bytes() / 1024, f.bits_per_weight(),
        (long long)lm.model->params().total(), double(file_bytes) / 1024);
    std::printf("wrote %s (run it with `tunelab eval --model %s --task ...`)\n", o.out.c_str(),
                o.out.c_str());
}

}  // namespace

void add_quantize_command(CLI::App& app) {
    auto o = std::make_shared<QuantizeOptions>();
    CLI::App* cmd =
        app.add_subcommand("quantize", "Quantize a model folder's weights (PTQ) into a new folder");
    cmd->add_option("--model", o->model, "model folder (fp32)")->required();
    cmd->add_option("--format", o->format,
                    "int8, int4, nf4, fp4_e2m1, fp8_e4m3, ternary, palette2/3/4, bf16, ...")
        ->required();
    cmd->add_option("--granularity", o->granularity,
                    "tensor, channel or group (default: group with --group, else channel)");
    cmd->add_option("--group", o->group,
                    "group size along the input dimension (granularity group; default 32)");
    cmd->add_option("--symmetry", o->symmetry, "symmetric or asymmetric (int8/int4)")->capture_default_str();
    cmd->add_option("--clip", o->clip, "absmax, absmean or mse (default: absmax; ternary absmean)");
    cmd->add_option("--double-quant", o->double_quant, "none, int8 or fp8_e4m3 (QLoRA's scale quantization)")
        ->capture_default_str();
    cmd->add_flag("--skip-embeddings", o->skip_embeddings, "keep wte and wpe in fp32");
    cmd->add_option("--out", o->out, "folder to write")->required();
    add_common_options(*cmd, o->common);
    cmd->callback([o] { run_quantize(*o); });
}

}  // namespace tl::cli
