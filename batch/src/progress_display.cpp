// Batch progress on stderr: a live bar with one line per worker on a terminal; plain log lines
// (events and a heartbeat) otherwise, so CI logs and `| tee` stay readable.
#include <unistd.h>

#include <cstdio>

#include "batch_internal.h"

namespace kdecomp {

namespace {

std::string clock(double s) {
  if (s < 0) return "?";
  int total = static_cast<int>(s + 0.5);
  char buf[32];
  if (total >= 3600) {
    std::snprintf(buf, sizeof buf, "%dh%02dm", total / 3600, (total / 60) % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%dm%02ds", total / 60, total % 60);
  }
  return buf;
}

}  // namespace

ProgressDisplay::ProgressDisplay(BatchOptions::Display mode, int total) : total_(total) {
  bar_ = mode == BatchOptions::Display::Bar || (mode == BatchOptions::Display::Auto && ::isatty(STDERR_FILENO));
}

ProgressDisplay::~ProgressDisplay() { finish(); }

void ProgressDisplay::clear() {
  if (!bar_ || drawn_lines_ == 0) return;
  std::fprintf(stderr, "\x1b[%dA\x1b[J", drawn_lines_);
  drawn_lines_ = 0;
}

void ProgressDisplay::event(const std::string& line) {
  clear();
  std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
}

void ProgressDisplay::update(int done, const std::vector<WorkerLine>& workers, double elapsed_s, double eta_s) {
  if (!bar_) {
    // Without a terminal, a heartbeat every minute is enough to show the batch is alive.
    static const double kHeartbeat = 60;
    if (elapsed_s < heartbeat_at_) return;
    heartbeat_at_ = elapsed_s + kHeartbeat;
    std::string line = "batch: " + std::to_string(done) + "/" + std::to_string(total_) + " done, elapsed " +
                       clock(elapsed_s) + ", ETA " + clock(eta_s);
    for (const WorkerLine& w : workers) {
      line += "; " + w.model + " " + w.stage + " " + clock(w.elapsed_s);
    }
    std::fprintf(stderr, "%s\n", line.c_str());
    std::fflush(stderr);
    return;
  }
  clear();
  const int width = 30;
  int filled = total_ > 0 ? done * width / total_ : width;
  std::string bar(static_cast<size_t>(filled), '#');
  bar.append(static_cast<size_t>(width - filled), '-');
  std::fprintf(stderr, "[%s] %d/%d models  elapsed %s  ETA %s\n", bar.c_str(), done, total_, clock(elapsed_s).c_str(),
               clock(eta_s).c_str());
  int lines = 1;
  for (size_t i = 0; i < workers.size(); ++i) {
    const WorkerLine& w = workers[i];
    std::fprintf(stderr, "  %zu %-36.36s %-10s %7s %9s\n", i + 1, w.model.c_str(), w.stage.c_str(), clock(w.elapsed_s).c_str(),
                 humanBytes(w.rss_bytes).c_str());
    ++lines;
  }
  drawn_lines_ = lines;
  std::fflush(stderr);
}

void ProgressDisplay::finish() { clear(); }

}  // namespace kdecomp
