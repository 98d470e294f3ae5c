// kcr-init: the init of a workload with a root filesystem of its own (workload_init.hpp).
#include <unistd.h>

#include <cstring>

#include "images/agent/workload_init.hpp"

int main(int argc, char** argv) {
  if (argc >= 4 && std::strcmp(argv[1], kcr::agent::k_workload_init_flag) == 0 &&
      std::strcmp(argv[2], "--") == 0) {
    kcr::agent::workload_init_main(argv + 3, environ);
  }
  static const char usage[] = "kcr-init: started by kcr-agent only\n";
  ssize_t ignored = ::write(STDERR_FILENO, usage, sizeof usage - 1);
  (void)ignored;
  return 2;
}
