// A terminal progress bar for training: one line redrawn in place on a terminal, a line every 10% otherwise
// (logs, CI). Writes to stderr so stdout stays machine-readable.
#pragma once
#include <string>

#include "train/trainer.hpp"

namespace tl {

class ProgressBar : public TrainObserver {
public:
    explicit ProgressBar(std::string label);
    void on_step(const StepEvent& e) override;

private:
    std::string label_;
    bool is_tty_;
    std::int64_t last_printed_decile_ = -1;
};

std::string format_bytes(double bytes);
std::string format_count(double n);  // 12.3k, 4.5M

}  // namespace tl
