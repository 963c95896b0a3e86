// A TrainObserver that turns training events into the dashboard's series — train loss, learning rate, gradient
// norm, tokens/s, memory by category, MoE expert shares and router aux loss (expert_share_i, router_aux_loss;
// MoE models only), and (every few steps) validation loss — both live (RunContext points, for
// the GUI while the run goes on) and in the Result (for the cache, the terminal and screenshots).
#pragma once
#include <functional>
#include <string>

#include "experiments/experiment.hpp"
#include "train/trainer.hpp"

namespace tl {

class DashboardRecorder : public TrainObserver {
public:
    // validation_loss, when set, is called every eval_every steps (and at the last step).
    DashboardRecorder(Result& result, RunContext& ctx, std::string label, std::int64_t eval_every = 0,
                      std::function<double()> validation_loss = {});
    void on_step(const StepEvent& e) override;

private:
    void add(const std::string& series, double x, double y);
    Result& result_;
    RunContext& ctx_;
    std::string label_;
    std::int64_t eval_every_;
    std::function<double()> validation_loss_;
};

}  // namespace tl
