// `tunelab eval`, `generate`, `inspect`, `tasks`, `presets`: look at a model and at the tasks.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "common.hpp"
#include "core/error.hpp"
#include "data/tasks.hpp"
#include "data/tokenizer.hpp"
#include "io/safetensors.hpp"
#include "model/generate.hpp"
#include "model/model_io.hpp"
#include "peft/ia3_io.hpp"
#include "peft/lora_io.hpp"
#include "peft/qlora.hpp"
#include "peft/soft_prompt_io.hpp"
#include "quant/quant_io.hpp"
#include "train/evaluate.hpp"

namespace tl::cli {

namespace {

Split parse_split(const std::string& s) {
    if (s == "train") return Split::train;
    if (s == "validation") return Split::validation;
    if (s == "test") return Split::test;
    throw Error("[cli] --split must be train, validation or test; got '" + s + "'");
}

// A PEFT folder on top of the model: LoRA and IA3 are merged (the KV-cache decoder runs plain GPT-2), a soft
// prompt (PROMPT_TUNING, P_TUNING) is prepended by the model and the decoder, a prefix (PREFIX_TUNING) too.
// With load_in_4bit the base's block matrices are first rounded to NF4 as --method qlora stored them, so a QLoRA
// adapter runs on the weights it was trained through.
void attach_adapter_folder(const std::string& dir, Gpt& model, bool load_in_4bit) {
    const nlohmann::json config = read_adapter_config(dir);  // tl::Error for a missing or malformed file
    const std::string type = config.is_object() ? config.value("peft_type", std::string()) : std::string();
    if (load_in_4bit && type != "LORA")
        throw Error("[cli] --load-in-4bit is for LoRA adapters trained with --method qlora; " + dir + " holds a " +
                    (type.empty() ? std::string("non-PEFT") : type) + " adapter");
    if (load_in_4bit) qlora_round_base(model);
    if (type == "LORA") {
        load_lora_adapter(dir, model);
        lora_merge_and_detach(model);
        return;
    }
    if (type == "IA3") {
        load_ia3_adapter(dir, model);
        ia3_merge_and_detach(model);
        return;
    }
    if (type == "PREFIX_TUNING") {
        load_prefix(dir, model);  // keys and values per layer: the model and the KV-cache decoder use them
        return;
    }
    load_soft_prompt(dir, model);  // tl::Error naming the folder for any other type
}

struct EvalOptionsCli {
    CommonOptions common;
    std::string model, task, split = "test", adapter;
    int n = 200;
    std::uint64_t seed = 1234;
    bool json = false, load_in_4bit = false;
};

void run_eval(const EvalOptionsCli& o) {
    const TaskInfo& task = find_task(o.task);
    const Split split = parse_split(o.split);
    auto backend = make_backend(o.common);
    ModelForInference lm = load_model_for_inference(o.model, *backend);  // plain or quantized
    if (o.load_in_4bit && o.adapter.empty()) throw Error("[cli] --load-in-4bit needs --adapter (a QLoRA adapter folder)");
    if (!o.adapter.empty()) attach_adapter_folder(o.adapter, *lm.model, o.load_in_4bit);
    const std::vector<Example> examples = task_examples(task, split, o.n, o.seed);
    const EvalResult r = evaluate(*lm.model, examples);
    if (o.json) {
        auto to_json = [](const std::vector<EvalSample>& v) {
            nlohmann::json out = nlohmann::json::array();
            for (const auto& s : v)
                out.push_back({{"prompt", s.prompt}, {"expected", s.expected}, {"got", s.got}, {"correct", s.is_correct}});
            return out;
        };
        const nlohmann::json j{{"model", o.model},          {"task", o.task},
                               {"split", o.split},          {"accuracy", r.accuracy},
                               {"loss", r.loss},            {"perplexity", r.perplexity},
                               {"n", r.n},                  {"samples", to_json(r.samples)},
                               {"misses", to_json(r.misses)}};
        std::printf("%s\n", j.dump(2).c_str());
        return;
    }
    std::printf("task %s, %s split, %d examples\n", o.task.c_str(), o.split.c_str(), r.n);
    std::printf("exact match %.1f%%   loss %.4f   perplexity %.3f\n", 100 * r.accuracy, r.loss, r.perplexity);
    auto print_samples = [](const char* title, const std::vector<EvalSample>& v) {
        if (!v.empty()) std::printf("%s\n", title);
        for (const auto& s : v) {
            std::string prompt = s.prompt;
            for (auto& ch : prompt)
                if (ch == '\n') ch = ' ';
            std::printf("  %s %-36s expected %-16s got %s\n", s.is_correct ? "ok  " : "MISS", prompt.c_str(),
                        s.expected.c_str(), s.got.c_str());
        }
    };
    print_samples("first examples:", r.samples);
    print_samples("wrong answers:", r.misses);
}

struct GenerateOptionsCli {
    CommonOptions common;
    std::string model, prompt, adapter;
    SampleOptions sample;
    bool load_in_4bit = false;
};

void run_generate(GenerateOptionsCli& o) {
    if (o.prompt.empty()) throw Error("[cli] --prompt is empty; give some text to continue");
    auto backend = make_backend(o.common);
    ModelForInference lm = load_model_for_inference(o.model, *backend);  // plain or quantized
    if (o.load_in_4bit && o.adapter.empty()) throw Error("[cli] --load-in-4bit needs --adapter (a QLoRA adapter folder)");
    if (!o.adapter.empty()) attach_adapter_folder(o.adapter, *lm.model, o.load_in_4bit);
    o.sample.stop_tokens = {kEndOfText};
    const std::vector<std::int32_t> out = generate(*lm.model, encode(o.prompt), o.sample);
    std::printf("%s%s\n", o.prompt.c_str(), decode(out).c_str());
}

struct InspectOptions {
    CommonOptions common;
    std::string model, text, out;
};

// logits (T, V) for the text, and for loss = mean next-token CE over the text, every parameter's gradient.
void run_inspect(const InspectOptions& o) {
    auto backend = make_backend(o.common);
    LoadedModel lm = load_model(o.model, *backend);
    Gpt& model = *lm.model;
    const std::vector<std::int32_t> tokens = encode(o.text);
    const auto T = std::int64_t(tokens.size());
    if (T < 2 || T > model.config().n_positions)
        throw Error("[cli] --text must have 2.." + std::to_string(model.config().n_positions) +
                    " bytes (one prediction needs two tokens); got " + std::to_string(T));
    std::vector<std::int32_t> targets(tokens.begin() + 1, tokens.end());
    targets.push_back(0);  // the last position predicts nothing: weight 0
    std::vector<float> weights(std::size_t(T), 1.0f);
    weights.back() = 0.0f;
    model.enable_grads();
    model.zero_grads();
    model.forward(tokens.data(), targets.data(), 1, T);
    model.backward(weights.data(), float(T - 1));

    const std::int64_t V = model.config().vocab_size;
    std::vector<float> logits(static_cast<std::size_t>(T * V)), losses(static_cast<std::size_t>(T));
    backend->copy_to_host(logits.data(), CVecView(model.logits().data, T * V));
    backend->copy_to_host(losses.data(), model.losses());
    float loss = 0;
    for (std::int64_t t = 0; t + 1 < T; ++t) loss += losses[std::size_t(t)] / float(T - 1);
    SafeTensorsFile f;
    f.metadata["text"] = o.text;
    f.metadata["loss_definition"] = "mean next-token cross-entropy over the text";
    f.tensors.push_back(SafeTensor::from_f32("logits", {T, V}, logits.data()));
    f.tensors.push_back(SafeTensor::from_f32("loss", {}, &loss));
    std::vector<float> g;
    for (const ParamInfo& p : model.params().entries()) {
        g.resize(std::size_t(p.numel()));
        backend->copy_to_host(g.data(), model.grad(p));
        f.tensors.push_back(SafeTensor::from_f32("grad/" + p.name, p.shape, g.data()));
    }
    write_safetensors(o.out, f);
    std::printf("loss %.6f over %lld predictions; wrote logits and %zu gradients to %s\n", loss, (long long)(T - 1),
                model.params().entries().size(), o.out.c_str());
}

void run_tasks() {
    for (const TaskInfo& t : all_tasks()) {
        const std::vector<Example> ex = task_examples(t, Split::train, 1, 7);
        std::printf("%-8s %s\n", std::string(t.name).c_str(), std::string(t.description).c_str());
        if (!ex.empty()) {
            std::string prompt = ex[0].prompt, response = ex[0].response;
            for (auto* s : {&prompt, &response})
                for (std::size_t i = 0; (i = s->find('\n', i)) != std::string::npos;) s->replace(i, 1, "\\n"), i += 2;
            std::printf("         prompt   \"%s\"\n         response \"%s\"\n", prompt.c_str(), response.c_str());
        }
        if (!t.old_format_example.empty())
            std::printf("         in the base corpus as \"%s\"\n", std::string(t.old_format_example).c_str());
    }
}

void run_presets() {
    std::printf("%-8s %10s %6s %6s %4s %4s %6s  %s\n", "preset", "params", "vocab", "T", "C", "L", "batch", "purpose");
    for (const Preset& p : all_presets())
        std::printf("%-8s %10lld %6lld %6lld %4lld %4lld %6d  %s\n", std::string(p.name).c_str(),
                    (long long)parameter_count(p.config), (long long)p.config.vocab_size,
                    (long long)p.config.n_positions, (long long)p.config.n_embd, (long long)p.config.n_layer,
                    p.batch, std::string(p.purpose).c_str());
}

}  // namespace

void add_eval_command(CLI::App& app) {
    auto o = std::make_shared<EvalOptionsCli>();
    CLI::App* cmd = app.add_subcommand("eval", "Exact-match accuracy, loss and perplexity of a model on a task");
    cmd->add_option("--model", o->model, "model folder")->required();
    cmd->add_option("--task", o->task, "task name (see `tunelab tasks`)")->required();
    cmd->add_option("--n", o->n, "number of examples")->capture_default_str()->check(CLI::Range(1, 100000));
    cmd->add_option("--split", o->split, "train, validation or test")->capture_default_str();
    cmd->add_option("--seed", o->seed, "seed for drawing the examples")->capture_default_str();
    cmd->add_option("--adapter", o->adapter, "a PEFT folder to apply first: LORA, IA3 (merged), a soft prompt or a "
                    "prefix");
    cmd->add_flag("--load-in-4bit", o->load_in_4bit,
                  "round the base's block matrices to NF4 first (QLoRA's scheme): for an adapter trained with --method qlora");
    cmd->add_flag("--json", o->json, "print one JSON object (accuracy, loss, perplexity, n, samples)");
    add_common_options(*cmd, o->common);
    cmd->callback([o] { run_eval(*o); });
}

void add_generate_command(CLI::App& app) {
    auto o = std::make_shared<GenerateOptionsCli>();
    CLI::App* cmd = app.add_subcommand("generate", "Continue a prompt with a model (KV-cached decoding)");
    cmd->add_option("--model", o->model, "model folder")->required();
    cmd->add_option("--prompt", o->prompt, "text to continue (use $'...' in bash for newlines)")->required();
    cmd->add_option("--adapter", o->adapter, "a PEFT folder to apply first: LORA, IA3 (merged), a soft prompt or a "
                    "prefix");
    cmd->add_flag("--load-in-4bit", o->load_in_4bit,
                  "round the base's block matrices to NF4 first (QLoRA's scheme): for an adapter trained with --method qlora");
    cmd->add_option("--max-tokens", o->sample.max_new_tokens, "tokens to generate")->capture_default_str()
        ->check(CLI::Range(1, 100000));
    cmd->add_option("--temperature", o->sample.temperature, "0 = greedy")->capture_default_str()
        ->check(CLI::Range(0.0, 100.0));
    cmd->add_option("--top-k", o->sample.top_k, "sample among the k most likely (0 = all)")->check(CLI::Range(0, 1 << 20));
    cmd->add_option("--seed", o->sample.seed, "sampling seed")->capture_default_str();
    add_common_options(*cmd, o->common);
    cmd->callback([o] { run_generate(*o); });
}

void add_inspect_command(CLI::App& app) {
    auto o = std::make_shared<InspectOptions>();
    CLI::App* cmd = app.add_subcommand(
        "inspect", "Write a text's logits and every parameter's gradient (of the mean next-token loss) to safetensors");
    cmd->add_option("--model", o->model, "model folder")->required();
    cmd->add_option("--text", o->text, "the text (bytes are tokens)")->required();
    cmd->add_option("--out", o->out, "safetensors file to write")->required();
    add_common_options(*cmd, o->common);
    cmd->callback([o] { run_inspect(*o); });
}

void add_tasks_command(CLI::App& app) {
    app.add_subcommand("tasks", "List the tasks, with an example each")->callback(run_tasks);
}

void add_presets_command(CLI::App& app) {
    app.add_subcommand("presets", "List the model presets")->callback(run_presets);
}

}  // namespace tl::cli
