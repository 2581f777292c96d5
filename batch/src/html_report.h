// The batch's index.html: one self-contained page (inline CSS and JS, no network) with the
// model table and, per model, its tier tree.
#pragma once

#include <string>

namespace kdecomp {

// The page template (batch/src/index_template.html, compiled in) with `data_json` embedded as
// its data. `data_json` is {"report": <batch_report.json>, "trees": {"<model>": <node>}} where
// a node is {"id", "level", "name", "module", "template", "in": [...], "out": [...], "flops",
// "status", "max_abs_diff", "children": [<node>...]} (see docs/BATCH.md).
std::string renderIndexHtml(const std::string& data_json);

}  // namespace kdecomp
