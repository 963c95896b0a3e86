// The registry of every engine experiment, built on first use. Registration is explicit (not static
// initialisers) because the engine is static libraries: the linker would drop self-registering objects.
#include "experiments/all_experiments.hpp"

namespace tl {

const ExperimentRegistry& experiments() {
    static const ExperimentRegistry registry = [] {
        ExperimentRegistry r;
        register_training_experiments(r);
        register_memory_experiments(r);
        register_peft_experiments(r);
        register_soft_prompt_experiments(r);
        register_formats_experiments(r);
        register_merge_experiments(r);
        register_quant_experiments(r);
        register_low_precision_experiments(r);
        return r;
    }();
    return registry;
}

}  // namespace tl
