// One registration function per module's experiments; all_experiments.cpp calls each once.
#pragma once
#include "experiments/experiment.hpp"

namespace tl {
void register_training_experiments(ExperimentRegistry& r);  // training_experiments.cpp: the tour, the dashboard
void register_memory_experiments(ExperimentRegistry& r);    // memory_experiments.cpp: predicted vs measured
void register_peft_experiments(ExperimentRegistry& r);      // peft_experiments.cpp: methods, LoRA rank sweep
void register_soft_prompt_experiments(ExperimentRegistry& r);  // soft_prompt_experiments.cpp: hard vs soft prompts
void register_formats_experiments(ExperimentRegistry& r);  // formats_experiments.cpp: table, rounding, quant error
void register_formats_model_experiments(ExperimentRegistry& r);  // formats_model_experiments.cpp (via formats)
void register_merge_experiments(ExperimentRegistry& r);    // merge_experiments.cpp: slerp path, methods
void register_quant_experiments(ExperimentRegistry& r);
void register_low_precision_experiments(ExperimentRegistry& r);  // low_precision_experiments.cpp: bf16/fp16 training    // quant_experiments.cpp: PTQ, QAT, BitNet, mixed-bit
}
