// Markdown -> Lesson with md4c: the first `#` heading is the title, each `##` starts a step, paragraphs and list
// items become prose, fenced ```run blocks become RunBlocks. Line numbers for messages come from where md4c's
// text pointers fall in the source buffer.
#include <algorithm>
#include <fstream>
#include <md4c.h>
#include <sstream>

#include "core/error.hpp"
#include "lesson/lesson.hpp"
#include "lesson/run_block_parser.hpp"

namespace tl {

namespace {

struct ParseState {
    const std::string* source = nullptr;
    std::string where;
    const ExperimentRegistry* registry = nullptr;
    Lesson lesson;
    int heading_level = 0;      // inside an H block
    std::string heading;
    std::string paragraph;      // prose being collected
    bool in_list_item = false;
    bool in_run = false, in_other_code = false;
    std::string run_experiment, run_body;
    int run_line = 0;
    std::string error;          // exceptions must not cross md4c's C frames

    int line_of(const char* p) const {
        if (p < source->data() || p > source->data() + source->size()) return 0;
        return 1 + int(std::count(source->data(), p, '\n'));
    }
    std::vector<std::string>& prose() {
        return lesson.steps.empty() ? lesson.intro : lesson.steps.back().paragraphs;
    }
    void flush_paragraph() {
        std::string p = paragraph;
        paragraph.clear();
        while (!p.empty() && (p.back() == ' ' || p.back() == '\n')) p.pop_back();
        if (!p.empty()) prose().push_back((in_list_item ? "- " : "") + p);
    }
};

std::string attribute(const MD_ATTRIBUTE& a) { return std::string(a.text, a.size); }

int enter_block(MD_BLOCKTYPE type, void* detail, void* user) {
    auto& s = *static_cast<ParseState*>(user);
    switch (type) {
        case MD_BLOCK_H:
            s.heading_level = int(static_cast<MD_BLOCK_H_DETAIL*>(detail)->level);
            s.heading.clear();
            break;
        case MD_BLOCK_LI:
            s.in_list_item = true;
            break;
        case MD_BLOCK_CODE: {
            auto* d = static_cast<MD_BLOCK_CODE_DETAIL*>(detail);
            const std::string lang = attribute(d->lang);
            if (lang == "run") {
                const std::string info = attribute(d->info);
                s.in_run = true;
                s.run_experiment = info.size() > 3 ? info.substr(3) : "";
                s.run_body.clear();
                s.run_line = s.line_of(d->info.text);
            } else {
                s.in_other_code = true;
                s.paragraph.clear();
            }
            break;
        }
        default:
            break;
    }
    return 0;
}

int leave_block(MD_BLOCKTYPE type, void*, void* user) {
    auto& s = *static_cast<ParseState*>(user);
    try {
        switch (type) {
            case MD_BLOCK_H:
                if (s.heading_level == 1 && s.lesson.title.empty()) s.lesson.title = s.heading;
                else if (s.heading_level == 2) s.lesson.steps.push_back({s.heading, {}, {}});
                else if (s.heading_level >= 3) s.prose().push_back(s.heading);
                s.heading_level = 0;
                break;
            case MD_BLOCK_P:
                s.flush_paragraph();
                break;
            case MD_BLOCK_LI:
                s.flush_paragraph();
                s.in_list_item = false;
                break;
            case MD_BLOCK_CODE:
                if (s.in_run) {
                    if (s.lesson.steps.empty())
                        throw Error("[lesson] " + s.where + ":" + std::to_string(s.run_line) +
                                    ": a run block must be inside a step (after a '## ' heading)");
                    RunBlock b = parse_run_block(s.run_experiment, s.run_body, s.run_line, s.where, *s.registry);
                    b.paragraphs_before = int(s.lesson.steps.back().paragraphs.size());
                    s.lesson.steps.back().runs.push_back(std::move(b));
                } else {
                    s.prose().push_back(s.paragraph);  // other code blocks stay verbatim
                    s.paragraph.clear();
                }
                s.in_run = s.in_other_code = false;
                break;
            default:
                break;
        }
    } catch (const Error& e) {
        s.error = e.what();
        return 1;  // stops md4c
    }
    return 0;
}

int on_text(MD_TEXTTYPE type, const MD_CHAR* text, MD_SIZE size, void* user) {
    auto& s = *static_cast<ParseState*>(user);
    std::string t(text, size);
    if (type == MD_TEXT_SOFTBR) t = " ";
    if (type == MD_TEXT_BR) t = "\n";
    if (s.in_run) s.run_body += t;
    else if (s.heading_level) s.heading += t;
    else s.paragraph += t;
    return 0;
}

int on_span(MD_SPANTYPE type, void*, void* user) {
    auto& s = *static_cast<ParseState*>(user);
    if (type == MD_SPAN_CODE && !s.heading_level) s.paragraph += "`";
    return 0;
}

}  // namespace

double Lesson::estimated_seconds() const {
    double total = 0;
    for (const LessonStep& step : steps)
        for (const RunBlock& r : step.runs)
            if (const ExperimentInfo* e = experiments().find(r.experiment)) total += e->estimated_seconds;
    return total;
}

Lesson parse_lesson(const std::string& markdown, const std::filesystem::path& file, const ExperimentRegistry& registry) {
    ParseState s;
    s.source = &markdown;
    s.where = file.string();
    s.registry = &registry;
    s.lesson.file = file;
    MD_PARSER parser{};
    parser.flags = MD_FLAG_NOHTML | MD_FLAG_TABLES | MD_FLAG_NOINDENTEDCODEBLOCKS;
    parser.enter_block = enter_block;
    parser.leave_block = leave_block;
    parser.enter_span = on_span;
    parser.leave_span = on_span;
    parser.text = on_text;
    const int rc = md_parse(markdown.data(), MD_SIZE(markdown.size()), &parser, &s);
    if (!s.error.empty()) throw Error(s.error);
    if (rc != 0) throw Error("[lesson] " + s.where + ": md4c could not parse the file (code " + std::to_string(rc) + ")");
    if (s.lesson.title.empty())
        throw Error("[lesson] " + s.where + ":1: expected a '# Title' line before the first step");
    if (s.lesson.steps.empty()) throw Error("[lesson] " + s.where + ": expected at least one '## Step' heading");
    return std::move(s.lesson);
}

Lesson load_lesson(const std::filesystem::path& file, const ExperimentRegistry& registry) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw Error("[lesson] cannot read " + file.string() + ": check the path (tunelab lessons lists them)");
    std::stringstream text;
    text << in.rdbuf();
    Lesson l = parse_lesson(text.str(), file, registry);
    l.id = file.parent_path().filename().string();
    l.lang = file.filename() == "lesson.ko.md" ? "ko" : "en";
    return l;
}

}  // namespace tl
