// Finding lessons on disk: the lessons folder, the list of lessons (id and title, read cheaply), one lesson by id.
#include <algorithm>
#include <cstdlib>
#include <fstream>

#include "core/error.hpp"
#include "lesson/lesson.hpp"

#ifndef TL_LESSONS_DIR
#define TL_LESSONS_DIR ""
#endif

namespace tl {

namespace fs = std::filesystem;

namespace {

// The first "# " line, without parsing the whole file.
std::string read_title(const fs::path& file) {
    std::ifstream in(file);
    for (std::string line; std::getline(in, line);)
        if (line.rfind("# ", 0) == 0) return line.substr(2);
    return file.parent_path().filename().string();
}

}  // namespace

fs::path lessons_root() {
    if (const char* env = std::getenv("TUNELAB_LESSONS"); env && *env) return env;
    if (const fs::path built_in = TL_LESSONS_DIR; !built_in.empty() && fs::is_directory(built_in)) return built_in;
    return fs::current_path() / "lessons";
}

std::vector<LessonEntry> list_lessons(const fs::path& root) {
    std::vector<LessonEntry> out;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(root, ec)) {
        const fs::path en = entry.path() / "lesson.md";
        if (!entry.is_directory() || !fs::exists(en)) continue;
        out.push_back({entry.path().filename().string(), read_title(en), entry.path(),
                       fs::exists(entry.path() / "lesson.ko.md")});
    }
    if (ec) throw Error("[lesson] cannot list " + root.string() + ": " + ec.message() + "; set TUNELAB_LESSONS");
    std::sort(out.begin(), out.end(), [](const LessonEntry& a, const LessonEntry& b) { return a.id < b.id; });
    return out;
}

Lesson find_lesson(const fs::path& root, const std::string& id, const std::string& lang,
                   const ExperimentRegistry& registry) {
    if (lang != "en" && lang != "ko") throw Error("[lesson] unknown language '" + lang + "'; use en or ko");
    const std::vector<LessonEntry> all = list_lessons(root);
    std::vector<const LessonEntry*> matches;
    for (const LessonEntry& e : all) {
        if (e.id == id) {
            matches = {&e};
            break;
        }
        if (e.id.rfind(id, 0) == 0) matches.push_back(&e);
    }
    std::string known;
    for (const LessonEntry& e : all) known += (known.empty() ? "" : ", ") + e.id;
    if (matches.empty()) throw Error("[lesson] no lesson '" + id + "' in " + root.string() + "; lessons: " + known);
    if (matches.size() > 1) throw Error("[lesson] '" + id + "' matches several lessons; lessons: " + known);
    const LessonEntry& e = *matches.front();
    const fs::path file = (lang == "ko" && e.has_korean) ? e.dir / "lesson.ko.md" : e.dir / "lesson.md";
    return load_lesson(file, registry);
}

}  // namespace tl
