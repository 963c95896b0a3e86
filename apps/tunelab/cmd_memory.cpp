// `tunelab memory`: where fine-tuning memory goes. Three questions: the course's rules of thumb (--params,
// --bytes), predicted vs measured on a tunelab model (--preset / --model: a few real CPU training steps), and
// real model shapes on a GPU (--real 7b --method qlora --gpu-gb 24). The arithmetic lives in engine/memory.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "common.hpp"
#include "core/error.hpp"
#include "memory/measure.hpp"
#include "model/model_io.hpp"

namespace tl::cli {

namespace {

using namespace tl::memory;

struct MemoryOptionsCli {
    double params = 0, bytes = 2;
    std::string preset, model, real;
    std::string method = "full", targets = "all", precision = "mixed-bf16", format, optimizer = "adamw";
    std::string recompute = "none", mode = "train", device = "cpu";
    std::int64_t rank = 8, layers = 1, adapter_size = 64, virtual_tokens = 20;
    std::int64_t batch = 0, seq = 0, steps = 2, gpus = 1;
    int zero = 0, threads = 0;
    double gpu_gb = 0;
    bool json = false;
};

std::string count_text(double n) {
    char buf[48];
    if (n >= 1e9) std::snprintf(buf, sizeof buf, "%.4g billion", n / 1e9);
    else if (n >= 1e6) std::snprintf(buf, sizeof buf, "%.4g million", n / 1e6);
    else std::snprintf(buf, sizeof buf, "%.0f", n);
    return buf;
}

std::string human(double b) {
    char buf[48];
    if (b >= 1e9) std::snprintf(buf, sizeof buf, "%.4g GB", b / 1e9);
    else if (b >= 1e6) std::snprintf(buf, sizeof buf, "%.4g MB", b / 1e6);
    else if (b >= 1e3) std::snprintf(buf, sizeof buf, "%.4g KB", b / 1e3);
    else std::snprintf(buf, sizeof buf, "%.0f B", b);
    return buf;
}

MethodSpec method_of(const MemoryOptionsCli& o) {
    MethodSpec m;
    m.kind = parse_method_kind(o.method);
    if (o.targets != "all" && o.targets != "attn")
        throw Error("[cli] --targets must be attn or all; got '" + o.targets + "'");
    m.lora_targets = o.targets == "all" ? LoraTargets::all_linear : LoraTargets::attention;
    m.lora_rank = o.rank, m.partial_layers = o.layers, m.adapter_size = o.adapter_size;
    m.virtual_tokens = o.virtual_tokens;
    return m;
}

nlohmann::json course_json(const CourseFormula& c) {
    return {{"params", c.params},
            {"bytes_per_param", c.bytes_per_param},
            {"inference_bytes", c.inference_bytes()},
            {"training_bytes", c.training_bytes()}};
}

nlohmann::json terms_json(const Prediction& p) {
    nlohmann::json out = nlohmann::json::array();
    for (const Term& t : p.terms)
        out.push_back({{"name", t.name}, {"category", mem_category_name(t.category)}, {"bytes", t.bytes},
                       {"formula", t.formula}});
    return out;
}

void print_course(const CourseFormula& c) {
    std::printf("course rules of thumb (N = %s parameters, M = %.4g bytes each):\n", count_text(c.params).c_str(),
                c.bytes_per_param);
    std::printf("  inference  N x M x 1.2 = %s   weights N x M = %s, +20%% for activations, KV cache, buffers\n",
                human(c.inference_bytes()).c_str(), human(c.weights_bytes()).c_str());
    std::printf("  training   N x 3 x M   = %s   weights N x M + gradients N x M + optimizer state N x M\n",
                human(c.training_bytes()).c_str());
}

void print_terms(const Prediction& p) {
    const std::string trainable = p.trainable > 0 ? ", " + count_text(double(p.trainable)) + " trainable" : "";
    std::printf("detailed prediction (%s parameters%s):\n", count_text(double(p.total_params)).c_str(),
                trainable.c_str());
    for (const Term& t : p.terms)
        std::printf("  %-36s %-13s %12s   %s\n", t.name.c_str(), std::string(mem_category_name(t.category)).c_str(),
                    human(t.bytes).c_str(), t.formula.c_str());
    std::printf("  %-36s %-13s %12s\n", "total", "", human(p.total()).c_str());
}

void run_course(const MemoryOptionsCli& o) {
    if (!(o.params > 0) || !(o.bytes > 0)) throw Error("[cli] --params and --bytes must be positive");
    const CourseFormula c{o.params, o.bytes};
    if (o.json) {
        std::printf("%s\n", nlohmann::json{{"course", course_json(c)}}.dump(2).c_str());
        return;
    }
    print_course(c);
    std::printf("Why these undercount: AdamW keeps two states (m, v), not one; mixed precision adds an FP32 master\n"
                "copy (2 + 2 + 4 + 4 + 4 = 16 bytes per parameter vs 3 x 2 = 6); activations grow with batch x\n"
                "sequence and are not in the formula. Try --real 13b for the detailed model (docs/memory.md).\n");
}

void run_engine(const MemoryOptionsCli& o) {
    MeasureSpec spec;
    if (!o.model.empty()) {
        spec.config = read_model_config(o.model);
        spec.name = o.model;
    } else {
        const Preset& p = find_preset(o.preset);
        spec.config = p.config;
        spec.name = std::string(p.name);
    }
    spec.method = method_of(o);
    spec.batch = o.batch > 0 ? o.batch : 4;
    spec.seq = o.seq, spec.steps = o.steps, spec.threads = o.threads;
    spec.device = o.device == "cuda" ? Device::cuda : Device::cpu;
    const Comparison c = compare_on_engine(spec, Measure::yes);
    if (o.json) {
        nlohmann::json cats = nlohmann::json::object();
        for (const CategoryRow& r : c.rows)
            cats[std::string(mem_category_name(r.category))] = {
                {"predicted", r.predicted}, {"measured", r.measured ? nlohmann::json(*r.measured) : nlohmann::json()}};
        const nlohmann::json j{{"model", c.model}, {"method", c.method}, {"batch", spec.batch},
                               {"seq", spec.seq > 0 ? spec.seq : spec.config.n_positions},
                               {"params", c.prediction.total_params}, {"trainable", c.prediction.trainable},
                               {"course", course_json(c.course)}, {"categories", cats},
                               {"terms", terms_json(c.prediction)}, {"predicted_total", c.prediction.total()},
                               {"measured_peak_total", c.measurement ? nlohmann::json(c.measurement->peak_total)
                                                                     : nlohmann::json()}};
        std::printf("%s\n", j.dump(2).c_str());
        return;
    }
    std::printf("%s, method %s, batch %lld x seq %lld, fp32 AdamW on the CPU engine\n\n", c.model.c_str(),
                c.method.c_str(), (long long)spec.batch,
                (long long)(spec.seq > 0 ? spec.seq : spec.config.n_positions));
    print_course(c.course);
    std::printf("\n");
    print_terms(c.prediction);
    std::printf("\n%-14s %14s %14s %9s\n", "category", "predicted", "measured", "diff");
    double sum_measured = 0;
    for (const CategoryRow& r : c.rows) {
        const std::string name(mem_category_name(r.category));
        if (!r.measured) {
            std::printf("%-14s %14.0f %14s\n", name.c_str(), r.predicted, "-");
            continue;
        }
        const double m = double(*r.measured);
        sum_measured += m;
        const double diff = m > 0 ? 100.0 * (r.predicted - m) / m : (r.predicted == 0 ? 0.0 : 100.0);
        std::printf("%-14s %14.0f %14.0f %8.2f%%\n", name.c_str(), r.predicted, m, diff);
    }
    if (c.measurement)
        std::printf("measured peak of the sum %s (sum of category peaks %s); course training formula %s\n",
                    human(double(c.measurement->peak_total)).c_str(), human(sum_measured).c_str(),
                    human(c.course.training_bytes()).c_str());
    else
        std::printf("(not measured: the engine cannot run %s yet; prediction only)\n", c.method.c_str());
}

void run_real(const MemoryOptionsCli& o) {
    const ArchShape& s = find_real_model(o.real).shape;
    const MethodSpec m = method_of(o);
    const std::int64_t batch = o.batch > 0 ? o.batch : 1, seq = o.seq > 0 ? o.seq : (o.mode == "train" ? 512 : 2048);
    if (o.gpu_gb < 0) throw Error("[cli] --gpu-gb must be positive");
    Prediction p;
    double param_bytes = 2;
    if (o.mode == "inference") {
        InferenceSetup t;
        t.format = o.format.empty() ? WeightFormat::bf16 : parse_weight_format(o.format);
        t.batch = batch, t.seq = seq;
        p = predict_inference(s, t);
        param_bytes = bits_per_weight(t.format) / 8;
    } else if (o.mode == "train") {
        TrainSetup t = typical_setup(m, batch, seq);
        t.precision = parse_precision(o.precision);
        if (!o.format.empty()) t.frozen_format = parse_weight_format(o.format);
        t.optimizer = parse_optimizer(o.optimizer);
        if (o.recompute != "none" && o.recompute != "full")
            throw Error("[cli] --recompute must be none or full; got '" + o.recompute + "'");
        t.recompute = o.recompute == "full" ? Recompute::full : Recompute::none;
        if (o.zero < 0 || o.zero > 3) throw Error("[cli] --zero must be 0..3; got " + std::to_string(o.zero));
        t.zero = ZeroStage(o.zero), t.gpus = o.gpus;
        p = predict_training(s, t);
        param_bytes = precision_info(t.precision).param_bytes;
    } else {
        throw Error("[cli] --mode must be train or inference; got '" + o.mode + "'");
    }
    const CourseFormula course{double(p.total_params), param_bytes};
    const bool has_gpu = o.gpu_gb > 0;
    const bool fits = p.total() <= o.gpu_gb * 1e9;
    if (o.json) {
        nlohmann::json cats = nlohmann::json::object();
        for (int c = 0; c < kMemCategoryCount; ++c)
            cats[std::string(kMemCategoryNames[c])] = {{"predicted", p.by_category(MemCategory(c))},
                                                        {"measured", nlohmann::json()}};
        nlohmann::json j{{"model", s.name}, {"mode", o.mode}, {"method", std::string(method_name(m.kind))},
                         {"batch", batch}, {"seq", seq}, {"params", p.total_params}, {"trainable", p.trainable},
                         {"course", course_json(course)}, {"categories", cats}, {"terms", terms_json(p)},
                         {"predicted_total", p.total()}};
        if (has_gpu) j["gpu_gb"] = o.gpu_gb, j["fits"] = fits;
        std::printf("%s\n", j.dump(2).c_str());
        return;
    }
    std::printf("%s (%s), %s, batch %lld x seq %lld per GPU\n\n", s.name.c_str(), o.mode.c_str(),
                o.mode == "train" ? ("method " + std::string(method_name(m.kind))).c_str() : "inference",
                (long long)batch, (long long)seq);
    print_course(course);
    std::printf("\n");
    print_terms(p);
    if (has_gpu)
        std::printf("\n%s on a %.4g GB GPU: predicted %s (leave ~1 GB for the CUDA context and fragmentation)\n",
                    fits ? "fits" : "does NOT fit", o.gpu_gb, human(p.total()).c_str());
}

void run_memory(const MemoryOptionsCli& o) {
    const int modes = (o.params > 0) + !o.preset.empty() + !o.model.empty() + !o.real.empty();
    if (modes != 1)
        throw Error("[cli] memory needs exactly one of --params (course formula), --preset / --model (predicted vs "
                    "measured on tunelab) or --real (a real model's shape); see `tunelab memory --help`");
    if (o.params > 0) return run_course(o);
    if (!o.real.empty()) return run_real(o);
    return run_engine(o);
}

}  // namespace

void add_memory_command(CLI::App& app) {
    auto opt = std::make_shared<MemoryOptionsCli>();
    CLI::App* cmd = app.add_subcommand("memory", "Where fine-tuning memory goes: course formula, detailed model, measured");
    cmd->add_option("--params", opt->params, "Course formula: parameter count N (e.g. 13e9)");
    cmd->add_option("--bytes", opt->bytes, "Course formula: bytes per parameter M")->capture_default_str();
    cmd->add_option("--preset", opt->preset, "tunelab preset: predicted vs measured (nano, tiny, small, medium)");
    cmd->add_option("--model", opt->model, "tunelab model folder: predicted vs measured for its config");
    cmd->add_option("--real", opt->real, "A real model's shape: 1b, 7b, 8b, mistral-7b, 13b, 70b, gpt2");
    cmd->add_option("--mode", opt->mode, "With --real: train or inference")->capture_default_str();
    cmd->add_option("--method", opt->method,
                    "full, partial, lora, qlora, adapters, prompt-tuning, prefix-tuning, bitfit, ia3")
        ->capture_default_str();
    cmd->add_option("--rank", opt->rank, "LoRA/QLoRA rank")->capture_default_str();
    cmd->add_option("--targets", opt->targets, "LoRA targets: attn or all (linear layers)")->capture_default_str();
    cmd->add_option("--layers", opt->layers, "partial: the last k blocks train")->capture_default_str();
    cmd->add_option("--adapter-size", opt->adapter_size, "adapters: bottleneck width")->capture_default_str();
    cmd->add_option("--virtual-tokens", opt->virtual_tokens, "prompt/prefix tuning length")->capture_default_str();
    cmd->add_option("--precision", opt->precision, "--real: fp32, mixed-bf16, mixed-fp16, bf16")->capture_default_str();
    cmd->add_option("--format", opt->format, "--real: frozen weight format fp32 bf16 fp16 fp8 int8 int4 nf4 nf4-dq");
    cmd->add_option("--optimizer", opt->optimizer, "--real: adamw, adamw-8bit, sgd-momentum, sgd")->capture_default_str();
    cmd->add_option("--recompute", opt->recompute, "--real: activation recomputation none or full")->capture_default_str();
    cmd->add_option("--zero", opt->zero, "--real: ZeRO stage 0..3")->capture_default_str();
    cmd->add_option("--gpus", opt->gpus, "--real: data-parallel GPU count")->capture_default_str();
    cmd->add_option("--gpu-gb", opt->gpu_gb, "--real: GPU memory in GB: does it fit?");
    cmd->add_option("--batch", opt->batch, "Rows per step (default: 4 on tunelab, 1 for --real)");
    cmd->add_option("--seq", opt->seq, "Tokens per row (default: n_positions; --real: 512 train, 2048 inference)");
    cmd->add_option("--steps", opt->steps, "Training steps actually run for the measurement")->capture_default_str();
    cmd->add_option("--threads", opt->threads, "CPU threads for the measurement (0: all)");
    cmd->add_option("--device", opt->device, "cpu or cuda: where the measured run allocates (the ledger counts it)")
        ->check(CLI::IsMember({"cpu", "cuda"}))
        ->capture_default_str();
    cmd->add_flag("--json", opt->json, "One JSON object: per category predicted and measured bytes, the course figure");
    cmd->callback([opt] { run_memory(*opt); });
}

}  // namespace tl::cli
