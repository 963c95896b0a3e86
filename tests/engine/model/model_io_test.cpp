// Model folders: a save/load round trip is bit-exact; config.json carries the Hugging Face GPT-2 fields; bad
// folders give clear errors; a failed save leaves the previous folder untouched.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "io/atomic_file.hpp"
#include "io/safetensors.hpp"
#include "model/model_io.hpp"

namespace tl {
namespace {

namespace fs = std::filesystem;

class ModelIo : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("tl_model_io_" + std::to_string(::getpid()) + "_" +
                                            ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir_);
        fs::create_directories(dir_);
        be_ = make_cpu_backend({1});
        model_ = std::make_unique<Gpt>(*be_, find_preset("nano").config);
        model_->init_gpt2(5);
        save_model(dir_ / "m", *model_, {"nano", {{"pretrain", "corpus", "full", 3, 5, 0.1, 4.2}}});
    }
    void TearDown() override { fs::remove_all(dir_); }

    void rewrite_config(const std::function<void(nlohmann::json&)>& edit) {
        auto j = nlohmann::json::parse(read_file_text(dir_ / "m" / "config.json", 1 << 20));
        edit(j);
        write_file_atomic(dir_ / "m" / "config.json", j.dump());
    }
    void expect_load_error(const std::string& fragment) {
        try {
            load_model(dir_ / "m", *be_);
            ADD_FAILURE() << "expected an error mentioning '" << fragment << "'";
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
        }
    }

    fs::path dir_;
    std::unique_ptr<Backend> be_;
    std::unique_ptr<Gpt> model_;
};

TEST_F(ModelIo, RoundTripIsBitExactAndKeepsHistory) {
    LoadedModel lm = load_model(dir_ / "m", *be_);
    ASSERT_EQ(lm.model->params().total(), model_->params().total());
    EXPECT_EQ(0, std::memcmp(lm.model->weights().data(), model_->weights().data(),
                             sizeof(float) * std::size_t(model_->params().total())));
    EXPECT_EQ(lm.meta.preset, "nano");
    ASSERT_EQ(lm.meta.history.size(), 1u);
    EXPECT_EQ(lm.meta.history[0].steps, 3);
}

TEST_F(ModelIo, ConfigHasHuggingFaceGpt2FieldsAndConv1dLayouts) {
    auto j = nlohmann::json::parse(read_file_text(dir_ / "m" / "config.json", 1 << 20));
    EXPECT_EQ(j["model_type"], "gpt2");
    EXPECT_EQ(j["activation_function"], "gelu_new");
    EXPECT_EQ(j["n_embd"], 32);
    EXPECT_EQ(j["n_layer"], 2);
    EXPECT_EQ(j["n_head"], 4);
    EXPECT_EQ(j["n_positions"], 32);
    EXPECT_EQ(j["vocab_size"], 257);
    EXPECT_NEAR(j["layer_norm_epsilon"].get<double>(), 1e-5, 1e-12);
    const SafeTensorsFile st = read_safetensors(dir_ / "m" / "model.safetensors");
    EXPECT_EQ(st.at("transformer.h.0.attn.c_attn.weight").shape, (Shape{32, 96}));  // Conv1D: (in, out)
    EXPECT_EQ(st.at("transformer.h.1.mlp.c_proj.weight").shape, (Shape{128, 32}));
    EXPECT_EQ(st.at("transformer.wte.weight").shape, (Shape{257, 32}));
    EXPECT_EQ(st.find("lm_head.weight"), nullptr);  // tied to wte
}

TEST_F(ModelIo, BadConfigsAreRejectedWithTheFieldNamed) {
    rewrite_config([](auto& j) { j.erase("n_embd"); });
    expect_load_error("n_embd");
    rewrite_config([](auto& j) { j["n_embd"] = "32"; });
    expect_load_error("must be an integer");
    rewrite_config([](auto& j) { j["n_embd"] = 30; });
    expect_load_error("not divisible by n_head");
    rewrite_config([](auto& j) { j["n_embd"] = 32; j["model_type"] = "llama"; });
    expect_load_error("model_type");
    rewrite_config([](auto& j) { j["model_type"] = "gpt2"; j["activation_function"] = "relu"; });
    expect_load_error("activation_function");
    rewrite_config([](auto& j) { j["activation_function"] = "gelu_new"; j["n_layer"] = 3; });
    expect_load_error("transformer.h.2");  // config promises a layer the weights do not have
    rewrite_config([](auto& j) { j["n_layer"] = 2; j["n_positions"] = 64; });
    expect_load_error("shape");
    write_file_atomic(dir_ / "m" / "config.json", std::string("{not json"));
    expect_load_error("not valid JSON");
}

TEST_F(ModelIo, UnexpectedOrMissingTensorsAreRejected) {
    SafeTensorsFile st = read_safetensors(dir_ / "m" / "model.safetensors");
    std::vector<float> one{1.0f};
    st.tensors.push_back(SafeTensor::from_f32("transformer.h.0.attn.extra", {1}, one.data()));
    write_safetensors(dir_ / "m" / "model.safetensors", st);
    expect_load_error("unexpected tensor");
    st.tensors.pop_back();
    st.tensors.erase(st.tensors.begin());  // drop wte
    write_safetensors(dir_ / "m" / "model.safetensors", st);
    expect_load_error("transformer.wte.weight");
}

TEST_F(ModelIo, AFailedSaveLeavesThePreviousFolderIntact) {
    const std::string before = read_file_text(dir_ / "m" / "config.json", 1 << 20);
    EXPECT_THROW(replace_folder_atomic(dir_ / "m",
                                       [](const fs::path& tmp) {
                                           write_file_atomic(tmp / "config.json", std::string("partial"));
                                           throw Error("[test] simulated crash in the middle of a save");
                                       }),
                 Error);
    EXPECT_EQ(read_file_text(dir_ / "m" / "config.json", 1 << 20), before);
    for (const auto& e : fs::directory_iterator(dir_)) EXPECT_EQ(e.path().filename(), "m") << "left behind: " << e.path();
    EXPECT_NO_THROW(load_model(dir_ / "m", *be_));
}

TEST_F(ModelIo, SavingOverAnExistingModelReplacesItWhole) {
    Gpt other(*be_, find_preset("nano").config);
    other.init_gpt2(99);
    save_model(dir_ / "m", other, {"nano", {}});
    LoadedModel lm = load_model(dir_ / "m", *be_);
    EXPECT_EQ(0, std::memcmp(lm.model->weights().data(), other.weights().data(),
                             sizeof(float) * std::size_t(other.params().total())));
    EXPECT_TRUE(lm.meta.history.empty());
}

}  // namespace
}  // namespace tl
