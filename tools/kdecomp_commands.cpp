// libkdecomp_commands.so: runs the command the kdecomp binary parsed (tools/command_request.h).
// Loaded with dlopen once the arguments are known, so that LibTorch's start-up (op
// registration, a few tenths of a second) runs beside whatever the binary started first: the
// Python exporter of `kdecomp decompose MODEL.py`.
#include <iostream>
#include <variant>

#include "command_request.h"
#include "kdecomp/importer.h"
#include "kdecomp/text_escape.h"

namespace kdecomp {
namespace {

int run(const InspectRequest& request) { return inspectCommand(request); }
int run(const PartitionRequest& request) { return partitionCommand(request); }
int run(const DecomposeRequest& request) { return decomposeCommand(request); }
int run(const DiffRequest& request) { return diffCommand(request); }
int run(const BenchRequest& request) { return benchCommand(request); }
int run(const ExportProblemsRequest& request) { return exportProblemsCommand(request.dirs, request.out); }
int run(const RerunRequest& request) { return rerunCommand(request); }

}  // namespace
}  // namespace kdecomp

extern "C" {

__attribute__((visibility("default"))) unsigned kdecomp_command_abi() { return kdecomp::kCommandAbi; }

__attribute__((visibility("default"))) int kdecomp_run_command(const kdecomp::CommandRequest& request) {
  try {
    kdecomp::setUpProcessMemory();  // before any tensor exists
    kdecomp::sendModelPrintsToStderr();
    return std::visit([](const auto& r) { return kdecomp::run(r); }, request);
  } catch (const std::exception& e) {
    // A last line of defence: each command catches what it expects and names the file at fault.
    std::cerr << "kdecomp: error: " << kdecomp::plainError(e) << "\n";
  }
  return kdecomp::kExitBadInput;
}

}  // extern "C"
