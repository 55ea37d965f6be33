#include "compiler/quant/calibrate.h"

#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>

#include "compiler/quant/calibration_set.h"
#include "compiler/quant/graph_runner.h"
#include "runtime/core/file_io.h"
#include "runtime/core/text.h"
#include "runtime/plan/byte_io.h"

namespace kiln {
namespace {

void progress(std::FILE* f, const char* phase, size_t done, size_t total) {
  if (!f) return;
  // A bar redrawn in place on a terminal; one line per pass in a log.
  if (!::isatty(::fileno(f)) && done != total) return;
  const int width = 30;
  const int filled = total ? static_cast<int>(width * done / total) : width;
  std::fprintf(f, "\rcalibrating (%s) [%.*s%.*s] %zu/%zu", phase, filled, "##############################",
               width - filled, "..............................", done, total);
  if (done == total) std::fprintf(f, "\n");
  std::fflush(f);
}

// Adds x's values per channel of axis 1 to *sums ([N, C, ...]: each channel's N x spatial
// values) and their count per channel to *count.
void add_channel_sums(const HostTensor& x, std::vector<double>* sums, int64_t* count) {
  const Shape& s = x.shape();
  const int64_t c = s[1];
  if (c <= 0) return;
  int64_t inner = 1;
  for (size_t d = 2; d < s.size(); ++d) inner *= s[d];
  sums->resize(static_cast<size_t>(c), 0.0);
  const float* p = x.as<float>();
  for (int64_t n = 0; n < s[0]; ++n)
    for (int64_t ch = 0; ch < c; ++ch) {
      double t = 0;
      for (int64_t i = 0; i < inner; ++i) t += p[(n * c + ch) * inner + i];
      (*sums)[static_cast<size_t>(ch)] += t;
    }
  *count += s[0] * inner;
}

}  // namespace

Status calibrate_ranges(ir::Graph& g, const CalibrationRequest& request, const BuildOptions& opts,
                        std::FILE* report, std::map<std::string, TensorRange>* out, bool* from_cache,
                        std::set<std::string>* kept) {
  const std::vector<std::string>& tensors = request.tensors;
  const std::set<std::string>& per_channel = request.per_channel;
  const std::map<std::string, QuantGrid>& grids = request.grids;
  if (from_cache) *from_cache = false;
  CalibratorSpec spec;
  KILN_TRY(parse_calibrator(opts.calibrator, &spec));
  if (!opts.calib_cache.empty()) {
    std::ifstream probe(opts.calib_cache);
    if (probe) {
      std::map<std::string, TensorRange> cached;
      std::set<std::string> cached_kept;
      KILN_TRY(read_calibration_cache(opts.calib_cache, opts.calibrator, &cached, &cached_kept));
      bool complete = true;
      for (const std::string& t : tensors)
        complete &= cached.count(t) != 0 && (!per_channel.count(t) || !cached[t].channel_amax.empty());
      if (complete) {
        if (report) std::fprintf(report, "calibration: %zu ranges from cache '%s'\n", cached.size(), opts.calib_cache.c_str());
        *out = std::move(cached);
        if (from_cache) *from_cache = true;
        if (kept) *kept = std::move(cached_kept);
        return Status::ok();
      }
      if (report) std::fprintf(report, "calibration: cache '%s' lacks tensors of this graph; recalibrating\n",
                               opts.calib_cache.c_str());
    }
  }
  if (!opts.has_calibration_data()) return invalid_argument("--precision int8 needs calibration data: --calib DIR (or a --calib-cache)");

  std::vector<CalibrationInput> inputs;
  for (const ir::Value* v : g.inputs) inputs.push_back({v->name, v->dtype, v->shape});
  std::vector<CalibrationSample> samples;
  KILN_TRY(calibration_samples(opts.calib_dir, opts.calib_samples.get(), inputs, &samples));

  // An FP32 CPU plan of the graph whose outputs are the tensors to calibrate.
  GraphRunner runner;
  KILN_TRY(runner.create(g, tensors).with_context("building the calibration plan"));
  const std::vector<HostTensor>& outs = runner.outs;

  // Two passes, as TensorRT does: the range first, then histograms over it.
  std::vector<AbsHistogram> hist(tensors.size());
  std::vector<std::vector<double>> channel_amax(tensors.size());
  std::vector<std::vector<double>> channel_sum(tensors.size());
  std::vector<int64_t> channel_count(tensors.size(), 0);
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t s = 0; s < samples.size(); ++s) {
      KILN_TRY(runner.run(samples[s]).with_context("calibration sample " + std::to_string(s + 1)));
      for (size_t i = 0; i < tensors.size(); ++i) {
        const HostTensor& o = outs[i];
        if (o.dtype() != DType::kFloat32) continue;
        if (pass == 0) {
          hist[i].observe_range(o.as<float>(), static_cast<size_t>(o.numel()));
          if (per_channel.count(tensors[i]) && !o.shape().empty() && o.shape().back() > 0) {
            const int64_t k = o.shape().back();
            std::vector<double>& m = channel_amax[i];
            m.resize(static_cast<size_t>(k), 0.0);
            const float* x = o.as<float>();
            for (int64_t j = 0; j < o.numel(); ++j)
              m[j % k] = std::max(m[j % k], static_cast<double>(std::fabs(x[j])));
          }
          if (request.channel_means.count(tensors[i]) && o.shape().size() >= 2)
            add_channel_sums(o, &channel_sum[i], &channel_count[i]);
        } else hist[i].add(o.as<float>(), static_cast<size_t>(o.numel()));
      }
      progress(report, pass == 0 ? "ranges" : "histograms", s + 1, samples.size());
    }
  }
  out->clear();
  const bool clips = spec.kind == CalibratorSpec::Kind::kEntropy || spec.kind == CalibratorSpec::Kind::kPercentile;
  std::vector<std::string> replaced;
  if (report) std::fprintf(report, "%-40s %12s %12s %9s %10s\n", "tensor", "max |x|", "range", "clipped", "error");
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto g_it = grids.find(tensors[i]);
    QuantGrid grid = g_it == grids.end() ? QuantGrid::kInt8 : g_it->second;
    TensorRange r;
    r.non_negative = hist[i].total() > 0 && hist[i].min_value() >= 0;
    if (grid == QuantGrid::kInt8 && r.non_negative) grid = QuantGrid::kUnsignedInt8;
    r.amax = calibrate_amax(hist[i], spec, grid);
    r.mse_amax = calibrate_amax(hist[i], {CalibratorSpec::Kind::kMse}, grid);
    double err = quantization_error(hist[i], r.amax, grid);
    // The guard: a clipping calibrator's range whose error is far out of line with the best
    // range for the same values (a spike the KL divergence misjudges, say) is replaced.
    const double mse_err = quantization_error(hist[i], r.mse_amax, grid);
    if (clips && err > kNegligibleError && err > kFarWorseError * mse_err) {
      char line[320];
      std::snprintf(line, sizeof line,
                    "calibration: %s: %s range %.4g clips %.2f%% (error %.2g, mse's %.2g); using the mse range %.4g",
                    tensors[i].c_str(), opts.calibrator.c_str(), r.amax, 100.0 * hist[i].clipped_share(r.amax), err,
                    mse_err, r.mse_amax);
      replaced.push_back(line);
      r.amax = r.mse_amax;
      err = mse_err;
    }
    r.clipped_share = hist[i].clipped_share(r.amax);
    r.channel_amax = channel_amax[i];
    for (double sum : channel_sum[i]) r.channel_mean.push_back(sum / static_cast<double>(channel_count[i]));
    (*out)[tensors[i]] = r;
    if (report)
      std::fprintf(report, "%-40s %12.5g %12.5g %8.4f%% %10.2g\n", tensors[i].c_str(), hist[i].max_abs(), r.amax,
                   100.0 * r.clipped_share, err);
  }
  if (report)
    for (const std::string& line : replaced) std::fprintf(report, "%s\n", line.c_str());
  if (!opts.calib_cache.empty()) KILN_TRY(write_calibration_cache(opts.calib_cache, opts.calibrator, *out));
  return Status::ok();
}

Status write_calibration_cache(const std::string& path, const std::string& calibrator,
                               const std::map<std::string, TensorRange>& ranges, const std::set<std::string>& kept) {
  std::ostringstream body;
  bool any_unsigned = false, any_means = false;
  for (const auto& [name, r] : ranges) {
    any_unsigned |= r.non_negative;
    any_means |= !r.channel_mean.empty();
  }
  body << "kiln-calibration-cache " << (!kept.empty() ? 5 : any_means ? 4 : any_unsigned ? 3 : 2) << "\ncalibrator "
       << calibrator << "\n";
  char buf[96];
  for (const auto& [name, r] : ranges) {
    std::snprintf(buf, sizeof buf, "%a %a ", r.amax, r.clipped_share);
    body << buf << name << "\n";
  }
  // "WORD K V1,...,VK NAME" for every tensor with per-channel values of that kind.
  auto channel_lines = [&](const char* word, std::vector<double> TensorRange::*values) {
    for (const auto& [name, r] : ranges) {
      const std::vector<double>& v = r.*values;
      if (v.empty()) continue;
      body << word << " " << v.size() << " ";
      for (size_t c = 0; c < v.size(); ++c) {
        std::snprintf(buf, sizeof buf, c ? ",%a" : "%a", v[c]);
        body << buf;
      }
      body << " " << name << "\n";
    }
  };
  channel_lines("channels", &TensorRange::channel_amax);
  for (const auto& [name, r] : ranges)
    if (r.non_negative) body << "unsigned " << name << "\n";
  channel_lines("means", &TensorRange::channel_mean);
  for (const std::string& node : kept) body << "keep " << node << "\n";
  const std::string text = body.str();
  std::ofstream f(path);
  if (!f) return io_error("cannot write calibration cache '" + path + "': " + last_os_error());
  f << text << "crc32 " << crc32(reinterpret_cast<const uint8_t*>(text.data()), text.size()) << "\n";
  if (!f) return io_error("error writing calibration cache '" + path + "': " + last_os_error());
  return Status::ok();
}

Status read_calibration_cache(const std::string& path, const std::string& calibrator,
                              std::map<std::string, TensorRange>* ranges, std::set<std::string>* kept) {
  // A cache is a few text lines per tensor: 256 MiB is far beyond any real one.
  std::string all;
  KILN_TRY(read_regular_file(path, "calibration cache", uint64_t{1} << 28, &all));
  const auto bad = [&](const std::string& why) {
    return invalid_argument("calibration cache '" + path + "' is corrupted (" + clip_text(why, 200) +
                            "); delete it to recalibrate");
  };
  const size_t tail = all.rfind("crc32 ");
  if (tail == std::string::npos) return bad("no checksum line");
  const std::string text = all.substr(0, tail);
  if (std::to_string(crc32(reinterpret_cast<const uint8_t*>(text.data()), text.size())) + "\n" != all.substr(tail + 6))
    return bad("checksum mismatch");
  std::istringstream lines(text);
  std::string line;
  if (!std::getline(lines, line) || line.size() != 24 || line.rfind("kiln-calibration-cache ", 0) != 0 ||
      line.back() < '1' || line.back() > '5')
    return bad("unknown header");
  const int version = line.back() - '0';
  const bool v2 = version >= 2, v3 = version >= 3, v4 = version >= 4, v5 = version >= 5;
  if (!std::getline(lines, line) || line.rfind("calibrator ", 0) != 0) return bad("no calibrator line");
  if (line.substr(11) != calibrator)
    return invalid_argument("calibration cache '" + path + "' was made with calibrator " + clip_text(line.substr(11)) +
                            ", not " + calibrator + "; delete it or pass --calibrator " + clip_text(line.substr(11)));
  ranges->clear();
  if (kept) kept->clear();
  std::vector<std::pair<std::string, std::vector<double>>> channels, means;
  std::vector<std::string> unsigned_names;
  // "WORD K V1,...,VK NAME" (channel maxima: >= 0; means: finite) into *out.
  auto channel_line = [&](std::istringstream& ls, const char* one, const char* many, bool signed_values,
                          std::vector<std::pair<std::string, std::vector<double>>>* out) -> Status {
    std::string word, count, list, name;
    ls >> word >> count >> list;
    std::getline(ls, name);
    if (name.size() < 2) return bad(std::string("a ") + word + " line without a tensor name");
    name = name.substr(1);
    char* end = nullptr;
    const long k = std::strtol(count.c_str(), &end, 10);
    if (*end || k <= 0) return bad("bad channel count for '" + name + "'");
    std::vector<double> m;
    const char* p = list.c_str();
    while (true) {
      const double v = std::strtod(p, &end);
      if (end == p || !std::isfinite(v) || (!signed_values && v < 0))
        return bad(std::string("bad channel ") + one + " for '" + name + "'");
      m.push_back(v);
      if (*end == 0) break;
      if (*end != ',') return bad("bad channel list for '" + name + "'");
      p = end + 1;
    }
    if (static_cast<long>(m.size()) != k)
      return bad("'" + name + "' has " + std::to_string(m.size()) + " channel " + many + ", the line says " + count);
    out->push_back({name, std::move(m)});
    return Status::ok();
  };
  while (std::getline(lines, line)) {
    std::istringstream ls(line);
    if (v3 && line.rfind("unsigned ", 0) == 0) {
      if (line.size() <= 9) return bad("an unsigned line without a tensor name");
      unsigned_names.push_back(line.substr(9));
      continue;
    }
    if (v5 && line.rfind("keep ", 0) == 0) {
      if (line.size() <= 5) return bad("a keep line without a node name");
      if (kept) kept->insert(line.substr(5));
      continue;
    }
    if (v2 && line.rfind("channels ", 0) == 0) {
      KILN_TRY(channel_line(ls, "maximum", "maxima", false, &channels));
      continue;
    }
    if (v4 && line.rfind("means ", 0) == 0) {
      KILN_TRY(channel_line(ls, "mean", "means", true, &means));
      continue;
    }
    std::string a, c;
    ls >> a >> c;
    std::string name;
    std::getline(ls, name);
    if (name.size() < 2) return bad("a line without a tensor name");
    TensorRange r;
    char* end = nullptr;
    r.amax = std::strtod(a.c_str(), &end);
    if (*end || !(r.amax >= 0)) return bad("bad range for '" + name.substr(1) + "'");
    r.clipped_share = std::strtod(c.c_str(), &end);
    if (*end) return bad("bad clipped share for '" + name.substr(1) + "'");
    (*ranges)[name.substr(1)] = r;
  }
  for (const std::string& name : unsigned_names) {
    auto it = ranges->find(name);
    if (it == ranges->end()) return bad("'" + name + "' is marked unsigned but has no range line");
    it->second.non_negative = true;
  }
  for (auto& [name, m] : channels) {
    auto it = ranges->find(name);
    if (it == ranges->end()) return bad("channel maxima for '" + name + "', which has no range line");
    it->second.channel_amax = std::move(m);
  }
  for (auto& [name, m] : means) {
    auto it = ranges->find(name);
    if (it == ranges->end()) return bad("channel means for '" + name + "', which has no range line");
    it->second.channel_mean = std::move(m);
  }
  return Status::ok();
}

}  // namespace kiln
