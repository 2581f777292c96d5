// What the CLI parsed: one command's request, handed from the kdecomp binary (argument parsing,
// no LibTorch) to the commands library it loads (libkdecomp_commands.so: the pipeline and
// LibTorch). Both are built from this header in the same build; kCommandAbi catches a library
// left over from another build.
#pragma once

#include <string>
#include <variant>
#include <vector>

#include "kdecomp/pipeline.h"

namespace kdecomp {

struct ExportProblemsRequest {
  std::vector<std::string> dirs;
  std::string out;
};

// `kdecomp export`, `batch` and `batch-merge` run in the binary itself (the exporter and the
// batch need no LibTorch): they are not here.
using CommandRequest = std::variant<InspectRequest, PartitionRequest, DecomposeRequest, DiffRequest, BenchRequest,
                                    ExportProblemsRequest, RerunRequest>;

// Bump when a request's fields change meaning without changing its size.
constexpr unsigned kCommandRequestVersion = 1;
constexpr unsigned kCommandAbi = kCommandRequestVersion * 100003u + static_cast<unsigned>(sizeof(CommandRequest));

// The library's two entry points (extern "C": looked up by name with dlsym).
using CommandAbiFunction = unsigned (*)();
using RunCommandFunction = int (*)(const CommandRequest&);
constexpr const char* kCommandAbiSymbol = "kdecomp_command_abi";
constexpr const char* kRunCommandSymbol = "kdecomp_run_command";
constexpr const char* kCommandsLibrary = "libkdecomp_commands.so";

}  // namespace kdecomp
