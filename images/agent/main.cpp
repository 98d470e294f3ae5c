// kcr-agent: the daemon inside the guest. It owns the virtio-serial port "kcr.agent", runs
// workloads for the host and, as the guest's PID 1, reaps every orphan. It must never exit there:
// PID 1 exiting panics the kernel.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>

#include "images/agent/check.hpp"
#include "images/agent/log.hpp"
#include "images/agent/port.hpp"
#include "images/agent/process.hpp"
#include "images/agent/server.hpp"
#include "images/agent/workloads.hpp"
#include "kcr/version.hpp"

namespace kcr::agent {
namespace {

constexpr const char* k_usage =
    "usage: kcr-agent [--port PATH | --listen-unix PATH] [--port-name NAME]\n"
    "                 [--port-wait-ms MS] [--state-dir DIR] [--version] [--help]\n"
    "  --port PATH         the virtio-serial device to use instead of finding it by name\n"
    "  --port-name NAME    the virtio-serial port name to look for (default kcr.agent)\n"
    "  --port-wait-ms MS   how long to wait for the port to appear (default 5000)\n"
    "  --listen-unix PATH  serve one connection at a time on a unix socket (tests on a host)\n"
    "  --state-dir DIR     where workload directories and logs go (default /run/kcr);\n"
    "                      not under /tmp, which each workload replaces with its own\n";

struct Options {
  std::string port;
  std::string port_name = "kcr.agent";
  std::string listen_unix;
  std::string state_dir = "/run/kcr";
  long port_wait_ms = 5000;
};

// Parses the command line; returns false (after printing why) when it is unusable.
bool parse(int argc, char** argv, Options& options) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](std::string& out) {
      if (i + 1 >= argc) return false;
      out = argv[++i];
      return true;
    };
    std::string number;
    bool ok = true;
    if (arg == "--help" || arg == "-h") {
      std::cout << k_usage;
      std::exit(0);
    } else if (arg == "--version") {
      std::cout << "kcr-agent " << k_version << " (protocol " << k_protocol_version << ")\n";
      std::exit(0);
    } else if (arg == "--port") {
      ok = value(options.port);
    } else if (arg == "--port-name") {
      ok = value(options.port_name);
    } else if (arg == "--listen-unix") {
      ok = value(options.listen_unix);
    } else if (arg == "--state-dir") {
      ok = value(options.state_dir);
    } else if (arg == "--port-wait-ms") {
      ok = value(number);
      if (ok) options.port_wait_ms = std::atol(number.c_str());
    } else {
      std::cerr << "kcr-agent: unknown option '" << arg << "'\n" << k_usage;
      return false;
    }
    if (!ok) {
      std::cerr << "kcr-agent: " << arg << " needs a value\n";
      return false;
    }
  }
  return true;
}

std::unique_ptr<Port> open_port(const Options& options, bool pid1) {
  for (;;) {
    try {
      if (!options.listen_unix.empty()) return listen_unix_port(options.listen_unix);
      return open_virtio_port(options.port, options.port_name,
                              std::chrono::milliseconds(options.port_wait_ms));
    } catch (const std::exception& e) {
      log_always(e.what());
      if (!pid1) return nullptr;
    }
    // As PID 1 there is nothing better to do than keep trying (and reaping) at a slow pace.
    for (int i = 0; i < 50; ++i) {
      int status;
      while (::waitpid(-1, &status, WNOHANG) > 0) {
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
}

// " (2.31 s)": when, in seconds since the kernel started, like the init's lines.
std::string since_boot() {
  std::ifstream in("/proc/uptime");
  std::string seconds;
  if (!(in >> seconds)) return {};
  return " (" + seconds + " s)";
}

int main_impl(int argc, char** argv) {
  bool pid1 = ::getpid() == 1;
  ::signal(SIGPIPE, SIG_IGN);
  Options options;
  if (!parse(argc, argv, options)) {
    if (!pid1) return 2;
    log_always("continuing with the default options");
    options = Options{};
  }
  log_always(std::string("kcr-agent ") + k_version + " starting" + since_boot());
  std::unique_ptr<Port> port = open_port(options, pid1);
  if (!port) return 1;
  // criu check waits for a host that asks (kcr check): before the first hello it cost a
  // fifth of every boot.
  CriuStatus criu = probe_criu(false);
  log_always(criu.version.empty() ? "criu is missing or does not run" + since_boot()
                                  : "criu " + criu.version + since_boot());
  Server server(std::move(port), options.state_dir, std::move(criu));
  for (;;) {
    try {
      server.run();
      if (!pid1) return 0;
    } catch (const std::exception& e) {
      log_always(std::string("error: ") + e.what());
    } catch (...) {
      log_always("unknown error");
    }
    if (!pid1) return 1;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace
}  // namespace kcr::agent

int main(int argc, char** argv) {
  if (argc >= 4 && std::strcmp(argv[1], kcr::agent::k_workload_init_flag) == 0 &&
      std::strcmp(argv[2], "--") == 0) {
    kcr::agent::workload_init_main(argv + 3, environ);
  }
  return kcr::agent::main_impl(argc, argv);
}
