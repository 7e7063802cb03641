#include <omp.h>

#include <cstdio>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/options.h"
#include "core/error.h"
#include "model/config.h"
#include "perf/throughput.h"

namespace difftx::cli {

Runner add_bench(CLI::App& app) {
  struct Opts {
    std::string config, precision = "fp32";
    int64_t seq = 512, batch = 4, steps = 5, decode_tokens = 32;
    int threads = 0;
    uint64_t seed = 0;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  app.add_option("--config", o->config, "config.json of the model to time")->required();
  add_seq(app, o->seq, "sequence length T")->capture_default_str();
  add_batch(app, o->batch, "batch size B");
  app.add_option("--steps", o->steps, "timed steps (median reported; one warm-up step first)")
      ->check(integer_in(1, 100000))->capture_default_str();
  app.add_option("--decode-tokens", o->decode_tokens, "tokens decoded at batch 1")
      ->check(integer_in(0, int64_t{1} << 20))->capture_default_str();
  app.add_option("--precision", o->precision, "matrix products: fp32 or bf16 (f32 accumulate)")
      ->check(CLI::IsMember({"fp32", "bf16"}))
      ->capture_default_str();
  add_threads(app, o->threads);
  add_seed(app, o->seed, "seed for weights and tokens");
  app.add_flag("--json", o->json, "print one JSON object on stdout");
  return [o]() {
    const Config config = load_config(o->config, LayoutDefaults::kOfficial);
    check(o->threads >= 0 && o->threads <= 1024, "--threads must be in [1, 1024]");
    ThroughputOptions opts;
    opts.seq = o->seq;
    opts.batch = o->batch;
    opts.steps = o->steps;
    opts.decode_tokens = o->decode_tokens;
    opts.precision = o->precision == "bf16" ? Precision::kBF16 : Precision::kFP32;
    opts.seed = o->seed;
    validate(opts, config);  // before the threads are set up: a bad flag fails at once
    if (o->threads > 0) omp_set_num_threads(o->threads);
    const ThroughputReport r = measure_throughput(config, opts);
    nlohmann::json j{{"model_type", model_type_name(config.model_type)},
                     {"parameters", r.parameters},
                     {"seq", o->seq},
                     {"batch", o->batch},
                     {"precision", o->precision},
                     {"threads", omp_get_max_threads()},
                     {"train_tokens_per_s", r.train_tokens_per_s},
                     {"train_step_s", r.train_step_s},
                     {"train_gflops", r.train_gflops},
                     {"prefill_tokens_per_s", r.prefill_tokens_per_s},
                     {"prefill_gflops", r.prefill_gflops},
                     {"decode_tokens_per_s", r.decode_tokens_per_s},
                     {"decode_context", r.decode_context},
                     {"decode_bound_tokens_per_s", r.decode_bound_tokens_per_s},
                     {"decode_share_of_bound", r.decode_bound_tokens_per_s > 0
                                                   ? r.decode_tokens_per_s / r.decode_bound_tokens_per_s
                                                   : 0.0},
                     {"memory_bandwidth_gbs", r.memory_bandwidth_gbs},
                     {"matmul_ceiling_gflops", r.matmul_ceiling_gflops},
                     {"mfu", r.mfu},
                     {"peak_rss_mb", r.peak_rss_mb}};
    if (o->json) {
      std::printf("%s\n", j.dump().c_str());  // main() checks that stdout took it
    } else {
      for (auto it = j.begin(); it != j.end(); ++it)
        std::printf("%-26s %s\n", it.key().c_str(), it.value().dump().c_str());
    }
    return 0;
  };
}

}  // namespace difftx::cli
