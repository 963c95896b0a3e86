// `tunelab formats`: the numeric format table (bits, range, precision), as text or JSON, and
// `tunelab formats --encode FORMAT VALUE...`: each value's nearest representable value, its bits and the error.
// The table and codecs are engine/formats (format_table.hpp); docs/formats.md explains the formats.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common.hpp"
#include "core/error.hpp"
#include "formats/quantizer.hpp"

namespace tl::cli {

namespace {

struct FormatsOptions {
    bool json = false;
    std::string encode;               // a format name: encode the values
    std::vector<std::string> values;  // as typed, parsed here so a bad one gets a clear message
};

const char* kind_name(FormatKind k) {
    static const char* kNames[] = {"float", "integer", "codebook", "palette"};
    return kNames[static_cast<int>(k)];
}

double parse_value(const std::string& s) {
    char* end = nullptr;
    const double v = std::strtod(s.c_str(), &end);
    if (s.empty() || end != s.c_str() + s.size())
        throw Error("[formats] '" + s + "' is not a number; give decimal values such as 0.1, -3e-5, inf or nan");
    return v;
}

nlohmann::json facts_json(const FormatInfo& f) {
    const FormatFacts facts = format_facts(f);
    nlohmann::json j{{"name", f.name}, {"bits", f.bits}, {"kind", kind_name(f.kind)}, {"note", f.note},
                     {"scaled", f.scaling == Scaling::scaled}, {"block", f.block}};
    if (f.kind == FormatKind::floating) {
        static const char* kOverflow[] = {"inf", "nan", "saturate"};
        j.update({{"max", facts.max}, {"min_normal", facts.min_normal}, {"min_subnormal", facts.min_subnormal},
                  {"epsilon", facts.epsilon}, {"exponent_bits", f.fp.exp_bits}, {"mantissa_bits", f.fp.man_bits},
                  {"bias", f.fp.bias}, {"has_inf", facts.has_inf}, {"has_nan", facts.has_nan},
                  {"overflow", kOverflow[static_cast<int>(f.overflow)]}});
    } else if (f.kind == FormatKind::integer) {
        j.update({{"min", facts.lowest}, {"max", facts.max}});
    }
    if (f.kind == FormatKind::codebook || !f.codebook.empty())
        j["codebook"] = std::vector<double>(f.codebook.begin(), f.codebook.end());
    if (f.kind == FormatKind::palette) {
        j["codebook"] = nlohmann::json::array();  // fitted per tensor
        j["codebook_size"] = 1 << f.bits;
    }
    return j;
}

void print_table(bool is_json) {
    if (is_json) {
        nlohmann::json arr = nlohmann::json::array();
        for (const FormatInfo& f : all_formats()) arr.push_back(facts_json(f));
        std::printf("%s\n", arr.dump(2).c_str());
        return;
    }
    std::printf("%-9s %4s %-8s %-12s %-12s %-13s %-11s %s\n", "format", "bits", "kind", "max", "min normal",
                "min subnormal", "epsilon", "notes");
    for (const FormatInfo& f : all_formats()) {
        const FormatFacts x = format_facts(f);
        if (f.kind == FormatKind::floating)
            std::printf("%-9s %4d %-8s %-12.6g %-12.6g %-13.6g %-11.6g %s\n", std::string(f.name).c_str(), f.bits,
                        kind_name(f.kind), x.max, x.min_normal, x.min_subnormal, x.epsilon, std::string(f.note).c_str());
        else
            std::printf("%-9s %4d %-8s %-51s %s\n", std::string(f.name).c_str(), f.bits, kind_name(f.kind),
                        f.kind == FormatKind::palette
                            ? "(k-means code book per tensor)"
                            : ("values " + std::to_string(int(x.lowest)) + " .. " + std::to_string(int(x.max)) +
                               (f.kind == FormatKind::codebook ? " (16 entries)" : ""))
                                  .c_str(),
                        std::string(f.note).c_str());
    }
}

struct EncodedValue {
    double input, value;
    std::uint32_t code;
};

// Palette formats have no fixed table: fit one to the values given (as the quantizer would for a tensor).
std::vector<EncodedValue> encode_values(const FormatInfo& f, const std::vector<double>& xs, std::vector<float>& book) {
    std::vector<EncodedValue> out;
    if (f.kind == FormatKind::palette) {
        const std::vector<float> xf(xs.begin(), xs.end());
        QuantScheme s;
        s.format = f.id;
        const QuantizedTensor q = quantize(xf, 1, std::int64_t(xf.size()), s);
        book = q.codebooks;
        for (const double x : xs) {
            const std::uint32_t c = codebook_encode(book, x);
            out.push_back({x, book[c], c});
        }
        return out;
    }
    for (const double x : xs) {
        const std::uint32_t c = format_encode(f, x);
        out.push_back({x, format_decode(f, c), c});
    }
    return out;
}

void run_encode(const FormatsOptions& o) {
    const FormatInfo& f = find_format(o.encode);
    if (o.values.empty())
        throw Error("[formats] --encode " + o.encode + " needs values after it, e.g. `tunelab formats --encode " +
                    o.encode + " 0.1 1.3 -7`");
    std::vector<double> xs;
    for (const std::string& s : o.values) xs.push_back(parse_value(s));
    std::vector<float> book;
    const std::vector<EncodedValue> enc = encode_values(f, xs, book);
    if (o.json) {
        nlohmann::json arr = nlohmann::json::array();
        for (const EncodedValue& e : enc) {
            nlohmann::json j{{"format", f.name}, {"input", e.input}, {"value", e.value}, {"code", e.code},
                             {"bits", format_bits(f, e.code)}, {"error", e.value - e.input}};
            if (e.input != 0 && std::isfinite(e.value)) j["relative_error"] = (e.value - e.input) / std::fabs(e.input);
            arr.push_back(j);
        }
        std::printf("%s\n", arr.dump(2).c_str());
        return;
    }
    std::printf("%s: %s\n", std::string(f.name).c_str(), std::string(f.note).c_str());
    if (!book.empty()) {
        std::printf("fitted code book (fp16 entries):");
        for (const float v : book) std::printf(" %.6g", v);
        std::printf("\n");
    }
    std::printf("%-16s %-16s %-14s %-8s %-14s %s\n", "value", "nearest", "bits", "code", "error", "rel. error");
    for (const EncodedValue& e : enc) {
        const double err = e.value - e.input;
        char rel[32] = "-";
        if (e.input != 0 && std::isfinite(err)) std::snprintf(rel, sizeof rel, "%+.3g%%", 100 * err / std::fabs(e.input));
        if (std::isfinite(e.input) && !std::isfinite(e.value))
            std::snprintf(rel, sizeof rel, "overflow: %s", std::isnan(e.value) ? "NaN" : "inf");
        std::printf("%-16.9g %-16.9g %-14s 0x%-6x %-+14.6g %s\n", e.input, e.value, format_bits(f, e.code).c_str(),
                    e.code, err, rel);
    }
}

}  // namespace

void add_formats_command(CLI::App& app) {
    auto o = std::make_shared<FormatsOptions>();
    CLI::App* cmd = app.add_subcommand(
        "formats", "The numeric formats (fp32 ... fp4, int8/int4, ternary, nf4, palettes): range and precision; "
                   "--encode FORMAT VALUE... rounds values into one");
    cmd->add_flag("--json", o->json, "print JSON (an array of objects) instead of a table");
    cmd->add_option("--encode", o->encode, "format to round the VALUEs into (see `tunelab formats`)");
    cmd->add_option("values", o->values, "values to encode (with --encode)");
    cmd->callback([o] {
        if (!o->encode.empty()) return run_encode(*o);
        if (!o->values.empty())
            throw Error("[formats] values given without --encode FORMAT; e.g. `tunelab formats --encode bf16 0.1`");
        print_table(o->json);
    });
}

}  // namespace tl::cli
