// merge_models: resolves the slices into one job per output tensor (which input tensors, which parameters at
// that depth), validates everything up front, then runs the jobs in parallel with OpenMP (one tensor per task;
// exceptions never cross the parallel region because nothing in it can fail).
#include "merge/merge.hpp"

#include <omp.h>

#include <cmath>
#include <sstream>

#include "core/error.hpp"

namespace tl {

namespace {

struct MethodInfo {
    MergeMethod method;
    std::string_view name;
    Normalize default_normalize;
    Sparsify sparsify;
    Consensus consensus;
};

constexpr MethodInfo kMethods[] = {
    //  method                      name               normalize        sparsify             consensus
    {MergeMethod::linear, "linear", Normalize::yes, Sparsify::none, Consensus::none},
    {MergeMethod::slerp, "slerp", Normalize::no, Sparsify::none, Consensus::none},
    {MergeMethod::task_arithmetic, "task_arithmetic", Normalize::no, Sparsify::none, Consensus::none},
    {MergeMethod::ties, "ties", Normalize::yes, Sparsify::magnitude, Consensus::sign},
    {MergeMethod::dare_linear, "dare_linear", Normalize::no, Sparsify::random, Consensus::none},
    {MergeMethod::dare_ties, "dare_ties", Normalize::yes, Sparsify::random, Consensus::sign},
    {MergeMethod::passthrough, "passthrough", Normalize::no, Sparsify::none, Consensus::none},
};

const MethodInfo& info(MergeMethod m) {
    for (const auto& i : kMethods)
        if (i.method == m) return i;
    TL_ASSERT(false, "[merge] method missing from kMethods");
}

// One output tensor: the inputs it reads (model index, tensor) and the parameters at its depth.
struct Job {
    TensorData* out = nullptr;
    std::string name;
    std::vector<int> models;
    std::vector<const float*> xs;
    const float* base = nullptr;
    std::vector<double> weights, density;
    std::vector<std::uint64_t> streams;
    double t = 0, lambda = 1;
};

std::uint64_t fnv1a(std::string_view s) {
    std::uint64_t h = 1469598103934665603ull;
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
    return h;
}

bool same_shape_family(const GptConfig& a, const GptConfig& b) {
    return a.vocab_size == b.vocab_size && a.n_positions == b.n_positions && a.n_embd == b.n_embd &&
           a.n_head == b.n_head;
}

const TrainingRecord* pretraining(const ModelMeta& m) {
    for (const auto& r : m.history)
        if (r.kind == "pretrain") return &r;
    return nullptr;
}

void check_models(const MergeSpec& s, int ref) {
    const GptConfig& rc = s.models[std::size_t(ref)].state->config;
    const TrainingRecord* rp = pretraining(s.models[std::size_t(ref)].state->meta);
    for (const MergeModel& m : s.models) {
        const GptConfig& c = m.state->config;
        std::ostringstream have;
        have << "vocab " << c.vocab_size << ", T " << c.n_positions << ", C " << c.n_embd << ", H " << c.n_head
             << ", L " << c.n_layer;
        if (!same_shape_family(c, rc) || (s.slices.empty() && s.method != MergeMethod::passthrough &&
                                          c.n_layer != rc.n_layer))
            throw Error("[merge] model " + m.label + " has a different shape (" + have.str() + ") from " +
                        s.models[std::size_t(ref)].label + " (vocab " + std::to_string(rc.vocab_size) + ", T " +
                        std::to_string(rc.n_positions) + ", C " + std::to_string(rc.n_embd) + ", L " +
                        std::to_string(rc.n_layer) + "); merge only models of one architecture");
        const TrainingRecord* p = pretraining(m.state->meta);
        if (s.lineage == LineageCheck::same_pretraining && s.method != MergeMethod::passthrough && p && rp &&
            (p->seed != rp->seed || p->steps != rp->steps || p->task != rp->task || p->final_loss != rp->final_loss))
            throw Error("[merge] " + m.label + " and " + s.models[std::size_t(ref)].label +
                        " come from different base models (pretraining seed " + std::to_string(p->seed) + " vs " +
                        std::to_string(rp->seed) + ", steps " + std::to_string(p->steps) + " vs " +
                        std::to_string(rp->steps) + "); merge fine-tunes of one base");
    }
}

// The slices to run: the spec's, or the default (all layers side by side; passthrough: stacked).
std::vector<LayerSlice> resolve_slices(const MergeSpec& s) {
    if (!s.slices.empty()) return s.slices;
    std::vector<LayerSlice> out;
    if (s.method == MergeMethod::passthrough) {
        for (std::size_t i = 0; i < s.models.size(); ++i)
            out.push_back({{{int(i), {0, s.models[i].state->config.n_layer}}}});
        return out;
    }
    LayerSlice all;
    for (std::size_t i = 0; i < s.models.size(); ++i) all.sources.push_back({int(i), {0, s.models[i].state->config.n_layer}});
    out.push_back(all);
    return out;
}

std::int64_t check_slices(const MergeSpec& s, const std::vector<LayerSlice>& slices) {
    std::int64_t total = 0;
    for (std::size_t k = 0; k < slices.size(); ++k) {
        const auto& src = slices[k].sources;
        const std::string where = "[merge] slice " + std::to_string(k) + ": ";
        if (src.empty()) throw Error(where + "has no sources");
        if (s.method == MergeMethod::passthrough && src.size() != 1)
            throw Error(where + "passthrough takes exactly one source per slice, got " + std::to_string(src.size()));
        bool has_base = false;
        for (const SliceSource& x : src) {
            if (x.model < 0 || x.model >= int(s.models.size())) throw Error(where + "names an unknown model");
            const std::int64_t L = s.models[std::size_t(x.model)].state->config.n_layer;
            if (x.layers.begin < 0 || x.layers.end > L || x.layers.begin >= x.layers.end)
                throw Error(where + "layer_range [" + std::to_string(x.layers.begin) + ", " +
                            std::to_string(x.layers.end) + ") is not a non-empty range inside 0.." + std::to_string(L) +
                            " of " + s.models[std::size_t(x.model)].label);
            if (x.layers.end - x.layers.begin != src[0].layers.end - src[0].layers.begin)
                throw Error(where + "every source must cover the same number of layers");
            has_base = has_base || x.model == s.base;
        }
        if (uses_base(s.method) && !has_base) throw Error(where + "the base model must be one of the sources");
        total += src[0].layers.end - src[0].layers.begin;
    }
    return total;
}

}  // namespace

std::string_view merge_method_name(MergeMethod m) { return info(m).name; }

MergeMethod parse_merge_method(std::string_view name) {
    std::string known;
    for (const auto& i : kMethods) {
        if (i.name == name) return i.method;
        known += (known.empty() ? "" : ", ") + std::string(i.name);
    }
    if (name == "dare") return MergeMethod::dare_ties;
    throw Error("[merge] unknown merge method '" + std::string(name) + "'; known: " + known + " (dare = dare_ties)");
}

bool uses_base(MergeMethod m) {
    return m == MergeMethod::task_arithmetic || m == MergeMethod::ties || m == MergeMethod::dare_linear ||
           m == MergeMethod::dare_ties;
}

namespace {

const TensorData& input_tensor(const MergeModel& m, const std::string& name, const Shape& expect) {
    auto it = m.state->tensors.find(name);
    if (it == m.state->tensors.end()) throw Error("[merge] model " + m.label + " has no tensor '" + name + "'");
    if (it->second.shape != expect)
        throw Error("[merge] tensor '" + name + "' of " + m.label + " has shape " + shape_str(it->second.shape) +
                    ", expected " + shape_str(expect) + "; the models differ in shape");
    return it->second;
}

// Fills a job's inputs and parameters; every check that could fail happens here, before the parallel part.
void plan_job(Job& job, const MergeSpec& s, const std::vector<std::pair<int, std::string>>& inputs,
              const Shape& shape, std::int64_t out_layers) {
    const double pos = depth_position(job.name, out_layers);
    for (const auto& [mi, in_name] : inputs) {
        const MergeModel& m = s.models[std::size_t(mi)];
        const float* x = input_tensor(m, in_name, shape).values.data();
        if (uses_base(s.method) && mi == s.base) {
            job.base = x;
            continue;
        }
        job.models.push_back(mi);
        job.xs.push_back(x);
        job.weights.push_back(m.weight.value(job.name, pos));
        job.density.push_back(m.density.value(job.name, pos));
        job.streams.push_back(fnv1a(job.name + "#" + std::to_string(mi)));
    }
    job.t = s.t.value(job.name, pos);
    job.lambda = s.lambda.value(job.name, pos);
    if (uses_base(s.method) && job.xs.empty())
        throw Error("[merge] " + std::string(merge_method_name(s.method)) +
                    " needs at least one model besides the base (tensor '" + job.name + "')");
    if (s.method == MergeMethod::slerp) {
        if (job.xs.size() != 2)
            throw Error("[merge] slerp interpolates exactly 2 models (a base and one other, or two models); got " +
                        std::to_string(job.xs.size()));
        if (job.models[1] == s.base) std::swap(job.xs[0], job.xs[1]);  // t = 0 is the base
    }
    for (double w : job.weights)
        if (!std::isfinite(w)) throw Error("[merge] weights must be finite numbers; tensor '" + job.name + "'");
    const Normalize norm = s.normalize.value_or(info(s.method).default_normalize);
    double wsum = 0;
    for (double w : job.weights) wsum += w;
    if (s.method == MergeMethod::linear && norm == Normalize::yes && std::fabs(wsum) < 1e-12)
        throw Error("[merge] linear with normalisation: the weights sum to 0 for tensor '" + job.name +
                    "'; give weights with a non-zero sum, or turn normalisation off");
}

void run_job(const Job& job, const MergeSpec& s) {
    const MethodInfo& mi = info(s.method);
    float* out = job.out->values.data();
    const std::int64_t n = job.out->numel();
    const TensorInputs in{job.xs, job.weights, job.base, n};
    switch (s.method) {
        case MergeMethod::passthrough: std::copy(job.xs[0], job.xs[0] + n, out); break;
        case MergeMethod::linear: linear_merge(out, in, s.normalize.value_or(mi.default_normalize)); break;
        case MergeMethod::slerp: slerp_merge(out, job.xs[0], job.xs[1], n, job.t); break;
        default: {
            TaskArithmeticArgs a;
            a.sparsify = mi.sparsify;
            a.consensus = mi.consensus;
            a.density = job.density;
            a.lambda = job.lambda;
            a.normalize = s.normalize.value_or(mi.default_normalize);
            a.seed = s.seed;
            a.streams = job.streams;
            task_arithmetic_merge(out, in, a);
        }
    }
}

void check_parameters(const MergeSpec& s) {
    if (s.models.empty()) throw Error("[merge] no models to merge; give at least one");
    for (const MergeModel& m : s.models) {
        TL_ASSERT(m.state != nullptr, "[merge] a MergeModel without a state");
        m.density.check_range("density of " + m.label, 0.0, 1.0, ParamSchedule::Bound::open_below);
    }
    if (s.base >= int(s.models.size())) throw Error("[merge] the base index is out of range");
    if (uses_base(s.method) && s.base < 0)
        throw Error("[merge] " + std::string(merge_method_name(s.method)) +
                    " needs a base model (the task vectors are model - base); give --base or base_model");
    if (s.method == MergeMethod::slerp) s.t.check_range("t", 0.0, 1.0, ParamSchedule::Bound::closed);
    s.lambda.check_range("lambda", -1e6, 1e6, ParamSchedule::Bound::closed);
}

}  // namespace

ModelState merge_models(const MergeSpec& s) {
    check_parameters(s);
    const std::vector<LayerSlice> slices = resolve_slices(s);
    const int ref = s.base >= 0 ? s.base : slices[0].sources[0].model;
    check_models(s, ref);
    const std::int64_t out_layers = check_slices(s, slices);
    const ModelState& rs = *s.models[std::size_t(ref)].state;

    ModelState out;
    out.config = rs.config;
    out.config.n_layer = out_layers;
    out.meta = rs.meta;
    out.meta.preset = out_layers == rs.config.n_layer ? rs.meta.preset : "custom";
    out.meta.history.push_back({"merge", "", std::string(merge_method_name(s.method)), 0, s.seed, 0, 0});

    std::vector<Job> jobs;
    auto add_job = [&](const std::string& name, const Shape& shape,
                       const std::vector<std::pair<int, std::string>>& inputs) {
        TensorData& t = out.tensors[name];
        t.shape = shape;
        t.values.resize(std::size_t(shape_numel(shape)));
        jobs.push_back({});
        jobs.back().out = &t;
        jobs.back().name = name;
        plan_job(jobs.back(), s, inputs, shape, out_layers);
    };
    for (const auto& [name, t] : rs.tensors) {
        if (layer_index(name)) {
            if (*layer_index(name) != 0) continue;
            std::int64_t cursor = 0;  // block tensors: one job per output layer, from layer 0's names
            for (const LayerSlice& slice : slices) {
                const std::int64_t len = slice.sources[0].layers.end - slice.sources[0].layers.begin;
                for (std::int64_t o = 0; o < len; ++o) {
                    std::vector<std::pair<int, std::string>> inputs;
                    for (const SliceSource& x : slice.sources)
                        inputs.emplace_back(x.model, with_layer_index(name, x.layers.begin + o));
                    add_job(with_layer_index(name, cursor + o), t.shape, inputs);
                }
                cursor += len;
            }
            continue;
        }
        std::vector<std::pair<int, std::string>> inputs;  // embeddings, final norm: every model (passthrough: ref)
        for (std::size_t i = 0; i < s.models.size(); ++i)
            if (s.method != MergeMethod::passthrough || int(i) == ref) inputs.emplace_back(int(i), name);
        add_job(name, t.shape, inputs);
    }
    const int threads = s.threads > 0 ? s.threads : omp_get_num_procs();
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (std::size_t j = 0; j < jobs.size(); ++j) run_job(jobs[j], s);
    return out;
}

}  // namespace tl
