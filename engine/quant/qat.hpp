// Quantization-aware training without touching the model: FP32 master copies of the planned tensors live
// here; the model always holds fake_quantize(master). The trainer computes gradients at the quantized point
// and AdamW moves the model's weights; after each step the move is handed to the master (straight-through
// estimator: the quantizer's derivative taken as 1) and the model gets fake_quantize(master) again. Not
// activation quantization (needs a forward hook; docs/quantization.md). Plans: model_quant.hpp. Training:
// train/recipes.hpp.
#pragma once
#include <atomic>
#include <vector>

#include "quant/model_quant.hpp"
#include "train/recipes.hpp"
#include "train/trainer.hpp"

namespace tl {

enum class SteMode {
    identity,  // d q(w) / d w = 1 everywhere (BitNet, most QAT recipes)
    clipped,   // ... = 0 where w lies beyond the block's representable range (saturated): such elements don't
               // move
};

class QatState {
public:
    // Takes the model's current weights as the masters and writes fake_quantize(master) into the model.
    QatState(Gpt& model, QuantPlan plan, SteMode ste);

    // After an optimizer step: master += (model weight - the quantized value it started the step from),
    // masked by the STE; then the model gets fake_quantize(master).
    void after_step(Gpt& model);

    // d loss / d master under the STE, from the model's gradient at the quantized point (after a backward).
    std::vector<float> master_gradient(const Gpt& model, std::size_t entry) const;
    // 1 where the STE passes the gradient, 0 where it blocks it (all ones for SteMode::identity).
    std::vector<float> ste_mask(std::size_t entry) const;

    const QuantPlan& plan() const { return plan_; }
    const std::vector<float>& master(std::size_t entry) const { return master_[entry]; }
    const std::vector<float>& quantized(std::size_t entry) const { return quantized_[entry]; }

private:
    void requantize(Gpt& model, std::size_t entry);
    QuantPlan plan_;
    SteMode ste_;
    std::vector<std::vector<float>> master_, quantized_;
};

// Elements outside the representable range of their block under the scheme (1 = inside). Symmetric scaled
// formats: |w| <= scale * unit_max (+0.1% for the scale's fp16 rounding); asymmetric integers: (0 - zero) *
// scale <= w <= (2^bits - 1 - zero) * scale; unscaled formats and palettes never saturate (palettes are
// fitted to the data), so all ones.
std::vector<float> representable_mask(std::span<const float> w, std::int64_t rows, std::int64_t cols,
                                      const QuantScheme& s);

// An observer that keeps the QatState in step with training, then forwards the event.
class QatObserver : public TrainObserver {
public:
    QatObserver(Gpt& model, QatState& state, TrainObserver* inner)
        : model_(model), state_(state), inner_(inner) {}
    void on_step(const StepEvent& e) override;

private:
    Gpt& model_;
    QatState& state_;
    TrainObserver* inner_;
};

// Fine-tunes with QAT under the plan; the model ends holding the quantized weights (ready to store or
// evaluate).
TrainSummary qat_finetune(Gpt& model, const FinetuneSpec& spec, const QuantPlan& plan, SteMode ste,
                          TrainObserver* observer = nullptr, const std::atomic<bool>* cancel = nullptr);

}  // namespace tl
