// Result look-ups and the JSON form. The JSON reader validates every field it uses before trusting it: results
// come back from the on-disk cache, which a user (or a crashed run of an older version) may have left damaged.
#include "trace/result.hpp"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/error.hpp"

namespace tl {

using nlohmann::json;

namespace {

template <class T>
const T* find_named(const std::vector<T>& v, const std::string& name) {
    auto it = std::find_if(v.begin(), v.end(), [&](const T& e) { return e.name == name; });
    return it == v.end() ? nullptr : &*it;
}

json cell_json(const Cell& c) {
    if (const double* d = std::get_if<double>(&c)) return *d;
    return std::get<std::string>(c);
}

[[noreturn]] void bad(const std::string& what) {
    throw Error("[result] malformed result JSON: " + what + "; delete the cached file (or run with --no-cache)");
}

const json& field(const json& j, const char* key, json::value_t type, const std::string& where) {
    if (!j.is_object() || !j.contains(key)) bad(where + " lacks '" + key + "'");
    const json& f = j.at(key);
    const bool wants_number = type == json::value_t::number_float || type == json::value_t::number_unsigned ||
                              type == json::value_t::number_integer;
    const bool ok = wants_number ? f.is_number() : f.type() == type;
    if (!ok) bad(where + "." + key + " has the wrong type");
    return f;
}

std::string str(const json& j, const char* key, const std::string& where) {
    return field(j, key, json::value_t::string, where).get<std::string>();
}

std::vector<double> numbers(const json& j, const char* key, const std::string& where) {
    const json& a = field(j, key, json::value_t::array, where);
    std::vector<double> out;
    out.reserve(a.size());
    for (const json& v : a) {
        if (v.is_number()) out.push_back(v.get<double>());
        else if (v.is_null()) out.push_back(std::numeric_limits<double>::quiet_NaN());  // JSON has no NaN
        else bad(where + "." + key + " holds a non-number");
    }
    return out;
}

std::vector<std::string> strings(const json& j, const char* key, const std::string& where) {
    std::vector<std::string> out;
    for (const json& v : field(j, key, json::value_t::array, where)) {
        if (!v.is_string()) bad(where + "." + key + " holds a non-string");
        out.push_back(v.get<std::string>());
    }
    return out;
}

const json& array_of(const json& j, const char* key) { return field(j, key, json::value_t::array, "result"); }

}  // namespace

const Scalar* Result::find_scalar(const std::string& n) const { return find_named(scalars, n); }
const Series* Result::find_series(const std::string& n) const { return find_named(series, n); }
const Table* Result::find_table(const std::string& n) const { return find_named(tables, n); }
const Matrix* Result::find_matrix(const std::string& n) const { return find_named(matrices, n); }
const Histogram* Result::find_histogram(const std::string& n) const { return find_named(histograms, n); }
const Text* Result::find_text(const std::string& n) const { return find_named(texts, n); }

double Result::scalar_or(const std::string& name, double fallback) const {
    const Scalar* s = find_scalar(name);
    return s ? s->value : fallback;
}

Series& Result::series_named(const std::string& name, const std::string& x_label) {
    for (Series& s : series)
        if (s.name == name) return s;
    series.push_back({name, x_label, name, {}, {}});
    return series.back();
}

std::string cell_text(const Cell& c, int precision) {
    if (const std::string* s = std::get_if<std::string>(&c)) return *s;
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*g", precision, std::get<double>(c));
    return buf;
}

std::string to_json(const Result& r) {
    json j;
    j["experiment"] = r.experiment;
    j["args"] = json::object();
    for (const auto& [k, v] : r.args) j["args"][k] = v;
    j["provenance"] = {{"engine_version", r.provenance.engine_version},
                       {"machine", r.provenance.machine},
                       {"created_utc", r.provenance.created_utc},
                       {"seconds", r.provenance.seconds}};
    j["scalars"] = json::array();
    for (const Scalar& s : r.scalars) j["scalars"].push_back({{"name", s.name}, {"value", s.value}, {"unit", s.unit}});
    j["series"] = json::array();
    for (const Series& s : r.series)
        j["series"].push_back(
            {{"name", s.name}, {"x_label", s.x_label}, {"y_label", s.y_label}, {"x", s.x}, {"y", s.y}});
    j["tables"] = json::array();
    for (const Table& t : r.tables) {
        json rows = json::array();
        for (const auto& row : t.rows) {
            json jr = json::array();
            for (const Cell& c : row) jr.push_back(cell_json(c));
            rows.push_back(jr);
        }
        j["tables"].push_back({{"name", t.name}, {"columns", t.columns}, {"rows", rows}});
    }
    j["matrices"] = json::array();
    for (const Matrix& m : r.matrices)
        j["matrices"].push_back({{"name", m.name}, {"rows", m.rows}, {"cols", m.cols}, {"values", m.values},
                                 {"row_labels", m.row_labels}, {"col_labels", m.col_labels}});
    j["histograms"] = json::array();
    for (const Histogram& h : r.histograms)
        j["histograms"].push_back({{"name", h.name}, {"edges", h.edges}, {"counts", h.counts}});
    j["texts"] = json::array();
    for (const Text& t : r.texts) j["texts"].push_back({{"name", t.name}, {"body", t.body}});
    j["is_cancelled"] = r.is_cancelled;
    return j.dump(1);
}

Result result_from_json(const std::string& text) {
    const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) bad("not valid JSON");
    Result r;
    r.experiment = str(j, "experiment", "result");
    for (const auto& [k, v] : field(j, "args", json::value_t::object, "result").items()) {
        if (!v.is_string()) bad("args." + k + " is not a string");
        r.args.emplace_back(k, v.get<std::string>());
    }
    const json& p = field(j, "provenance", json::value_t::object, "result");
    r.provenance = {str(p, "engine_version", "provenance"), str(p, "machine", "provenance"),
                    str(p, "created_utc", "provenance"),
                    field(p, "seconds", json::value_t::number_float, "provenance").get<double>()};
    for (const json& s : array_of(j, "scalars"))
        r.scalars.push_back({str(s, "name", "scalar"), field(s, "value", json::value_t::number_float, "scalar").get<double>(),
                             str(s, "unit", "scalar")});
    for (const json& s : array_of(j, "series")) {
        Series out{str(s, "name", "series"), str(s, "x_label", "series"), str(s, "y_label", "series"),
                   numbers(s, "x", "series"), numbers(s, "y", "series")};
        if (out.x.size() != out.y.size()) bad("series '" + out.name + "' has x and y of different lengths");
        r.series.push_back(std::move(out));
    }
    for (const json& t : array_of(j, "tables")) {
        Table out{str(t, "name", "table"), strings(t, "columns", "table"), {}};
        for (const json& row : field(t, "rows", json::value_t::array, "table")) {
            if (!row.is_array() || row.size() != out.columns.size()) bad("table '" + out.name + "' has a ragged row");
            std::vector<Cell> cells;
            for (const json& c : row) {
                if (c.is_number()) cells.emplace_back(c.get<double>());
                else if (c.is_string()) cells.emplace_back(c.get<std::string>());
                else bad("table '" + out.name + "' holds a cell that is neither number nor text");
            }
            out.rows.push_back(std::move(cells));
        }
        r.tables.push_back(std::move(out));
    }
    for (const json& m : array_of(j, "matrices")) {
        Matrix out{str(m, "name", "matrix"), field(m, "rows", json::value_t::number_unsigned, "matrix").get<std::int64_t>(),
                   field(m, "cols", json::value_t::number_unsigned, "matrix").get<std::int64_t>(),
                   numbers(m, "values", "matrix"), strings(m, "row_labels", "matrix"), strings(m, "col_labels", "matrix")};
        if (static_cast<std::int64_t>(out.values.size()) != out.rows * out.cols) bad("matrix '" + out.name + "' size");
        r.matrices.push_back(std::move(out));
    }
    for (const json& h : array_of(j, "histograms")) {
        Histogram out{str(h, "name", "histogram"), numbers(h, "edges", "histogram"), numbers(h, "counts", "histogram")};
        if (out.edges.size() != out.counts.size() + 1) bad("histogram '" + out.name + "' needs one more edge than counts");
        r.histograms.push_back(std::move(out));
    }
    for (const json& t : array_of(j, "texts")) r.texts.push_back({str(t, "name", "text"), str(t, "body", "text")});
    r.is_cancelled = field(j, "is_cancelled", json::value_t::boolean, "result").get<bool>();
    return r;
}

}  // namespace tl
