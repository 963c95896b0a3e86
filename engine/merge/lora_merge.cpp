// LoRA combining. Eigen does the products, core/svd.hpp the SVD (in double: the svd result is compared against
// exact products in the tests, and these matrices are small).
#include "merge/lora_merge.hpp"

#include <Eigen/Dense>
#include <cmath>

#include "core/error.hpp"
#include "core/svd.hpp"

namespace tl {

namespace {

using MatD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

MatD to_mat(const TensorData& t) {
    TL_ASSERT(t.shape.size() == 2, "[merge] LoRA factors are matrices");
    return Eigen::Map<const MatF>(t.values.data(), t.shape[0], t.shape[1]).cast<double>();
}

TensorData from_mat(const MatD& m) {
    TensorData t{{m.rows(), m.cols()}, std::vector<float>(std::size_t(m.size()))};
    Eigen::Map<MatF>(t.values.data(), m.rows(), m.cols()) = m.cast<float>();
    return t;
}

void check_module(const std::string& name, const LoraFactors& m, const LoraFactors& ref, std::size_t i) {
    if (m.A.shape.size() != 2 || m.B.shape.size() != 2 || m.A.shape[0] != m.B.shape[1])
        throw Error("[merge] LoRA module '" + name + "' of adapter " + std::to_string(i) + ": A " +
                    shape_str(m.A.shape) + " and B " + shape_str(m.B.shape) + " are not (r, in) and (out, r)");
    if (m.A.shape[1] != ref.A.shape[1] || m.B.shape[0] != ref.B.shape[0])
        throw Error("[merge] LoRA module '" + name + "': adapter " + std::to_string(i) + " has in x out " +
                    std::to_string(m.A.shape[1]) + " x " + std::to_string(m.B.shape[0]) + ", adapter 0 has " +
                    std::to_string(ref.A.shape[1]) + " x " + std::to_string(ref.B.shape[0]));
}

LoraFactors combine_module(const std::vector<const LoraFactors*>& ms, const std::vector<double>& w,
                          const LoraMergeSpec& spec, const std::string& name) {
    const std::int64_t in = ms[0]->A.shape[1], out = ms[0]->B.shape[0];
    LoraFactors r;
    if (spec.combine == LoraCombine::cat) {  // B_cat A_cat = sum_i (w_i s_i B_i) A_i
        std::int64_t total = 0;
        for (const LoraFactors* m : ms) total += m->rank();
        MatD A(total, in), B(out, total);
        std::int64_t at = 0;
        for (std::size_t i = 0; i < ms.size(); ++i) {
            const std::int64_t ri = ms[i]->rank();
            A.middleRows(at, ri) = to_mat(ms[i]->A);
            B.middleCols(at, ri) = w[i] * ms[i]->scale * to_mat(ms[i]->B);
            at += ri;
        }
        return {from_mat(A), from_mat(B), 1.0};
    }
    if (spec.combine == LoraCombine::linear) {  // A = sum w_i A_i, B = sum w_i s_i B_i
        MatD A = MatD::Zero(ms[0]->rank(), in), B = MatD::Zero(out, ms[0]->rank());
        for (std::size_t i = 0; i < ms.size(); ++i) {
            if (ms[i]->rank() != ms[0]->rank())
                throw Error("[merge] LoRA linear needs equal ranks; module '" + name + "' has ranks " +
                            std::to_string(ms[0]->rank()) + " and " + std::to_string(ms[i]->rank()) + "; use cat or svd");
            A += w[i] * to_mat(ms[i]->A);
            B += w[i] * ms[i]->scale * to_mat(ms[i]->B);
        }
        return {from_mat(A), from_mat(B), 1.0};
    }
    // svd: delta = sum w_i s_i B_i A_i = U S V^T;  B = U_r sqrt(S_r),  A = sqrt(S_r) V_r^T.
    if (spec.rank < 1 || spec.rank > std::min(in, out))
        throw Error("[merge] LoRA svd rank must be in 1.." + std::to_string(std::min(in, out)) + " for module '" +
                    name + "'; got " + std::to_string(spec.rank));
    MatD delta = MatD::Zero(out, in);
    for (std::size_t i = 0; i < ms.size(); ++i) delta += w[i] * ms[i]->scale * to_mat(ms[i]->B) * to_mat(ms[i]->A);
    const Svd svd = thin_svd(delta.data(), out, in, SvdVectors::thin);
    const Eigen::Map<const MatD> U(svd.U.data(), out, svd.k), V(svd.V.data(), in, svd.k);
    const Eigen::VectorXd root = Eigen::Map<const Eigen::VectorXd>(svd.S.data(), spec.rank).cwiseSqrt();
    const MatD B = U.leftCols(spec.rank) * root.asDiagonal();
    const MatD A = root.asDiagonal() * V.leftCols(spec.rank).transpose();
    return {from_mat(A), from_mat(B), 1.0};
}

}  // namespace

LoraFactorSet merge_lora(std::span<const LoraFactorSet> adapters, const LoraMergeSpec& spec) {
    if (adapters.empty()) throw Error("[merge] no LoRA adapters to combine");
    std::vector<double> w = spec.weights.empty() ? std::vector<double>(adapters.size(), 1.0) : spec.weights;
    if (w.size() != adapters.size())
        throw Error("[merge] " + std::to_string(w.size()) + " weights for " + std::to_string(adapters.size()) +
                    " adapters; give one weight per adapter");
    LoraFactorSet out;
    for (const auto& [name, ref] : adapters[0]) {
        std::vector<const LoraFactors*> ms;
        for (std::size_t i = 0; i < adapters.size(); ++i) {
            auto it = adapters[i].find(name);
            if (it == adapters[i].end() || adapters[i].size() != adapters[0].size())
                throw Error("[merge] LoRA adapters target different modules (adapter " + std::to_string(i) +
                            " lacks '" + name + "' or has others); combine adapters of one configuration");
            check_module(name, it->second, ref, i);
            ms.push_back(&it->second);
        }
        out.emplace(name, combine_module(ms, w, spec, name));
    }
    return out;
}

std::vector<float> lora_delta(const LoraFactors& m) {
    return from_mat(m.scale * to_mat(m.B) * to_mat(m.A)).values;
}

}  // namespace tl
