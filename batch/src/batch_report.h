// Writing the batch reports from model records (used by the runner and by batch-merge).
#pragma once

#include <vector>

#include "batch_internal.h"

namespace kdecomp {

// batch_report.json, batch_report.md and index.html in `out`. `header` holds input_dir,
// output_dir, started, wall_s and options; records are in report order.
void writeReports(const fs::path& out, Json header, const std::vector<Json>& records);

}  // namespace kdecomp
