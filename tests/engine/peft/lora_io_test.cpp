// PEFT folders: the files, fields and tensor names/shapes Hugging Face PEFT writes for GPT-2 LoRA (spec:
// peft's LoraConfig and save_pretrained: "base_model.model.<module>.lora_A.weight" (r, in), lora_B (out, r),
// fan_in_fan_out for Conv1D), a round trip that restores every tensor and logit, and mismatches as clear errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "io/atomic_file.hpp"
#include "io/safetensors.hpp"
#include "model/config.hpp"
#include "peft/lora_io.hpp"
#include "peft_fixture.hpp"

namespace tl {
namespace {

namespace fs = std::filesystem;
using peft_test::PeftModel;

fs::path scratch(const std::string& name) {
    const fs::path d = fs::temp_directory_path() / ("tl_peft_io_" + std::to_string(::getpid()) + "_" + name);
    fs::remove_all(d);
    return d;
}

LoraAdapter& trained_looking_lora(PeftModel& pm, const LoraConfig& cfg) {
    LoraAdapter& lora = lora_attach(pm.model(), cfg, 4);
    Rng rng(8, 1);
    for (const auto& m : lora.modules()) {
        const VecView b = pm.model().param(pm.model().params().at(m.b_name()));
        for (std::int64_t i = 0; i < b.n; ++i) b[i] = 0.2f * rng.normal();
    }
    return lora;
}

TEST(LoraIo, FolderFollowsThePeftLayout) {
    PeftModel pm;
    LoraConfig cfg;
    cfg.r = 4, cfg.alpha = 8.0f, cfg.scaling = LoraScaling::rslora, cfg.targets = {"c_attn", "mlp.c_proj"};
    trained_looking_lora(pm, cfg);
    const fs::path dir = scratch("layout");
    save_lora_adapter(dir, pm.model(), "models/nano-base");
    const auto j = nlohmann::json::parse(read_file_text(dir / "adapter_config.json", 1 << 20));
    EXPECT_EQ(j.at("peft_type"), "LORA");
    EXPECT_EQ(j.at("r"), 4);
    EXPECT_EQ(j.at("lora_alpha"), 8.0);
    EXPECT_EQ(j.at("use_rslora"), true);
    EXPECT_EQ(j.at("fan_in_fan_out"), true);
    EXPECT_EQ(j.at("base_model_name_or_path"), "models/nano-base");
    EXPECT_EQ(j.at("target_modules"), nlohmann::json({"c_attn", "mlp.c_proj"}));
    const SafeTensorsFile st = read_safetensors(dir / "adapter_model.safetensors");
    const std::int64_t C = pm.model().config().n_embd;
    EXPECT_EQ(st.tensors.size(), 2u * 2u * 2u);  // 2 modules per block, 2 blocks, A and B
    EXPECT_EQ(st.at("base_model.model.transformer.h.0.attn.c_attn.lora_A.weight").shape, (Shape{4, C}));
    EXPECT_EQ(st.at("base_model.model.transformer.h.0.attn.c_attn.lora_B.weight").shape, (Shape{3 * C, 4}));
    EXPECT_EQ(st.at("base_model.model.transformer.h.1.mlp.c_proj.lora_A.weight").shape, (Shape{4, 4 * C}));
    EXPECT_EQ(st.at("base_model.model.transformer.h.1.mlp.c_proj.lora_B.weight").shape, (Shape{C, 4}));
    fs::remove_all(dir);
}

TEST(LoraIo, RoundTripRestoresTensorsAndLogits) {
    PeftModel pm;
    LoraConfig cfg;
    cfg.r = 3, cfg.alpha = 6.0f;
    trained_looking_lora(pm, cfg);
    const std::vector<float> logits = pm.logits();
    const fs::path dir = scratch("roundtrip");
    save_lora_adapter(dir, pm.model(), "base");
    PeftModel other;  // the same base (same seed), no adapter
    LoraAdapter& loaded = load_lora_adapter(dir, other.model());
    EXPECT_EQ(loaded.config().r, 3);
    EXPECT_FLOAT_EQ(loaded.config().scale(), 2.0f);
    for (const auto& m : loaded.modules())
        for (const std::string& n : {m.a_name(), m.b_name()}) {
            const CVecView a = pm.model().param(pm.model().params().at(n));
            const CVecView b = other.model().param(other.model().params().at(n));
            ASSERT_EQ(a.n, b.n);
            EXPECT_TRUE(std::equal(a.data, a.data + a.n, b.data)) << n;
        }
    EXPECT_EQ(other.logits(), logits);
    EXPECT_EQ(other.model().params().trainable_count(), pm.model().params().trainable_count());
    fs::remove_all(dir);
}

TEST(LoraIo, AdapterForAnotherBaseIsAClearError) {
    PeftModel pm;
    LoraConfig cfg;
    cfg.r = 2;
    trained_looking_lora(pm, cfg);
    const fs::path dir = scratch("mismatch");
    save_lora_adapter(dir, pm.model(), "nano");
    GptConfig wider = peft_test::nano();
    wider.n_embd = 48, wider.n_head = 4;
    auto be = make_cpu_backend({1});
    Gpt big(*be, wider);
    try {
        load_lora_adapter(dir, big);
        FAIL() << "an adapter for C = 32 loaded into C = 48";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("another base model"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(big.has_adapters());
    EXPECT_THROW(load_lora_adapter(dir / "nope", big), Error);
    fs::remove_all(dir);
}

}  // namespace
}  // namespace tl
