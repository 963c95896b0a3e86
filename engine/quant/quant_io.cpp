// Quantized model folders (quant_io.hpp): [SECTION] scheme <-> JSON, [SECTION] tensors <-> safetensors,
// [SECTION] save, [SECTION] load. Every field read from a file is checked before it is used.
#include "quant/quant_io.hpp"

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.hpp"
#include "formats/packing.hpp"
#include "io/atomic_file.hpp"
#include "io/safetensors.hpp"

namespace tl {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kQuantKey = "tunelab.quant";

// [SECTION] scheme <-> JSON

json scheme_json(const PlanEntry& e, const QuantizedTensor& q) {
    const QuantScheme& s = e.scheme;
    return json{{"format", format_info(s.format).name},
                {"granularity", name_of(s.granularity)},
                {"group_size", s.group_size},
                {"symmetry", name_of(s.symmetry)},
                {"clip", name_of(s.clip)},
                {"scale_format", format_info(s.scale_format).name},
                {"double_quant", name_of(s.double_quant)},
                {"double_quant_block", s.double_quant_block},
                {"rows", e.target.rows},
                {"cols", e.target.cols},
                {"transposed", e.target.is_transposed},
                {"scale_mean", q.scale_mean}};
}

template <class T>
T field(const json& j, const char* key, const std::string& where) {
    if (!j.contains(key)) throw Error("[quant] " + where + ": missing field '" + key + "'");
    try {
        return j.at(key).get<T>();
    } catch (const json::exception&) {
        throw Error("[quant] " + where + ": field '" + key + "' has the wrong type: " + j.at(key).dump());
    }
}

QuantScheme scheme_from_json(const json& j, const std::string& where) {
    QuantScheme s;
    s.format = find_format(field<std::string>(j, "format", where)).id;
    s.granularity = parse_granularity(field<std::string>(j, "granularity", where));
    s.group_size = field<std::int64_t>(j, "group_size", where);
    s.symmetry = parse_symmetry(field<std::string>(j, "symmetry", where));
    s.clip = parse_clip(field<std::string>(j, "clip", where));
    s.scale_format = find_format(field<std::string>(j, "scale_format", where)).id;
    s.double_quant = parse_double_quant(field<std::string>(j, "double_quant", where));
    s.double_quant_block = field<std::int64_t>(j, "double_quant_block", where);
    return s;
}

// [SECTION] tensors <-> safetensors

SafeTensor u8_tensor(std::string name, std::vector<std::uint8_t> bytes) {
    const auto n = std::int64_t(bytes.size());
    return SafeTensor{std::move(name), DType::u8, {n}, std::move(bytes)};
}

template <class Int>
SafeTensor u8_from_ints(std::string name, const std::vector<Int>& v) {
    std::vector<std::uint8_t> b(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) {
        TL_ASSERT(v[i] >= 0 && v[i] <= 255, "[quant] a zero point or scale code outside 0..255");
        b[i] = std::uint8_t(v[i]);
    }
    return u8_tensor(std::move(name), std::move(b));
}

// fp16 values stored as F16 (they are exactly representable: the quantizer rounded them), others as F32.
SafeTensor float_tensor(std::string name, const std::vector<float>& v, Format stored_as) {
    if (stored_as != Format::fp16)
        return SafeTensor::from_f32(std::move(name), {std::int64_t(v.size())}, v.data());
    const FormatInfo& f16 = format_info(Format::fp16);
    std::vector<std::uint8_t> b(2 * v.size());
    for (std::size_t i = 0; i < v.size(); ++i) {
        const std::uint32_t code = format_encode(f16, v[i]);
        b[2 * i] = std::uint8_t(code & 0xFF), b[2 * i + 1] = std::uint8_t(code >> 8);
    }
    return SafeTensor{std::move(name), DType::f16, {std::int64_t(v.size())}, std::move(b)};
}

void add_quantized(SafeTensorsFile& st, const std::string& name, const QuantizedTensor& q) {
    st.tensors.push_back(u8_tensor(name + ".qweight", q.packed));
    if (!q.scales.empty() && q.scheme.double_quant == DoubleQuant::none)
        st.tensors.push_back(float_tensor(name + ".scales", q.scales, q.scheme.scale_format));
    if (!q.scale_codes.empty()) {
        st.tensors.push_back(u8_from_ints(name + ".scale_codes", q.scale_codes));
        st.tensors.push_back(SafeTensor::from_f32(
            name + ".scale_scales", {std::int64_t(q.scale_scales.size())}, q.scale_scales.data()));
    }
    if (!q.zero_points.empty()) st.tensors.push_back(u8_from_ints(name + ".zeros", q.zero_points));
    if (!q.codebooks.empty())
        st.tensors.push_back(float_tensor(name + ".codebook", q.codebooks, Format::fp16));
}

const SafeTensor& expect_tensor(const SafeTensorsFile& st, const std::string& name, DType dtype,
                                std::int64_t n, const std::string& where) {
    const SafeTensor* t = st.find(name);
    if (!t) throw Error("[quant] " + where + ": tensor '" + name + "' is missing");
    if (t->dtype != dtype || shape_numel(t->shape) != n)
        throw Error("[quant] " + where + ": tensor '" + name + "' is " +
                    std::string(dtype_info(t->dtype).name) + " " + shape_str(t->shape) +
                    "; the scheme needs " + std::string(dtype_info(dtype).name) + " [" + std::to_string(n) +
                    "]");
    return *t;
}

// Rebuilds the stored QuantizedTensor; its sizes follow from the scheme and shape, so a short array is an
// error.
QuantizedTensor read_quantized(const SafeTensorsFile& st, const std::string& name, const json& j,
                               const std::string& where, std::set<std::string>& used) {
    QuantizedTensor q;
    q.scheme = scheme_from_json(j, where + " " + name);
    q.rows = field<std::int64_t>(j, "rows", where), q.cols = field<std::int64_t>(j, "cols", where);
    validate_scheme(q.scheme, q.rows, q.cols);
    q.scale_mean = field<float>(j, "scale_mean", where);
    const FormatInfo& f = format_info(q.scheme.format);
    const std::int64_t blocks = q.num_blocks();
    auto take = [&](const std::string& suffix, DType dt, std::int64_t n) -> const SafeTensor& {
        used.insert(name + suffix);
        return expect_tensor(st, name + suffix, dt, n, where);
    };
    q.packed = take(".qweight", DType::u8, std::int64_t(packed_bytes(std::size_t(q.numel()), f.bits))).bytes;
    if (f.scaling == Scaling::scaled && q.scheme.double_quant == DoubleQuant::none) {
        q.scales =
            take(".scales", q.scheme.scale_format == Format::fp16 ? DType::f16 : DType::f32, blocks).to_f32();
    } else if (f.scaling == Scaling::scaled) {
        for (const std::uint8_t c : take(".scale_codes", DType::u8, blocks).bytes) q.scale_codes.push_back(c);
        const std::int64_t n2 = (blocks + q.scheme.double_quant_block - 1) / q.scheme.double_quant_block;
        q.scale_scales = take(".scale_scales", DType::f32, n2).to_f32();
        const FormatInfo& f8 =
            format_info(q.scheme.double_quant == DoubleQuant::int8 ? Format::int8 : Format::fp8_e4m3);
        for (std::size_t b = 0; b < q.scale_codes.size(); ++b)  // scale = decode(code) * block scale + mean
            q.scales.push_back(float(format_decode(f8, q.scale_codes[b]) *
                                         q.scale_scales[b / std::size_t(q.scheme.double_quant_block)] +
                                     q.scale_mean));
    }
    if (q.scheme.symmetry == Symmetry::asymmetric)
        for (const std::uint8_t z : take(".zeros", DType::u8, blocks).bytes) q.zero_points.push_back(z);
    if (f.kind == FormatKind::palette) q.codebooks = take(".codebook", DType::f16, blocks << f.bits).to_f32();
    return q;
}

void check_metadata_shape(const QuantTarget& t, const json& j, const std::string& where) {
    if (field<std::int64_t>(j, "rows", where) != t.rows || field<std::int64_t>(j, "cols", where) != t.cols ||
        field<bool>(j, "transposed", where) != t.is_transposed)
        throw Error("[quant] " + where + ": tensor '" + t.name + "' is stored as " + j.dump() +
                    ", which does not match the model's " + std::to_string(t.rows) + " x " +
                    std::to_string(t.cols));
}

std::string plan_summary(const json& quant) {
    std::set<std::string> kinds;
    for (const auto& [name, j] : quant.items()) {
        std::string k = j.value("format", "?") + " " + j.value("granularity", "?");
        if (j.value("granularity", "") == "per_group")
            k += "(" + std::to_string(j.value("group_size", 0)) + ")";
        kinds.insert(k);
    }
    std::string out;
    for (const auto& k : kinds) out += (out.empty() ? "" : ", ") + k;
    return out + " (" + std::to_string(quant.size()) + " tensors)";
}

// The preset and history of tunelab.json (model_io's fields); a folder without one has an empty history.
ModelMeta read_meta(const fs::path& file) {
    ModelMeta m;
    if (!fs::exists(file)) return m;
    const json j = json::parse(read_file_text(file, 1 << 20), nullptr, false);
    if (!j.is_object()) throw Error("[quant] " + file.string() + ": not a JSON object");
    m.preset = j.value("preset", "");
    for (const json& r : j.value("history", json::array()))
        if (r.is_object())
            m.history.push_back({r.value("kind", ""), r.value("task", ""), r.value("method", ""),
                                 r.value("steps", std::int64_t(0)), r.value("seed", std::uint64_t(0)),
                                 r.value("seconds", 0.0), r.value("final_loss", 0.0)});
    return m;
}

}  // namespace

// [SECTION] save

void save_quantized_model(const fs::path& dir, const Gpt& model, const QuantPlan& plan,
                          const ModelMeta& meta) {
    validate_plan(plan);
    SafeTensorsFile st;
    st.metadata["format"] = "pt";
    json quant = json::object();
    std::set<std::string> planned;
    for (const PlanEntry& e : plan) {
        const QuantizedTensor q =
            quantize(read_target(model, e.target), e.target.rows, e.target.cols, e.scheme);
        add_quantized(st, e.target.name, q);
        quant[e.target.name] = scheme_json(e, q);
        planned.insert(e.target.name);
    }
    st.metadata[kQuantKey] = quant.dump();
    std::vector<float> host;
    for (const ParamInfo& p : model.params().entries()) {
        if (planned.count(p.name) || p.offset >= model.base_param_count()) continue;
        host.resize(std::size_t(p.numel()));
        model.backend().copy_to_host(host.data(), model.param(p));
        st.tensors.push_back(SafeTensor::from_f32(p.name, p.shape, host.data()));
    }
    ModelMeta m = meta;
    m.history.push_back({"quantize", "", plan_summary(quant), 0, 0, 0, 0});
    replace_folder_atomic(dir, [&](const fs::path& tmp) {
        // model_io writes config.json and tunelab.json; its fp32 weights are replaced by the quantized file.
        save_model(tmp / "fp32", model, m);
        fs::rename(tmp / "fp32" / "config.json", tmp / "config.json");
        fs::rename(tmp / "fp32" / "tunelab.json", tmp / "tunelab.json");
        fs::remove_all(tmp / "fp32");
        json info = json::parse(read_file_text(tmp / "tunelab.json", 1 << 20));
        info["dtype"] = "quantized";  // the fp32 parameters stay f32; the rest are described by the plan
        info["quantization"] = plan_summary(quant);
        write_file_atomic(tmp / "tunelab.json", info.dump(2) + "\n");
        write_safetensors(tmp / "model.safetensors", st);
    });
}

bool is_quantized_folder(const fs::path& dir) {
    const fs::path file = dir / "model.safetensors";
    if (!fs::exists(file)) return false;
    return read_safetensors(file).metadata.count(kQuantKey) > 0;
}

// [SECTION] load

ModelForInference load_model_for_inference(const fs::path& dir, Backend& backend) {
    const fs::path file = dir / "model.safetensors";
    if (!fs::exists(dir / "config.json") || !is_quantized_folder(dir)) {
        LoadedModel lm = load_model(dir, backend);  // a plain folder (or model_io's own error)
        return {std::move(lm.model), std::move(lm.meta), {}, ""};
    }
    const GptConfig config = read_model_config(dir);
    const SafeTensorsFile st = read_safetensors(file);
    const std::string where = file.string();
    const json quant = json::parse(st.metadata.at(kQuantKey), nullptr, false);
    if (quant.is_discarded() || !quant.is_object())
        throw Error("[quant] " + where + ": __metadata__[\"" + kQuantKey + "\"] is not a JSON object");
    ModelForInference out;
    out.model = std::make_unique<Gpt>(backend, config);
    std::set<std::string> used;
    std::size_t stored_bytes = 0;
    for (const QuantTarget& t : quant_targets(*out.model, EmbeddingPolicy::quantize)) {
        if (!quant.contains(t.name)) continue;
        check_metadata_shape(t, quant.at(t.name), where);
        const QuantizedTensor q = read_quantized(st, t.name, quant.at(t.name), where, used);
        stored_bytes += std::size_t(std::ceil(q.storage_bits() / 8));
        write_target(*out.model, t, dequantize(q));
    }
    for (const ParamInfo& p : out.model->params().entries()) {
        if (quant.contains(p.name)) continue;
        const SafeTensor& t = expect_tensor(st, p.name, DType::f32, p.numel(), where);
        if (t.shape != p.shape)
            throw Error("[quant] " + where + ": tensor '" + p.name + "' has shape " + shape_str(t.shape));
        const std::vector<float> v = t.to_f32();
        backend.copy_from_host(out.model->param(p), v.data());
        used.insert(p.name);
    }
    for (const auto& [name, j] : quant.items())
        if (!used.count(name + ".qweight"))
            throw Error("[quant] " + where + ": '" + name + "' is not a quantizable tensor of this model");
    for (const SafeTensor& t : st.tensors)
        if (!used.count(t.name)) throw Error("[quant] " + where + ": unexpected tensor '" + t.name + "'");
    out.quant_storage = backend.alloc(stored_bytes, MemCategory::quant_storage);
    out.meta = read_meta(dir / "tunelab.json");
    out.quantization = plan_summary(quant);
    return out;
}

}  // namespace tl
