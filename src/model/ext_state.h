#pragma once
// What the extensions (model/extensions.h) keep of a layer's forward pass and the scratch of
// their backward. Plain buffers, resized on use; empty when an extension is off.
#include <vector>

namespace difftx {

struct ExtActivations {
  std::vector<float> mass;                            // [M] attention mass each token receives
  std::vector<float> enh_y, enh_u, enh_act, enh_gate;  // enhancer: [M,C] [M,Cr] [M,Cr] [M,C]
  std::vector<float> noise_in, noise_inv_rms, noise_xn, noise_up, noise_act;  // noise branch
  std::vector<float> flow_cat, flow_gate;             // flow gate: [M, 2C] = [x_l; x_{l-1}], [M,C]
  double reg = 0.0;                                   // this layer's attention regulariser R_l
};

struct ExtGradScratch {
  std::vector<float> dmass, dE, dy, dz, dsmall, dwide, dxn, dcat, dx_in;
};

}  // namespace difftx
