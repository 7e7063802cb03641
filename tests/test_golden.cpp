// The engine against golden files written by an independent PyTorch implementation of the
// SPEC (tests/golden/make_golden.py): checkpoints written by someone else, logits and loss to
// 1e-4 and every gradient to 1e-3, relative to each tensor's largest value.
#include <gtest/gtest.h>

#include <string>

#include "core/files.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "io/tokens.h"
#include "model/transformer.h"
#include "test_util.h"

namespace difftx {
namespace {

class GoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenTest, LogitsLossAndGradientsMatchPyTorch) {
  const std::string dir = std::string(DIFFTX_SOURCE_DIR) + "/tests/golden/" + GetParam();
  const auto model = load_model(dir);
  const auto tokens = parse_token_list(read_file_text(dir + "/tokens.txt"), model->config.vocab_size);
  const int64_t T = static_cast<int64_t>(tokens.size());
  const auto expected = SafetensorsFile::read(dir + "/expected.safetensors");

  for (const AttentionKernel kernel : {AttentionKernel::kFlash, AttentionKernel::kReference}) {
    SCOPED_TRACE(kernel == AttentionKernel::kFlash ? "flash attention" : "reference attention");
    RunOptions opts;
    opts.attention = kernel;
    Activations acts;
    const auto targets = next_token_targets(tokens, 1, T);
    const double loss = forward(*model, tokens.data(), targets.data(), 1, T, acts, opts);
    AlignedFloats grads(model->layout.total);
    backward(*model, acts, grads.data());

    const auto ref_loss = expected.to_float(*expected.find("loss"));
    EXPECT_NEAR(loss, ref_loss[0], 1e-4 * std::abs(ref_loss[0]));
    const auto ref_logits = expected.to_float(*expected.find("logits"));
    ASSERT_EQ(ref_logits.size(), acts.logits.size());
    EXPECT_LT(test::max_rel_error(acts.logits.data(), ref_logits.data(), ref_logits.size()), 1e-4);

    int checked = 0;
    for (const auto& spec : model->layout.tensors) {
      const StTensor* ref = expected.find("grad." + spec.name);
      ASSERT_NE(ref, nullptr) << "golden file lacks grad." << spec.name;
      const auto g = expected.to_float(*ref);
      ASSERT_EQ(g.size(), spec.numel) << spec.name;
      EXPECT_LT(test::max_rel_error(grads.data() + spec.offset, g.data(), g.size()), 1e-3)
          << spec.name;
      ++checked;
    }
    EXPECT_EQ(checked + 2, static_cast<int>(expected.tensors().size()));
  }
}

INSTANTIATE_TEST_SUITE_P(PyTorchReference, GoldenTest,
                         ::testing::Values("diff_interleaved_affine", "diff_split_noaffine",
                                           "diff_gqa", "diff_split_gqa_tied", "llama_baseline",
                                           "diff_bf16_weights", "diff_f16_weights",
                                           "diff_no_groupnorm", "diff_lambda_init_const",
                                           "llama_groupnorm", "diffv2_rope_gptj",
                                           "diffv2_gqa_rope_half",
                                           "diffv2_gqa_rope_gptj_tied", "ext_token_enhancer",
                                           "ext_noise_reduction", "ext_flow_gate",
                                           "ext_attention_loss", "ext_all_llama",
                                           "ext_flow_gate_v2"));

// Hugging Face checkpoint forms (SPEC section 2): rope_scaling llama3 / linear in transformers
// 4.x configs, rope_parameters in 5.x ones, sharded files with a tied head and a stray
// rotary_emb.inv_freq, for both model types.
INSTANTIATE_TEST_SUITE_P(HuggingFaceForms, GoldenTest,
                         ::testing::Values("diff_hf4_llama3_sharded_tied", "diff_hf5_linear",
                                           "llama_hf4_linear_sharded_tied", "llama_hf5_llama3"));

}  // namespace
}  // namespace difftx
