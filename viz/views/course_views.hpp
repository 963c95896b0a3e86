// The course's topic views beyond the dashboard (docs/viewer.md, /work/shared/VIEWS.md): memory, lora_sweep,
// method_compare, formats, slerp, ptq_qat, spectrum, merge_lab, moe_router, one file each (<name>_view.cpp), registered in view_registry.cpp.
// Each reads only the Result, draws what is present and names what is missing.
#pragma once
#include "views/view.hpp"

namespace tl::viz {

void draw_memory_view(const ViewContext& ctx);
void draw_lora_sweep_view(const ViewContext& ctx);
void draw_method_compare_view(const ViewContext& ctx);
void draw_formats_view(const ViewContext& ctx);
void draw_slerp_view(const ViewContext& ctx);
void draw_ptq_qat_view(const ViewContext& ctx);
void draw_spectrum_view(const ViewContext& ctx);
void draw_merge_lab_view(const ViewContext& ctx);
void draw_moe_router_view(const ViewContext& ctx);

}  // namespace tl::viz
