#pragma once

#include <string>

namespace toani::cli {

struct DemoOptions {
  std::string data_dir;
  std::string address;      // "" = start our own server (or TOANI_ADDR)
  std::string secret_file;  // "" = a random demo credential
  std::string self_path;    // this executable, to start `toani server`
};

// Runs the end-to-end demo; returns the process exit code (0 only if every step passed).
int RunDemo(const DemoOptions& opts);

}  // namespace toani::cli
