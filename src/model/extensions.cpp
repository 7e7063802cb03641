#include "model/extensions.h"

#include <cstring>

#include "core/error.h"
#include "kernels/ext_ops.h"
#include "kernels/matmul.h"
#include "kernels/rmsnorm.h"

namespace difftx {
namespace {

void resize(std::vector<float>& v, int64_t n) { v.resize(static_cast<size_t>(n)); }

float sigmoid_grad(float g) { return g * (1.f - g); }

}  // namespace

void ext_setup_pass(const Config& c, int64_t T, bool with_loss, bool with_cache, LayerPass& p) {
  const ExtensionConfig& e = c.ext;
  if (with_cache && e.needs_mass())
    throw Error(std::string(e.map_key(false)) +
                ": a KV cache cannot serve this model: the attention mass a token receives "
                "changes with every later query, so generation recomputes the whole context "
                "(KvSession does this itself)");
  const char* key = e.map_key(with_loss);
  p.explicit_maps = key != nullptr;
  check(!key || T <= kMaxExplicitMapTokens, key, " needs the explicit attention maps, which the ",
        "reference kernel serves up to T = ", kMaxExplicitMapTokens, "; this pass has T = ", T,
        ": use shorter sequences");
  p.attention_loss_weight = with_loss && e.attention_loss ? e.attention_loss->alpha : 0.0;
}

void ext_check_seq(const Config& c, int64_t seq) {
  if (const char* key = c.ext.map_key(true))
    check_field(seq <= kMaxExplicitMapTokens, "seq", " (", seq, ") exceeds ",
                kMaxExplicitMapTokens, ", the longest sequence whose explicit attention maps ",
                key, " can use");
}

void ext_attention_output_forward(const LayerPass& p, int64_t l, LayerActivations& a, float* y) {
  const Config& c = p.model.config;
  const ExtensionConfig& e = c.ext;
  const HeadGeometry& g = p.geom;
  const int64_t M = g.B * g.T, C = c.hidden_size;
  const float* probs = a.attn_saved.probs.data();
  a.ext.reg = p.attention_loss_weight > 0
                  ? attention_norm_reg_forward(g, probs, a.lambda, e.attention_loss->beta)
                  : 0.0;
  if (!e.needs_mass()) return;
  resize(a.ext.mass, M);
  attention_mass_forward(g, probs, a.lambda, a.ext.mass.data());
  if (!e.enhancer_reduction) return;
  const ExtOffsets& L = p.model.layout.layers[static_cast<size_t>(l)].ext;
  const int64_t Cr = C / *e.enhancer_reduction;
  a.ext.enh_y.assign(y, y + M * C);
  resize(a.ext.enh_u, M * Cr);
  resize(a.ext.enh_act, M * Cr);
  resize(a.ext.enh_gate, M * C);
  linear_forward(y, p.model.at(L.enhancer_down), a.ext.enh_u.data(), M, Cr, C, p.run.precision);
  gelu_forward(a.ext.enh_u.data(), a.ext.enh_act.data(), M * Cr);
  linear_forward(a.ext.enh_act.data(), p.model.at(L.enhancer_up), a.ext.enh_gate.data(), M, C,
                 Cr, p.run.precision);
  sigmoid_forward(a.ext.enh_gate.data(), a.ext.enh_gate.data(), M * C);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t i = 0; i < C; ++i) y[m * C + i] *= a.ext.enh_gate[m * C + i] * (1.f + a.ext.mass[m]);
}

void ext_block_output_forward(const LayerPass& p, int64_t l, LayerActivations& a, float* x) {
  const Config& c = p.model.config;
  const ExtensionConfig& e = c.ext;
  const ExtOffsets& L = p.model.layout.layers[static_cast<size_t>(l)].ext;
  const int64_t M = p.geom.B * p.geom.T, C = c.hidden_size;
  const Precision prec = p.run.precision;
  if (e.noise_threshold) {
    ExtActivations& s = a.ext;
    s.noise_in.assign(x, x + M * C);
    resize(s.noise_inv_rms, M);
    resize(s.noise_xn, M * C);
    resize(s.noise_up, M * 2 * C);
    resize(s.noise_act, M * 2 * C);
    rmsnorm_forward(x, p.model.at(L.noise_norm), 1.f, static_cast<float>(c.rms_norm_eps),
                    s.noise_xn.data(), s.noise_inv_rms.data(), M, C);
    linear_forward(s.noise_xn.data(), p.model.at(L.noise_up), s.noise_up.data(), M, 2 * C, C, prec);
    gelu_forward(s.noise_up.data(), s.noise_act.data(), M * 2 * C);
    std::vector<float> branch(static_cast<size_t>(M * C));
    linear_forward(s.noise_act.data(), p.model.at(L.noise_down), branch.data(), M, C, 2 * C, prec);
    for (int64_t m = 0; m < M; ++m)
      if (s.mass[m] > *e.noise_threshold)
        for (int64_t i = 0; i < C; ++i) x[m * C + i] += branch[m * C + i];
  }
  if (e.flow_gate) {
    ExtActivations& s = a.ext;
    resize(s.flow_cat, M * 2 * C);
    resize(s.flow_gate, M * C);
    for (int64_t m = 0; m < M; ++m) {
      std::memcpy(s.flow_cat.data() + m * 2 * C, x + m * C, sizeof(float) * C);
      std::memcpy(s.flow_cat.data() + m * 2 * C + C, a.x_in.data() + m * C, sizeof(float) * C);
    }
    linear_forward(s.flow_cat.data(), p.model.at(L.flow_weight), s.flow_gate.data(), M, C, 2 * C,
                   prec);
    const float* bias = p.model.at(L.flow_bias);
    for (int64_t m = 0; m < M; ++m)
      for (int64_t i = 0; i < C; ++i) s.flow_gate[m * C + i] += bias[i];
    sigmoid_forward(s.flow_gate.data(), s.flow_gate.data(), M * C);
    for (int64_t m = 0; m < M; ++m)
      for (int64_t i = 0; i < C; ++i) {
        const float gt = s.flow_gate[m * C + i];
        x[m * C + i] = gt * x[m * C + i] + (1.f - gt) * a.x_in[m * C + i];
      }
  }
}

void ext_block_output_backward(const LayerPass& p, int64_t l, const LayerActivations& a,
                               std::vector<float>& dx, ExtGradScratch& s, float* G) {
  const Config& c = p.model.config;
  const ExtensionConfig& e = c.ext;
  const ExtOffsets& L = p.model.layout.layers[static_cast<size_t>(l)].ext;
  const int64_t M = p.geom.B * p.geom.T, C = c.hidden_size;
  const Precision prec = p.run.precision;
  if (e.flow_gate) {
    // out = g x_l + (1 - g) x_prev:  dz = dout (x_l - x_prev) g (1 - g),  z = W [x_l; x_prev] + b
    const std::vector<float>& cat = a.ext.flow_cat;
    const std::vector<float>& gate = a.ext.flow_gate;
    resize(s.dz, M * C);
    resize(s.dcat, M * 2 * C);
    resize(s.dx_in, M * C);
    float* db = G + L.flow_bias;
    for (int64_t m = 0; m < M; ++m)
      for (int64_t i = 0; i < C; ++i) {
        const float xl = cat[m * 2 * C + i], xp = cat[m * 2 * C + C + i], gt = gate[m * C + i];
        s.dz[m * C + i] = dx[m * C + i] * (xl - xp) * sigmoid_grad(gt);
        db[i] += s.dz[m * C + i];
      }
    linear_backward(s.dz.data(), cat.data(), p.model.at(L.flow_weight), s.dcat.data(),
                    G + L.flow_weight, M, C, 2 * C, false, prec);
    for (int64_t m = 0; m < M; ++m)
      for (int64_t i = 0; i < C; ++i) {
        const float gt = gate[m * C + i], d = dx[m * C + i];
        s.dx_in[m * C + i] = d * (1.f - gt) + s.dcat[m * 2 * C + C + i];
        dx[m * C + i] = d * gt + s.dcat[m * 2 * C + i];
      }
  }
  if (e.noise_threshold) {
    // o = o_in + mask * W_nd gelu(W_nu rmsnorm(o_in)); no gradient through the hard mask
    resize(s.dz, M * C);
    resize(s.dwide, M * 2 * C);
    resize(s.dxn, M * C);
    for (int64_t m = 0; m < M; ++m) {
      const float mask = a.ext.mass[m] > *e.noise_threshold ? 1.f : 0.f;
      for (int64_t i = 0; i < C; ++i) s.dz[m * C + i] = mask * dx[m * C + i];
    }
    linear_backward(s.dz.data(), a.ext.noise_act.data(), p.model.at(L.noise_down),
                    s.dwide.data(), G + L.noise_down, M, C, 2 * C, false, prec);
    gelu_backward(a.ext.noise_up.data(), s.dwide.data(), s.dwide.data(), M * 2 * C);
    linear_backward(s.dwide.data(), a.ext.noise_xn.data(), p.model.at(L.noise_up), s.dxn.data(),
                    G + L.noise_up, M, 2 * C, C, false, prec);
    rmsnorm_backward(s.dxn.data(), a.ext.noise_in.data(), p.model.at(L.noise_norm), 1.f,
                     a.ext.noise_inv_rms.data(), dx.data(), G + L.noise_norm, M, C);
  }
}

const float* ext_attention_output_backward(const LayerPass& p, int64_t l,
                                           const LayerActivations& a, const float* dy_out,
                                           ExtGradScratch& s, float* G) {
  const Config& c = p.model.config;
  const ExtensionConfig& e = c.ext;
  if (!e.enhancer_reduction) return dy_out;
  const ExtOffsets& L = p.model.layout.layers[static_cast<size_t>(l)].ext;
  const int64_t M = p.geom.B * p.geom.T, C = c.hidden_size, Cr = C / *e.enhancer_reduction;
  const Precision prec = p.run.precision;
  const ExtActivations& x = a.ext;
  // y' = y * gate * (1 + m):  dy = dy' gate (1 + m) + (gate path),  dm_t = sum_i dy' y gate
  resize(s.dy, M * C);
  resize(s.dz, M * C);
  resize(s.dsmall, M * Cr);
  s.dmass.assign(static_cast<size_t>(M), 0.f);
  for (int64_t m = 0; m < M; ++m) {
    const float scale = 1.f + x.mass[m];
    double dm = 0.0;
    for (int64_t i = 0; i < C; ++i) {
      const float d = dy_out[m * C + i], y = x.enh_y[m * C + i], gt = x.enh_gate[m * C + i];
      s.dy[m * C + i] = d * gt * scale;
      s.dz[m * C + i] = d * y * scale * sigmoid_grad(gt);
      dm += static_cast<double>(d) * y * gt;
    }
    s.dmass[m] = static_cast<float>(dm);
  }
  linear_backward(s.dz.data(), x.enh_act.data(), p.model.at(L.enhancer_up), s.dsmall.data(),
                  G + L.enhancer_up, M, C, Cr, false, prec);
  gelu_backward(x.enh_u.data(), s.dsmall.data(), s.dsmall.data(), M * Cr);
  linear_backward(s.dsmall.data(), x.enh_y.data(), p.model.at(L.enhancer_down), s.dy.data(),
                  G + L.enhancer_down, M, Cr, C, true, prec);
  return s.dy.data();
}

float ext_maps_backward(const LayerPass& p, const LayerActivations& a, ExtGradScratch& s,
                        float* dQ, float* dK) {
  const ExtensionConfig& e = p.model.config.ext;
  const bool reg = p.attention_loss_weight > 0;
  if (!e.enhancer_reduction && !reg) return 0.f;
  check(p.explicit_maps && !a.attn_saved.probs.empty(),
        "the extensions' backward needs the attention maps of its forward pass");
  const HeadGeometry& g = p.geom;
  const float* probs = a.attn_saved.probs.data();
  s.dE.assign(static_cast<size_t>(g.B * g.Pq * g.T * g.T), 0.f);
  if (e.enhancer_reduction) attention_mass_backward(g, s.dmass.data(), s.dE.data());
  if (reg)
    attention_norm_reg_backward(g, probs, a.lambda, e.attention_loss->beta,
                                p.attention_loss_weight, s.dE.data());
  return effective_map_backward(g, a.Q.data(), a.K.data(), a.lambda, probs, s.dE.data(), dQ, dK);
}

void ext_input_backward(const LayerPass& p, const ExtGradScratch& s, std::vector<float>& dx) {
  if (!p.model.config.ext.flow_gate) return;
  for (size_t i = 0; i < dx.size(); ++i) dx[i] += s.dx_in[i];
}

}  // namespace difftx
