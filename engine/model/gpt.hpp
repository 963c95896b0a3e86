// Gpt: the GPT-2 model (pre-LN, learned positions, tied embeddings, biases, GELU tanh, causal attention) as a flat
// parameter buffer described by a ParamTable, with a forward pass that keeps what backward needs and a backward
// pass that accumulates parameter gradients. Ops run on a Backend. Generation with a KV cache: generate.hpp.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/backend.hpp"
#include "model/config.hpp"
#include "model/frozen_store.hpp"
#include "model/moe.hpp"
#include "model/params.hpp"

namespace tl {

struct LayerWeights {
    CVecView ln1_w, ln1_b;
    CMatView qkv_w;  // (C, 3C)
    CVecView qkv_b;
    CMatView proj_w;  // (C, C)
    CVecView proj_b;
    CVecView ln2_w, ln2_b;
    CMatView fc_w;  // (C, 4C)
    CVecView fc_b;
    CMatView fcproj_w;  // (4C, C)
    CVecView fcproj_b;
};

struct LayerGrads {
    VecView ln1_w, ln1_b;
    MatView qkv_w;
    VecView qkv_b;
    MatView proj_w;
    VecView proj_b;
    VecView ln2_w, ln2_b;
    MatView fc_w;
    VecView fc_b;
    MatView fcproj_w;
    VecView fcproj_b;
};

class Gpt;

// [PEFT hooks] Points in a layer where a module of engine/peft acts. Each site has an input x and an output y:
//   attn_qkv  y = ln_1(x) c_attn (N, 3C)     attn_proj  y = atty c_proj (N, C)   (the attention branch)
//   mlp_fc    y = ln_2(h) c_fc (N, 4C)       mlp_hidden y = gelu(x)     (N, 4C)  (x = the c_fc output)
//   mlp_proj  y = hidden c_proj (N, C)       (the MLP branch, before the residual add)
enum class HookSite { attn_qkv, attn_proj, mlp_fc, mlp_hidden, mlp_proj };
inline constexpr int kHookSiteCount = 5;

struct HookForward {
    std::int64_t layer = 0;
    HookSite site = HookSite::attn_qkv;
    MatView y;   // the site's output: a hook modifies it in place (all hooks in attach order)
    CMatView x;  // the site's input
};

struct HookBackward {
    std::int64_t layer = 0;
    HookSite site = HookSite::attn_qkv;
    MatView dy;  // d loss / d (the site's output after this hook); backward_output maps it to before the hook
    MatView dx;  // d loss / d x, already holding the base op's part: backward_input adds (+=); null at mlp_hidden
    CMatView x;  // the site's input as the forward saw it
};

struct AdapterParam {
    std::string name;  // Hugging Face PEFT naming where one exists, e.g. "transformer.h.0.attn.c_attn.lora_A.weight"
    Shape shape;
    ParamRole role = ParamRole::weight;
};

// A PEFT module attached to a Gpt. Its parameters live in the model's ParamTable after the base entries, in
// buffers of their own (ledger: weights, grads), so the optimizer and clipping see them like any parameter.
// forward() may change y; backward_output() runs (reverse attach order) before the base op's backward and turns
// dy into the gradient before this hook; backward_input() runs after it and adds to dx. Both accumulate into
// the module's parameter gradients (model.grad(...)).
class ModelAdapter {
public:
    virtual ~ModelAdapter() = default;
    virtual std::string name() const = 0;
    virtual std::vector<AdapterParam> params() const = 0;
    virtual void init(Gpt& model, std::uint64_t seed) = 0;  // after the parameters are allocated (zeroed)
    virtual void forward(Gpt& model, const HookForward& h) = 0;
    virtual void backward_output(Gpt& model, const HookBackward& h) {}
    virtual void backward_input(Gpt& model, const HookBackward& h) {}
    virtual bool acts_at(HookSite site) const = 0;  // lets the model skip sites nobody hooks

    // [soft prompts] A module may put n virtual tokens before every row (prompt tuning, P-tuning): the model then
    // runs its blocks on n + T positions, virtual token j at position j and real token t at n + t, as PEFT does
    // for GPT-2 (the prompt is concatenated to the input embeddings before the position embeddings are added).
    // Logits, losses and loss weights keep covering the T real positions only, so callers do not change.
    virtual std::int64_t virtual_tokens() const { return 0; }
    // Writes the (n, C) virtual token embeddings (before position embeddings). Called once per forward and by the
    // KV-cache decoder; a module may keep what prompt_backward needs.
    virtual void prompt_forward(const Gpt& model, MatView prompt) {}
    // dprompt (n, C): d loss / d the virtual embeddings, summed over the batch's rows. Accumulates (+=) into the
    // module's parameter gradients.
    virtual void prompt_backward(Gpt& model, CMatView dprompt) {}
    // [prefix tuning] A virtual-token module that overwrites the virtual rows' keys and values at every layer's
    // attn_qkv hook says so here, and writes its (n, 2 L C) prefix (layer l's keys at columns [2l C, (2l+1) C),
    // values next, PEFT's layout). The KV-cache decoder copies it into its caches instead of running the rows.
    virtual bool has_prefix_kv() const { return false; }
    virtual void prefix_kv(const Gpt& model, MatView kv) {}
};

class Gpt {
public:
    Gpt(Backend& backend, const GptConfig& config);  // weights allocated, zero; call init_gpt2 or load
    ~Gpt();
    Gpt(const Gpt&) = delete;
    Gpt& operator=(const Gpt&) = delete;

    // GPT-2 initialisation: N(0, 0.02) for matrices and embeddings, residual projections (attn.c_proj,
    // mlp.c_proj) N(0, 0.02 / sqrt(2L)), biases 0, LayerNorm weight 1. Each tensor draws from its own Rng
    // stream, so the result does not depend on the order of the table.
    void init_gpt2(std::uint64_t seed);

    const GptConfig& config() const { return config_; }
    const ParamTable& params() const { return params_; }
    ParamTable& params() { return params_; }
    Backend& backend() const { return backend_; }
    const Tensor& weights() const { return weights_; }
    // Views of one parameter (base or adapter) and of its gradient.
    VecView param(const ParamInfo& p) const;
    VecView grad(const ParamInfo& p) const;
    const Tensor& grads() const { return grads_; }  // the base parameters' gradients only (not stored ones)

    // [QLoRA] Moves every base matrix the store holds out of the fp32 buffer: those entries become frozen and
    // is_in_store, and the weight (and gradient) buffers shrink to the rest. layer(l) then decodes layer l's stored
    // matrices into one workspace shared by all layers (decoding again only when another layer was decoded last).
    // param()/grad() of a stored entry is an internal error. tl::Error for a mixture-of-experts model or a second
    // store.
    void move_to_store(std::unique_ptr<FrozenMatrixStore> store);
    const FrozenMatrixStore* store() const { return store_.get(); }

    // [PEFT hooks] Attaching appends the module's parameters to the table (trainable, zero, then init(seed));
    // detaching removes every module and its parameters: the model is a plain GPT-2 again.
    ModelAdapter& attach(std::unique_ptr<ModelAdapter> adapter, std::uint64_t seed);
    void detach_adapters();
    const std::vector<std::unique_ptr<ModelAdapter>>& adapters() const { return adapters_; }
    bool has_adapters() const { return !adapters_.empty(); }
    bool has_hooks() const;  // a module acts at some HookSite (a soft prompt alone does not)
    // [soft prompts] The attached module's virtual tokens (0 without one), the real tokens a row may then hold
    // (n_positions - n), and the module's (n, C) virtual embeddings.
    std::int64_t virtual_tokens() const;
    std::int64_t context() const { return config_.n_positions - virtual_tokens(); }
    void virtual_embeddings(MatView out) const;
    std::int64_t base_param_count() const { return base_total_; }
    std::int64_t batch_rows() const { return B_; }  // B and T of the last forward, for hooks that need them
    std::int64_t seq_len() const { return T_; }

    void enable_grads();  // allocates the flat gradient buffer (category grads), zeroed
    bool has_grads() const { return !grads_.empty(); }
    void zero_grads();

    // Forward over B rows of T tokens (T <= context()); targets may be null (no loss). Keeps activations.
    // With a soft prompt the blocks see n + T positions per row; logits and losses stay (B*T) rows.
    void forward(const std::int32_t* tokens, const std::int32_t* targets, std::int64_t B, std::int64_t T);
    // Backward of  sum_i weights[i] * loss_i / norm  for the last forward; parameter grads accumulate (+=).
    void backward(const float* weights, float norm);

    CMatView logits() const;   // (B*T, V) of the last forward (real tokens only)
    CVecView losses() const;   // (B*T) per-token cross-entropy of the last forward (needs targets)
    std::int64_t rows() const { return B_ * T_; }

    // [MoE] the mlp views are null: the experts are in moe_weights(l). [QLoRA] Stored matrices are views of the
    // decode workspace, valid until layer() is called for another layer.
    LayerWeights layer(std::int64_t l) const;
    LayerGrads layer_grads(std::int64_t l) const;  // [QLoRA] null views for stored matrices
    // [MoE] (config().is_moe()) The router and experts of layer l, their gradients (null views when frozen), and the
    // routing state: per-layer statistics of the last forward, load counts since reset_load(). Null when dense.
    MoeWeights moe_weights(std::int64_t l) const;
    MoeGrads moe_grads(std::int64_t l) const;
    const MoeBlocks* moe() const { return moe_.get(); }
    MoeBlocks* moe() { return moe_.get(); }
    CMatView wte() const;  // (V, C)
    CMatView wpe() const;  // (n_positions, C)

private:
    struct Activations;
    struct Scratch;
    void plan_buffers(std::int64_t B, std::int64_t T, std::int64_t n);
    void embed_forward();
    void embed_backward();
    const float* head_input() const;  // ln_f's input: the last layer's output, real rows only
    void forward_layer(std::int64_t l, const float* residual_in);
    void backward_layer(std::int64_t l, const float* residual_in);
    const float* layer_input(std::int64_t l) const;
    void hook_forward(std::int64_t l, HookSite site, MatView y, CMatView x);
    void hook_backward_output(std::int64_t l, HookSite site, MatView dy, CMatView x);
    void hook_backward_input(std::int64_t l, HookSite site, MatView dy, MatView dx, CMatView x);
    MatView branch_grad(std::int64_t l, HookSite site);  // dy for a residual branch (copied when hooked)
    bool is_hooked(HookSite site) const;
    LayerGrads trainable_layer_grads(std::int64_t l) const;
    void decode_stored(std::int64_t l, LayerWeights& w) const;  // [QLoRA]

    Backend& backend_;
    GptConfig config_;
    ParamTable params_;
    Tensor weights_, grads_;
    struct AdapterStorage {
        std::int64_t first = 0, n = 0;  // offsets [first, first + n) of the table
        Tensor weights, grads;
    };
    const AdapterStorage& storage_of(const ParamInfo& p) const;
    std::vector<std::unique_ptr<ModelAdapter>> adapters_;
    std::vector<AdapterStorage> adapter_storage_;
    std::int64_t base_total_ = 0;
    std::int64_t flat_total_ = 0;  // floats in weights_ / grads_: base_total_ less the stored matrices [QLoRA]
    std::size_t base_entries_ = 0;
    std::unique_ptr<FrozenMatrixStore> store_;  // [QLoRA] null unless move_to_store
    mutable Tensor stored_ws_;                  // [QLoRA] one layer's decoded stored matrices (workspace)
    mutable std::int64_t decoded_layer_ = -1;   // [QLoRA] the layer stored_ws_ holds
    std::unique_ptr<Activations> acts_;
    std::unique_ptr<Scratch> scratch_;
    std::int64_t B_ = 0, T_ = 0, n_ = 0;  // rows, real tokens per row, virtual tokens (blocks see n + T)
    std::int64_t planned_B_ = 0, planned_T_ = 0, planned_n_ = 0;
    bool has_targets_ = false;
    std::unique_ptr<MoeBlocks> moe_;  // [MoE] only when config_.is_moe()
    double moe_aux_scale_ = 0;        // [MoE] d loss / d (one layer's aux loss) in the running backward
};

}  // namespace tl
