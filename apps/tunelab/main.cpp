// tunelab: the command line. Every command is a subcommand registered from a cmd_*.cpp file; errors in input
// (tl::Error, bad arguments) print one clear message and exit with code 2, having written nothing.
#include <cstdio>
#include <exception>
#include <string>

#include "common.hpp"
#include "core/error.hpp"

int main(int argc, char** argv) {
    // `tunelab` alone starts the course (the window on a desktop, the terminal lessons otherwise).
    char course_arg[] = "course";
    char* course_argv[] = {argv[0], course_arg, nullptr};
    if (argc == 1) {
        argc = 2;
        argv = course_argv;
    }
    CLI::App app{
        "tunelab: a small but real GPT-2 trainer for learning fine-tuning.\n"
        "Run it without arguments to start the course; `tunelab lessons` lists the lessons."};
    app.require_subcommand(1);
    app.set_help_all_flag("--help-all", "Show help for every command");
    tl::cli::add_demo_command(app);
    tl::cli::add_lesson_commands(app);
    tl::cli::add_gui_command(app);
    tl::cli::add_pretrain_command(app);
    tl::cli::add_finetune_command(app);
    tl::cli::add_merge_lora_command(app);
    tl::cli::add_eval_command(app);
    tl::cli::add_generate_command(app);
    tl::cli::add_inspect_command(app);
    tl::cli::add_tasks_command(app);
    tl::cli::add_presets_command(app);
    tl::cli::add_formats_command(app);
    tl::cli::add_memory_command(app);
    tl::cli::add_merge_command(app);
    tl::cli::add_quantize_command(app);
    if (argc >= 2 && argv[1][0] != '-') {  // CLI11 would only say "A subcommand is required"
        std::string known;
        bool is_known = false;
        for (const CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) {
            is_known = is_known || sub->get_name() == argv[1];
            known += (known.empty() ? "" : ", ") + sub->get_name();
        }
        if (!is_known) {
            std::fprintf(stderr, "error: unknown command '%s'; commands: %s\n", argv[1], known.c_str());
            return 2;
        }
    }
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        app.exit(e);  // prints CLI11's message
        std::fprintf(stderr, "Run `tunelab --help` (or `tunelab COMMAND --help`) for usage.\n");
        return 2;
    } catch (const tl::Error& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 2;
    } catch (const tl::InternalError& e) {
        std::fprintf(stderr, "internal error (a bug in tunelab; please report it): %s\n", e.what());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    return 0;
}
