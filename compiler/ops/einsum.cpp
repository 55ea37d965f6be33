// The einsum family: Einsum (opset 12). The equation is parsed here, once, into numbered labels
// so the kernels never parse text: every distinct letter and every ellipsis dim becomes a label;
// the output's labels come first, in output order, then the summed ones.
//
// Runtime form (runtime/backends/*/einsum.cpp): the inputs; attrs
//   labels      total number of labels
//   out_labels  how many of them are the output's (the output's dims, in order)
//   in_ranks    each input's rank
//   in_labels   each input's dims' labels, concatenated (a label repeated within one input
//               takes its diagonal; a dim of size 1 under an ellipsis label broadcasts)
#include <algorithm>
#include <map>
#include <string>

#include "compiler/ops/op_schema.h"

namespace kiln {
namespace {

// One side of the equation: letters, with the ellipsis marked by '.' at its position.
Status parse_term(InferContext& c, const std::string& t, std::string* out) {
  out->clear();
  bool ellipsis = false;
  for (size_t i = 0; i < t.size(); ++i) {
    const char ch = t[i];
    if (ch == '.') {
      if (ellipsis || t.compare(i, 3, "...") != 0) return c.fail("bad ellipsis in equation term '" + t + "'");
      ellipsis = true;
      out->push_back('.');
      i += 2;
    } else if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')) {
      out->push_back(ch);
    } else {
      return c.fail(std::string("equation term '") + t + "' has the character '" + ch + "'");
    }
  }
  return Status::ok();
}

Status infer_einsum(InferContext& c) {
  const size_t n = c.num_inputs();
  KILN_TRY(c.require_inputs(1, 64));
  KILN_TRY(c.require_dtype(0, {DType::kFloat32, DType::kFloat16, DType::kFloat64, DType::kInt32, DType::kInt64}));
  for (size_t i = 1; i < n; ++i)
    if (c.input_dtype(i) != c.input_dtype(0))
      return c.fail("input " + std::to_string(i) + " has dtype " + dtype_name(c.input_dtype(i)) + ", input 0 " +
                    dtype_name(c.input_dtype(0)) + " (they must match)");
  if (!c.attrs().has("equation")) return c.fail("attribute equation is required");
  std::string eq;
  for (char ch : c.attrs().get_string("equation", "")) if (ch != ' ') eq.push_back(ch);
  const size_t arrow = eq.find("->");
  const std::string lhs = eq.substr(0, arrow);
  std::vector<std::string> terms;
  for (size_t start = 0;;) {
    const size_t comma = lhs.find(',', start);
    std::string t;
    KILN_TRY(parse_term(c, lhs.substr(start, comma == std::string::npos ? std::string::npos : comma - start), &t));
    terms.push_back(t);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (terms.size() != n)
    return c.fail("equation '" + eq + "' has " + std::to_string(terms.size()) + " input terms for " + std::to_string(n) + " inputs");

  // Ellipsis dims of all inputs broadcast together, aligned right: E of them in all.
  std::vector<int64_t> ell_rank(n, 0);
  int64_t E = 0;
  std::map<char, int64_t> letter_size, letter_count;
  for (size_t i = 0; i < n; ++i) {
    const Shape& s = c.input_shape(i);
    const int64_t letters = static_cast<int64_t>(terms[i].size()) - (terms[i].find('.') != std::string::npos ? 1 : 0);
    const bool has_ell = terms[i].find('.') != std::string::npos;
    if (has_ell ? static_cast<int64_t>(s.size()) < letters : static_cast<int64_t>(s.size()) != letters)
      return c.fail("input " + std::to_string(i) + " of shape " + shape_str(s) + " does not fit term '" + terms[i] + "'");
    ell_rank[i] = static_cast<int64_t>(s.size()) - letters;
    E = std::max(E, ell_rank[i]);
  }
  std::vector<int64_t> ell_size(static_cast<size_t>(E), 1);
  for (size_t i = 0; i < n; ++i) {
    const Shape& s = c.input_shape(i);
    size_t d = 0;
    for (char ch : terms[i]) {
      if (ch == '.') {
        for (int64_t e = 0; e < ell_rank[i]; ++e, ++d) {
          int64_t& sz = ell_size[static_cast<size_t>(E - ell_rank[i] + e)];
          if (s[d] != 1 && sz != 1 && s[d] != sz)
            return c.fail("ellipsis dims of shape " + shape_str(s) + " do not broadcast with the other inputs'");
          if (s[d] != 1) sz = s[d];
        }
        continue;
      }
      auto it = letter_size.find(ch);
      if (it != letter_size.end() && it->second != s[d])
        return c.fail(std::string("label '") + ch + "' has size " + std::to_string(it->second) + " and " + std::to_string(s[d]));
      letter_size[ch] = s[d];
      ++letter_count[ch];
      ++d;
    }
  }

  // The output term: given, or implicit (the ellipsis, then the letters used once, sorted).
  std::string out_term;
  if (arrow != std::string::npos) {
    KILN_TRY(parse_term(c, eq.substr(arrow + 2), &out_term));
    for (char ch : out_term) {
      if (ch == '.') continue;
      if (!letter_size.count(ch)) return c.fail(std::string("output label '") + ch + "' is in no input");
      if (std::count(out_term.begin(), out_term.end(), ch) > 1) return c.fail(std::string("output label '") + ch + "' repeats");
    }
    // numpy.einsum refuses this too (the ellipsis dims would have nowhere to go).
    if (E > 0 && out_term.find('.') == std::string::npos)
      return c.fail("the inputs have ellipsis dims but the output term '" + eq.substr(arrow + 2) + "' has no '...'");
  } else {
    if (E > 0) out_term.push_back('.');
    for (const auto& [ch, count] : letter_count)
      if (count == 1) out_term.push_back(ch);
  }

  // Number the labels: output first, then the summed letters.
  std::map<char, int64_t> label;
  std::vector<int64_t> ell_label(static_cast<size_t>(E), -1);
  int64_t next = 0;
  Shape out_shape;
  for (char ch : out_term) {
    if (ch == '.') {
      for (int64_t e = 0; e < E; ++e) {
        ell_label[static_cast<size_t>(e)] = next++;
        out_shape.push_back(ell_size[static_cast<size_t>(e)]);
      }
    } else {
      label[ch] = next++;
      out_shape.push_back(letter_size[ch]);
    }
  }
  const int64_t out_labels = next;
  for (const auto& [ch, size] : letter_size)
    if (!label.count(ch)) label[ch] = next++;
  std::vector<int64_t> in_ranks, in_labels;
  for (size_t i = 0; i < n; ++i) {
    in_ranks.push_back(static_cast<int64_t>(c.input_shape(i).size()));
    for (char ch : terms[i]) {
      if (ch != '.') {
        in_labels.push_back(label[ch]);
        continue;
      }
      for (int64_t e = 0; e < ell_rank[i]; ++e) in_labels.push_back(ell_label[static_cast<size_t>(E - ell_rank[i] + e)]);
    }
  }
  Attributes a;
  a.set("labels", next);
  a.set("out_labels", out_labels);
  a.set("in_ranks", in_ranks);
  a.set("in_labels", in_labels);
  c.mutable_attrs() = a;
  c.set_output(0, c.input_dtype(0), out_shape);
  return Status::ok();
}

}  // namespace

void register_einsum_schemas(SchemaRegistry& r) { r.add({"Einsum", {12}, infer_einsum}).fp16(Fp16::kCompute); }

}  // namespace kiln
