#include "experiments/dashboard_recorder.hpp"

#include "core/memory_ledger.hpp"

namespace tl {

DashboardRecorder::DashboardRecorder(Result& result, RunContext& ctx, std::string label, std::int64_t eval_every,
                                     std::function<double()> validation_loss)
    : result_(result),
      ctx_(ctx),
      label_(std::move(label)),
      eval_every_(eval_every),
      validation_loss_(std::move(validation_loss)) {}

void DashboardRecorder::add(const std::string& series, double x, double y) {
    Series& s = result_.series_named(series, "step");
    s.x.push_back(x);
    s.y.push_back(y);
    ctx_.point(series, x, y);
}

void DashboardRecorder::on_step(const StepEvent& e) {
    const double step = double(e.step);
    add("train_loss", step, e.loss);
    add("lr", step, e.lr);
    add("grad_norm", step, e.grad_norm);
    add("tokens_per_s", step, e.tokens_per_s);
    for (int c = 0; c < kMemCategoryCount; ++c)
        add("mem_" + std::string(kMemCategoryNames[c]), step, double(e.memory.current[c]));
    if (!e.expert_load.empty()) {  // [MoE] each expert's share of the routed tokens, all layers together
        std::vector<double> per_expert(e.expert_load.front().size(), 0.0);
        double total = 0;
        for (const auto& layer : e.expert_load)
            for (std::size_t i = 0; i < layer.size(); ++i) per_expert[i] += double(layer[i]), total += double(layer[i]);
        for (std::size_t i = 0; i < per_expert.size(); ++i)
            add("expert_share_" + std::to_string(i), step, total > 0 ? per_expert[i] / total : 0.0);
        add("router_aux_loss", step, e.router_aux_loss);
    }
    const bool is_eval_step = eval_every_ > 0 && (e.step % eval_every_ == 0 || e.step == e.total_steps);
    if (validation_loss_ && is_eval_step) add("val_loss", step, validation_loss_());
    ctx_.progress(e.step, e.total_steps, label_);
}

}  // namespace tl
