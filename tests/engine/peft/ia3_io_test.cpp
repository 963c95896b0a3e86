// IA3 PEFT folders: the fields, tensor names and shapes Hugging Face PEFT uses for GPT-2 (spec: peft's
// IA3Layer.update_layer on a Conv1D, ia3_l (out_features, 1) for c_attn and (1, in_features) for the
// feedforward mlp.c_proj; TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING["gpt2"]), a round trip to the
// same logits, ones that change no logit, a folder that scales queries too against PEFT's rule applied to the
// weights by hand, and bad input as clear errors that leave the model untouched.
#include "peft/ia3_io.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "io/atomic_file.hpp"
#include "io/safetensors.hpp"
#include "peft/lora_io.hpp"
#include "peft_fixture.hpp"

namespace tl {
namespace {

namespace fs = std::filesystem;
using peft_test::PeftModel;

fs::path scratch(const std::string& name) {
    const fs::path d = fs::temp_directory_path() / ("tl_ia3_io_" + std::to_string(::getpid()) + "_" + name);
    fs::remove_all(d);
    return d;
}

std::vector<float> values_of(Gpt& m, const std::string& name) {
    const CVecView v = m.param(m.params().at(name));
    return {v.data, v.data + v.n};
}

// IA3 attached with vectors away from one, as after training.
void trained_looking_ia3(PeftModel& pm) {
    ia3_attach(pm.model(), 1);
    Rng rng(9, 2);
    for (const AdapterParam& p : pm.model().adapters().front()->params()) {
        const VecView v = pm.model().param(pm.model().params().at(p.name));
        for (std::int64_t i = 0; i < v.n; ++i) v[i] = 1.0f + 0.3f * rng.normal();
    }
}

const char* const kPeftConfig =
    R"({"peft_type": "IA3", "task_type": "CAUSAL_LM", "target_modules": ["mlp.c_proj",
  "c_attn"], "feedforward_modules": ["mlp.c_proj"], "fan_in_fan_out": true})";

// A folder as PEFT would write it after training all 3C columns of c_attn (queries too).
void write_peft_trained_folder(const fs::path& dir, std::int64_t L, std::int64_t C, const std::string& config,
                               float first_value = 0.0f) {
    SafeTensorsFile st;
    for (std::int64_t l = 0; l < L; ++l) {
        std::vector<float> qkv = peft_test::random_vec(std::size_t(3 * C), 40 + std::uint64_t(l), 0.3f);
        std::vector<float> ff = peft_test::random_vec(std::size_t(4 * C), 50 + std::uint64_t(l), 0.3f);
        for (float& x : qkv) x += 1.0f;
        for (float& x : ff) x += 1.0f;
        if (first_value != 0.0f) qkv[0] = first_value;
        st.tensors.push_back(SafeTensor::from_f32(ia3_peft_attn_name(l), {3 * C, 1}, qkv.data()));
        st.tensors.push_back(SafeTensor::from_f32(ia3_peft_ff_name(l), {1, 4 * C}, ff.data()));
    }
    write_peft_folder(dir, config, st);
}

TEST(Ia3Io, FolderFollowsThePeftLayout) {
    PeftModel pm;
    trained_looking_ia3(pm);
    const fs::path dir = scratch("layout");
    save_ia3_adapter(dir, pm.model(), "models/nano-base");
    const auto j = nlohmann::json::parse(read_file_text(dir / "adapter_config.json", 1 << 20));
    EXPECT_EQ(j.at("peft_type"), "IA3");
    EXPECT_EQ(j.at("task_type"), "CAUSAL_LM");
    EXPECT_EQ(j.at("fan_in_fan_out"), true);
    EXPECT_EQ(j.at("base_model_name_or_path"), "models/nano-base");
    EXPECT_EQ(j.at("target_modules"), nlohmann::json({"c_attn", "mlp.c_proj"}));
    EXPECT_EQ(j.at("feedforward_modules"), nlohmann::json({"mlp.c_proj"}));
    const SafeTensorsFile st = read_safetensors(dir / "adapter_model.safetensors");
    const std::int64_t C = pm.model().config().n_embd;
    ASSERT_EQ(st.tensors.size(), 2u * 2u);  // c_attn and mlp.c_proj in each of nano's 2 blocks
    const SafeTensor& attn = st.at("base_model.model.transformer.h.1.attn.c_attn.ia3_l");
    const SafeTensor& ff = st.at("base_model.model.transformer.h.1.mlp.c_proj.ia3_l");
    EXPECT_EQ(attn.shape, (Shape{3 * C, 1}));  // non-feedforward: (out_features, 1)
    EXPECT_EQ(ff.shape, (Shape{1, 4 * C}));    // feedforward: (1, in_features)
    const std::vector<float> qkv = attn.to_f32();
    const std::vector<float> lk = values_of(pm.model(), Ia3Adapter::k_name(1));
    const std::vector<float> lv = values_of(pm.model(), Ia3Adapter::v_name(1));
    EXPECT_EQ(std::vector<float>(qkv.begin(), qkv.begin() + C), std::vector<float>(std::size_t(C), 1.0f));
    EXPECT_EQ(std::vector<float>(qkv.begin() + C, qkv.begin() + 2 * C), lk);
    EXPECT_EQ(std::vector<float>(qkv.begin() + 2 * C, qkv.end()), lv);
    EXPECT_EQ(ff.to_f32(), values_of(pm.model(), Ia3Adapter::ff_name(1)));
    fs::remove_all(dir);
}

TEST(Ia3Io, RoundTripRestoresLogits) {
    PeftModel pm;
    trained_looking_ia3(pm);
    const std::vector<float> logits = pm.logits();
    const fs::path dir = scratch("roundtrip");
    save_ia3_adapter(dir, pm.model(), "base");
    PeftModel other;  // the same base (same seed), no adapter
    load_ia3_adapter(dir, other.model());
    EXPECT_EQ(other.logits(), logits);  // the same ops on the same values: bit for bit
    EXPECT_EQ(other.model().params().trainable_count(), pm.model().params().trainable_count());
    ia3_merge_and_detach(other.model());
    const std::vector<float> merged = other.logits();
    for (std::size_t i = 0; i < logits.size(); ++i) ASSERT_NEAR(merged[i], logits[i], 2e-5f) << i;
    fs::remove_all(dir);
}

TEST(Ia3Io, OnesChangeNoLogit) {
    PeftModel pm;
    const std::vector<float> base = pm.logits();
    ia3_attach(pm.model(), 1);  // initialised to one
    const fs::path dir = scratch("ones");
    save_ia3_adapter(dir, pm.model(), "base");
    PeftModel other;
    load_ia3_adapter(dir, other.model());
    EXPECT_EQ(other.logits(), base);
    ia3_merge_and_detach(other.model());
    EXPECT_EQ(other.logits(), base);  // x * 1 is exact
    fs::remove_all(dir);
}

// PEFT's forward for GPT-2: c_attn's output times ia3_l (all 3C columns, bias included), mlp.c_proj's input
// times ia3_l, i.e. c_attn.weight column j and bias j by s[j], mlp.c_proj.weight row j by f[j].
TEST(Ia3Io, FolderThatScalesQueriesMatchesPeftsRule) {
    PeftModel loaded, by_hand;
    const std::int64_t L = loaded.model().config().n_layer, C = loaded.model().config().n_embd;
    const fs::path dir = scratch("queries");
    write_peft_trained_folder(dir, L, C, kPeftConfig);
    load_ia3_adapter(dir, loaded.model());
    const SafeTensorsFile st = read_safetensors(dir / "adapter_model.safetensors");
    Gpt& m = by_hand.model();
    for (std::int64_t l = 0; l < L; ++l) {
        const std::vector<float> s = st.at(ia3_peft_attn_name(l)).to_f32(),
                                 f = st.at(ia3_peft_ff_name(l)).to_f32();
        const MatView w = param_mat(m, module_path(l, "attn.c_attn.weight"), C);
        const MatView b = param_mat(m, module_path(l, "attn.c_attn.bias"), 1);
        for (const MatView& x : {w, b})
            for (std::int64_t i = 0; i < x.rows; ++i)
                for (std::int64_t j = 0; j < 3 * C; ++j) x(i, j) *= s[std::size_t(j)];
        const MatView p = param_mat(m, module_path(l, "mlp.c_proj.weight"), 4 * C);
        for (std::int64_t j = 0; j < 4 * C; ++j)
            for (std::int64_t c = 0; c < C; ++c) p(j, c) *= f[std::size_t(j)];
    }
    const std::vector<float> want = by_hand.logits(), got = loaded.logits();
    for (std::size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got[i], want[i], 2e-5f) << i;
    fs::remove_all(dir);
}

void expect_error(const fs::path& dir, Gpt& model, const std::string& fragment) {
    try {
        load_ia3_adapter(dir, model);
        FAIL() << "loaded " << dir << ", expected an error mentioning '" << fragment << "'";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
    EXPECT_FALSE(model.has_adapters());
}

TEST(Ia3Io, BadFoldersAreClearErrorsAndLeaveTheModelAlone) {
    PeftModel pm;
    trained_looking_ia3(pm);
    const fs::path dir = scratch("bad");
    save_ia3_adapter(dir, pm.model(), "nano");
    GptConfig wider = peft_test::nano();
    wider.n_embd = 48, wider.n_head = 4;
    auto be = make_cpu_backend({1});
    Gpt big(*be, wider);
    expect_error(dir, big, "another base model");  // c_attn.ia3_l (96, 1) where C = 48 needs (144, 1)

    PeftModel target;
    const std::vector<float> before = target.logits();
    const std::int64_t L = 2, C = target.model().config().n_embd;
    const fs::path other = scratch("other");
    write_peft_trained_folder(other, L, C, R"({"peft_type": "IA3", "target_modules": ["c_attn", "c_fc"],
                                              "feedforward_modules": ["c_fc"]})");
    expect_error(other, target.model(), "GPT-2 default only");
    write_peft_trained_folder(other, L, C, kPeftConfig, std::numeric_limits<float>::quiet_NaN());
    expect_error(other, target.model(), "non-finite");
    write_peft_trained_folder(other, 1, C, kPeftConfig);  // one block's tensors for a two-block model
    expect_error(other, target.model(), "is missing");
    write_peft_trained_folder(other, L, C, R"({"peft_type": "LORA"})");
    expect_error(other, target.model(), "not IA3");
    write_peft_trained_folder(other, L, C, "{not json");
    expect_error(other, target.model(), "not valid JSON");
    expect_error(other / "nope", target.model(), "not a PEFT adapter folder");
    EXPECT_EQ(target.logits(), before);
    fs::remove_all(dir);
    fs::remove_all(other);
}

}  // namespace
}  // namespace tl
