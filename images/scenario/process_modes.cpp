// Scenarios of process and IPC state, each a workload answering the generic probe
// (checker.hpp): its check reads the state back through the kernel object itself and answers
// "ok SEED what-it-saw", so a lost object fails the check and a restarted workload (another
// seed, other data) fails the comparison.

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "images/scenario/checker.hpp"
#include "images/scenario/modes.hpp"
#include "images/scenario/scenario.hpp"

namespace kcr::scenario {

namespace {

// Reads exactly N bytes (blocking), retrying on EINTR; false on EOF or an error.
bool read_exact(int fd, char* p, std::size_t n) {
  while (n > 0) {
    ssize_t r = ::read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

// pipes: a pipe holding 4 KiB nobody has read (the kernel's buffer must survive), and a child
// that echoes each line the parent sends it over a second pair of pipes.
int run_pipes(const Args& a) {
  int held[2], to_child[2], from_child[2];
  if (::pipe2(held, O_CLOEXEC) != 0 || ::pipe2(to_child, O_CLOEXEC) != 0 ||
      ::pipe2(from_child, O_CLOEXEC) != 0) {
    fail(k_exit_unreadable, "pipe: " + errno_text(errno));
  }
  std::string data(4096, '\0');
  fill_pattern(data.data(), data.size(), seed_number());
  if (!write_all(held[1], data.data(), data.size())) fail(k_exit_unreadable, "write held pipe");
  pid_t child = ::fork();
  if (child < 0) fail(k_exit_unreadable, "fork: " + errno_text(errno));
  if (child == 0) {
    char c;
    while (read_exact(to_child[0], &c, 1)) {
      if (!write_all(from_child[1], &c, 1)) break;
    }
    ::_exit(0);
  }
  log_startup("pipes: 4096 bytes held, echo child " + std::to_string(child));
  serve_checks(a, "pipes", [&] {
    std::string got(data.size(), '\0');
    if (!read_exact(held[0], got.data(), got.size())) return std::string("bad held pipe empty");
    bool same = got == data;
    write_all(held[1], got.data(), got.size());
    if (!same) return std::string("bad held pipe data changed");
    std::string token = hex64(seed_number() ^ static_cast<uint64_t>(mono_ns()));
    std::string echo(token.size(), '\0');
    if (!write_all(to_child[1], token.data(), token.size()) ||
        !read_exact(from_child[0], echo.data(), echo.size()) || echo != token) {
      return std::string("bad echo child does not answer");
    }
    return "ok " + seed() + " held=" + hex64(checksum(got.data(), got.size())) + " echo=ok";
  });
}

}  // namespace

void add_process_modes(ModeTable& t) {
  t["pipes"] = {run_pipes,
                {},
                true,
                "a pipe holding 4 KiB unread and a child echoing over two more (probe --name "
                "pipes)"};
}

}  // namespace kcr::scenario
