// `tunelab pretrain` and `tunelab finetune`: train, print a summary, save the model folder atomically.
// finetune --method lora|qlora|bitfit|partial|ia3|adapter|prompt|ptuning|prefix applies a PEFT method (engine/peft,
// docs/peft.md); LoRA (and QLoRA's adapter), IA3 and the soft prompts write Hugging Face PEFT folders (LoRA and IA3, with --merged-out,
// also the merged model). --precision bf16|fp16 simulates low-precision training on the CPU
// (backend/rounding_backend.hpp); with --device cuda, --precision tf32|bf16|fp16 is the GPU GEMMs' real arithmetic
// (core/backend.hpp GemmPrecision). Both take --loss-scale none|dynamic|N (fp16 defaults to dynamic).
#include <filesystem>
#include <chrono>
#include <cstdio>

#include "backend/rounding_backend.hpp"
#include "common.hpp"
#include "core/error.hpp"
#include "model/config.hpp"
#include "model/model_io.hpp"
#include "peft/ia3_io.hpp"
#include "peft/lora_io.hpp"
#include "peft/soft_prompt_io.hpp"
#include "train/progress.hpp"
#include "train/recipes.hpp"

namespace tl::cli {

namespace {

// --precision and --loss-scale, shared by pretrain and finetune.
struct PrecisionOptions {
    std::string precision = "fp32", loss_scale = "auto";
};

void add_precision_options(CLI::App& cmd, PrecisionOptions& o) {
    cmd.add_option("--precision", o.precision, "fp32; on the CPU bf16/fp16 simulated bit-exactly (FP32 master weights "
                   "and accumulation); with --device cuda tf32, bf16 or fp16 run the GEMMs on the GPU's tensor cores "
                   "(FP32 accumulation, master weights and optimizer)")->capture_default_str();
    cmd.add_option("--loss-scale", o.loss_scale, "none, dynamic (GradScaler: 2^16, x2 every 2000 good steps, /2 and "
                   "skip on inf) or a fixed number; auto: dynamic for fp16, none otherwise")->capture_default_str();
}

// The backend for --device and --precision. On the CPU, bf16/fp16 are simulated: the model is built on the rounding
// wrapper. On CUDA, --precision is the GEMMs' real arithmetic (CudaOptions::gemm) and the trainer's simulation stays
// off (spec.precision fp32). Fills the spec's precision and loss scaling (auto: dynamic for fp16, none otherwise).
struct TrainBackend {
    std::unique_ptr<Backend> backend;
    std::unique_ptr<RoundingBackend> rounding;        // CPU bf16/fp16 only
    GemmPrecision gpu_gemm = GemmPrecision::fp32;     // --device cuda: what the GEMMs compute in
    Backend& model_backend() const { return rounding ? *rounding : *backend; }
};

template <class Spec>
TrainBackend make_train_backend(const CommonOptions& common, const PrecisionOptions& o, Spec& spec) {
    const bool is_auto = o.loss_scale == "auto";
    TrainBackend tb;
    if (common.device == "cuda") {
        tb.gpu_gemm = parse_gemm_precision(o.precision);  // before the backend: a typo fails without a GPU too
        spec.precision = Precision::fp32;
        spec.loss_scale =
            parse_loss_scaling(is_auto ? (tb.gpu_gemm == GemmPrecision::fp16 ? "dynamic" : "none") : o.loss_scale);
        tb.backend = make_backend(common, tb.gpu_gemm);
        return tb;
    }
    if (o.precision == "tf32")
        throw Error("[cli] --precision tf32 is the GPU tensor cores' format: use it with --device cuda (on the CPU: "
                    "fp32, or bf16/fp16 simulated)");
    spec.precision = parse_precision(o.precision);
    spec.loss_scale = parse_loss_scaling(is_auto ? (spec.precision == Precision::fp16 ? "dynamic" : "none")
                                                 : o.loss_scale);
    tb.backend = make_backend(common);
    if (spec.precision != Precision::fp32) tb.rounding = std::make_unique<RoundingBackend>(*tb.backend);
    return tb;
}

// One line after training in low precision: the loss scale, skipped steps and (simulated) what underflowed.
void print_precision_report(const TrainBackend& tb, Precision p, const TrainSummary& s, const LossScaleConfig& ls) {
    if (tb.gpu_gemm != GemmPrecision::fp32) {
        std::printf("precision %s on the GPU (tensor-core GEMMs, FP32 accumulation, master weights and optimizer), "
                    "loss scaling %s: final scale %g, %lld steps skipped\n",
                    std::string(gemm_precision_name(tb.gpu_gemm)).c_str(), loss_scaling_name(ls).c_str(),
                    s.loss_scale, (long long)s.skipped_steps);
        return;
    }
    const RoundingBackend* rb = tb.rounding.get();
    if (!rb) return;
    const RoundingStats& st = rb->stats();
    std::printf("precision %s (simulated), loss scaling %s: final scale %g, %lld steps skipped; gradient values "
                "flushed to zero %.2f%% of nonzero, activations %.2f%%\n",
                std::string(precision_name(p)).c_str(), loss_scaling_name(ls).c_str(), s.loss_scale,
                (long long)s.skipped_steps, 100 * st.backward.flushed_share(), 100 * st.forward.flushed_share());
}

struct PretrainOptions {
    CommonOptions common;
    PrecisionOptions precision;
    std::string preset = "tiny";
    std::string out;
    PretrainSpec spec;
};

struct FinetuneOptions {
    CommonOptions common;
    PrecisionOptions precision;
    std::string base, out, method = "full", merged_out, prompt_init = "sample_vocab";
    FinetuneSpec spec;
    bool is_rslora = false, is_dora = false, is_prefix_projection = false;
    std::int64_t qlora_group = 64;
    std::string double_quant = "fp8_e4m3";
};

void print_memory(const Backend& be, const char* what = "peak memory") {
    const MemoryLedger& m = be.ledger();
    std::printf("%s: %s total (", what, format_bytes(double(m.peak_total())).c_str());
    for (int c = 0; c < kMemCategoryCount; ++c)
        if (m.peak(MemCategory(c)) > 0)
            std::printf("%s%s %s", c ? ", " : "", std::string(kMemCategoryNames[c]).c_str(),
                        format_bytes(double(m.peak(MemCategory(c)))).c_str());
    std::printf(")\n");
}

void run_pretrain(PretrainOptions& o) {
    const Preset& preset = find_preset(o.preset);
    if (o.spec.batch == 0) o.spec.batch = preset.batch;
    if (o.spec.steps < 1) throw Error("[cli] --steps must be at least 1");
    check_output_folder(o.out);
    const TrainBackend tb = make_train_backend(o.common, o.precision, o.spec);
    Backend& backend = *tb.backend;
    RoundingBackend* rounding = tb.rounding.get();
    Gpt model(tb.model_backend(), preset.config);
    model.init_gpt2(o.spec.seed);
    std::printf("pretraining %s (%lld parameters) on the base corpus: %lld steps x %d rows x %lld tokens, %s\n",
                std::string(preset.name).c_str(), (long long)model.params().total(), (long long)o.spec.steps,
                o.spec.batch, (long long)preset.config.n_positions, backend.name().c_str());
    ProgressBar bar("pretrain");
    if (rounding) rounding->reset_stats();  // count this run's rounding only
    const TrainSummary s = pretrain(model, o.spec, &bar);
    std::printf("done in %.1f s (%.0f tokens/s), final loss %.4f\n", s.seconds, double(s.tokens) / s.seconds,
                s.final_loss());
    print_precision_report(tb, o.spec.precision, s, o.spec.loss_scale);
    print_memory(backend);
    ModelMeta meta{std::string(preset.name), {{"pretrain", "corpus", "full", o.spec.steps, o.spec.seed, s.seconds,
                                               s.final_loss()}}};
    save_model(o.out, model, meta);
    std::printf("saved %s\n", o.out.c_str());
}

void save_finetuned(const FinetuneOptions& o, Gpt& model, ModelMeta meta) {
    switch (o.spec.method) {
        case Method::qlora:
            save_lora_adapter(o.out, model, o.base);
            std::printf("saved the LoRA adapter (PEFT folder) %s, trained through the NF4 base (%s); evaluate it on "
                        "that base with: tunelab eval --model %s --adapter %s --load-in-4bit --task %s\n",
                        o.out.c_str(), model.store()->describe().c_str(), o.base.c_str(), o.out.c_str(),
                        o.spec.task.c_str());
            return;
        case Method::lora:
        case Method::ia3:
            if (o.spec.method == Method::lora) save_lora_adapter(o.out, model, o.base);
            if (o.spec.method == Method::ia3) save_ia3_adapter(o.out, model, o.base);
            std::printf("saved the %s adapter (PEFT folder) %s (evaluate it with: tunelab eval --model %s --adapter %s "
                        "--task %s)\n", o.spec.method == Method::lora ? "LoRA" : "IA3", o.out.c_str(), o.base.c_str(),
                        o.out.c_str(), o.spec.task.c_str());
            if (o.merged_out.empty()) return;
            o.spec.method == Method::lora ? lora_merge_and_detach(model) : ia3_merge_and_detach(model);
            save_model(o.merged_out, model, meta);
            std::printf("saved the merged model %s (evaluate it with: tunelab eval --model %s --task %s)\n",
                        o.merged_out.c_str(), o.merged_out.c_str(), o.spec.task.c_str());
            return;
        case Method::adapter:
            save_adapter_params(o.out, model, "TUNELAB_HOULSBY", o.base, {{"bottleneck", o.spec.peft.bottleneck}});
            std::printf("saved the adapter weights %s (not mergeable: tunelab eval cannot load them yet)\n",
                        o.out.c_str());
            return;
        case Method::prompt:
        case Method::ptuning:
            save_soft_prompt(o.out, model, o.base);
            std::printf("saved the soft prompt (PEFT folder, %s) %s (evaluate it with: tunelab eval --model %s "
                        "--adapter %s --task %s)\n", soft_prompt_find(model)->peft_type().c_str(), o.out.c_str(),
                        o.base.c_str(), o.out.c_str(), o.spec.task.c_str());
            return;
        case Method::prefix:
            save_prefix(o.out, model, o.base);
            std::printf("saved the prefix (PEFT folder, PREFIX_TUNING) %s (evaluate it with: tunelab eval --model %s "
                        "--adapter %s --task %s)\n", o.out.c_str(), o.base.c_str(), o.out.c_str(), o.spec.task.c_str());
            return;
        default: break;
    }
    save_model(o.out, model, meta);
    std::printf("saved %s (evaluate it with: tunelab eval --model %s --task %s)\n", o.out.c_str(), o.out.c_str(),
                o.spec.task.c_str());
}

void run_finetune(FinetuneOptions& o, bool is_lr_given) {
    o.spec.method = parse_method(o.method);
    find_task(o.spec.task);  // validate before any work
    if (o.spec.steps < 1) throw Error("[cli] --steps must be at least 1");
    const bool is_lora = o.spec.method == Method::lora || o.spec.method == Method::qlora;
    const bool is_adapter_out = is_lora || o.spec.method == Method::ia3 ||
                                o.spec.method == Method::adapter ||
                                o.spec.method == Method::prompt || o.spec.method == Method::ptuning ||
                                o.spec.method == Method::prefix;
    o.spec.peft.soft_prompt.init = parse_prompt_init(o.prompt_init);
    is_adapter_out ? check_adapter_folder(o.out) : check_output_folder(o.out);
    if (!o.merged_out.empty()) {
        if (o.spec.method != Method::lora && o.spec.method != Method::ia3)
            throw Error("[cli] --merged-out is for --method lora and ia3 only (got --method " + o.method + ")");
        check_output_folder(o.merged_out);
    }
    if (!is_lr_given) o.spec.lr = default_lr(o.spec.method);
    o.spec.peft.scaling = o.is_rslora ? LoraScaling::rslora : LoraScaling::standard;
    if ((o.is_dora || o.spec.peft.lora_dropout != 0.0f) && !is_lora)
        throw Error("[cli] --dora and --lora-dropout are for --method lora and qlora only (got --method " + o.method +
                    ")");
    if (o.spec.method != Method::qlora && (o.qlora_group != 64 || o.double_quant != "fp8_e4m3"))
        throw Error("[cli] --qlora-group and --double-quant are for --method qlora only (got --method " + o.method + ")");
    if (o.qlora_group < 1) throw Error("[cli] --qlora-group must be at least 1, got " + std::to_string(o.qlora_group));
    o.spec.peft.qlora.group_size = o.qlora_group;
    o.spec.peft.qlora.double_quant = parse_double_quant(o.double_quant);
    if (o.is_prefix_projection && o.spec.method != Method::prefix)
        throw Error("[cli] --prefix-projection is for --method prefix only (got --method " + o.method + ")");
    o.spec.peft.lora_variant = o.is_dora ? LoraVariant::dora : LoraVariant::lora;
    o.spec.peft.prefix_projection = o.is_prefix_projection ? PrefixProjection::mlp : PrefixProjection::none;
    const TrainBackend tb = make_train_backend(o.common, o.precision, o.spec);
    Backend& backend = *tb.backend;
    RoundingBackend* rounding = tb.rounding.get();
    LoadedModel base = load_model(o.base, tb.model_backend());
    Gpt& model = *base.model;
    apply_method(model, o.spec.method, o.spec.peft, o.spec.seed);  // bad ranks, targets, layers: errors here
    const std::int64_t trainable = model.params().trainable_count(), total = model.params().total();
    std::printf("fine-tuning %s on task '%s' with method %s (lr %g): trainable %lld of %lld parameters (%.2f%%), %s\n",
                o.base.c_str(), o.spec.task.c_str(), o.method.c_str(), double(o.spec.lr), (long long)trainable,
                (long long)total, 100.0 * double(trainable) / double(total), backend.name().c_str());
    ProgressBar bar("finetune");
    if (rounding) rounding->reset_stats();  // count this run's rounding only
    // Peak memory while training: qlora's fp32 base existed only until it was quantized (bitsandbytes quantizes
    // while loading), and every other method's setup buffers persist into training anyway.
    backend.ledger().reset_peaks();
    const TrainSummary s = finetune(model, o.spec, &bar);
    std::printf("done in %.1f s, final loss %.4f\n", s.seconds, s.final_loss());
    print_precision_report(tb, o.spec.precision, s, o.spec.loss_scale);
    print_memory(backend, "peak memory while training");
    base.meta.history.push_back({"finetune", o.spec.task, o.method, o.spec.steps, o.spec.seed, s.seconds,
                                 s.final_loss()});
    save_finetuned(o, model, base.meta);
}

}  // namespace

void add_pretrain_command(CLI::App& app) {
    auto o = std::make_shared<PretrainOptions>();
    CLI::App* cmd = app.add_subcommand("pretrain", "Pretrain a GPT-2 preset from scratch on the base corpus");
    cmd->add_option("--preset", o->preset, "nano, tiny, small or medium")->capture_default_str();
    cmd->add_option("--steps", o->spec.steps, "optimizer steps")->capture_default_str();
    cmd->add_option("--seed", o->spec.seed, "seed for initialisation and data")->capture_default_str();
    cmd->add_option("--out", o->out, "model folder to write")->required();
    cmd->add_option("--batch", o->spec.batch, "rows per step (default: the preset's)")->check(CLI::Range(1, 4096));
    cmd->add_option("--lr", o->spec.lr, "peak learning rate")->capture_default_str()->check(CLI::PositiveNumber);
    cmd->add_option("--grad-accum", o->spec.grad_accum, "micro-batches per step")->check(CLI::Range(1, 1024));
    add_precision_options(*cmd, o->precision);
    add_common_options(*cmd, o->common);
    cmd->callback([o] { run_pretrain(*o); });
}

void add_finetune_command(CLI::App& app) {
    auto o = std::make_shared<FinetuneOptions>();
    CLI::App* cmd = app.add_subcommand("finetune", "Fine-tune a model folder on a task");
    cmd->add_option("--base", o->base, "model folder to start from")->required();
    cmd->add_option("--task", o->spec.task, "task name (see `tunelab tasks`)")->required();
    cmd->add_option("--method", o->method, "full, lora, qlora, bitfit, partial, ia3, adapter, prompt, ptuning or prefix")
        ->capture_default_str();
    cmd->add_option("--steps", o->spec.steps, "optimizer steps")->capture_default_str();
    cmd->add_option("--seed", o->spec.seed, "seed for data order")->capture_default_str();
    cmd->add_option("--out", o->out, "model folder to write")->required();
    cmd->add_option("--batch", o->spec.batch, "rows per micro-batch")->capture_default_str()->check(CLI::Range(1, 4096));
    cmd->add_option("--grad-accum", o->spec.grad_accum, "micro-batches per step")->check(CLI::Range(1, 1024));
    cmd->add_option("--lr", o->spec.lr, "peak learning rate (default: the method's, docs/peft.md)")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--prompt-loss-weight", o->spec.prompt_loss_weight, "loss weight of prompt tokens (0..1)")
        ->capture_default_str()->check(CLI::Range(0.0, 1.0));
    cmd->add_option("--train-examples", o->spec.train_examples, "examples drawn from the train split")
        ->capture_default_str()->check(CLI::Range(1, 10000000));
    cmd->add_option("--rank", o->spec.peft.rank, "lora: rank r (1..min(in, out))")->capture_default_str();
    cmd->add_option("--alpha", o->spec.peft.alpha, "lora: alpha (scale alpha/r)")->capture_default_str();
    cmd->add_flag("--rslora", o->is_rslora, "lora: scale alpha/sqrt(r) (rsLoRA)");
    cmd->add_option("--lora-dropout", o->spec.peft.lora_dropout, "lora: dropout on the LoRA input while training, [0, 1)")
        ->capture_default_str();
    cmd->add_flag("--dora", o->is_dora, "lora: DoRA, a learned magnitude per output column (PEFT's use_dora)");
    cmd->add_option("--targets", o->spec.peft.targets, "lora: module names, comma-separated")
        ->delimiter(',')->capture_default_str();
    cmd->add_option("--qlora-group", o->qlora_group, "qlora: NF4 elements per scale")->capture_default_str();
    cmd->add_option("--double-quant", o->double_quant,
                    "qlora: the scales' 8-bit format (fp8_e4m3 or int8), or none for fp32 scales")->capture_default_str();
    cmd->add_option("--merged-out", o->merged_out, "lora, ia3: also write the merged model folder here");
    cmd->add_option("--layers", o->spec.peft.layers, "partial: train the last k blocks")->capture_default_str();
    cmd->add_option("--train-modules", o->spec.peft.train_modules,
                    "partial: train these modules instead of the last blocks (name parts, comma-separated: "
                    "ln_f,mlp.c_proj)")->delimiter(',');
    cmd->add_option("--bottleneck", o->spec.peft.bottleneck, "adapter: bottleneck width")->capture_default_str();
    cmd->add_option("--virtual-tokens", o->spec.peft.soft_prompt.virtual_tokens,
                    "prompt, ptuning, prefix: virtual tokens n (1..n_positions - 1)")->capture_default_str();
    cmd->add_option("--prompt-init", o->prompt_init,
                    "prompt, prefix: text, sample_vocab or random (prefix: the keys/values of those tokens; random: N(0, 1))")
        ->capture_default_str();
    cmd->add_option("--prompt-init-text", o->spec.peft.soft_prompt.init_text,
                    "prompt: the text whose tokens' embeddings start the virtual tokens (with --prompt-init text)");
    cmd->add_option("--encoder-hidden", o->spec.peft.soft_prompt.encoder_hidden,
                    "ptuning, prefix with --prefix-projection: the encoder MLP's width (0: n_embd)")->capture_default_str();
    cmd->add_flag("--prefix-projection", o->is_prefix_projection,
                  "prefix: make the prefix with an MLP, Linear(C, H), tanh, Linear(H, 2 L C) (PEFT's prefix_projection)");
    add_precision_options(*cmd, o->precision);
    add_common_options(*cmd, o->common);
    cmd->callback([o, cmd] { run_finetune(*o, cmd->count("--lr") > 0); });
}

}  // namespace tl::cli
