// Scenarios of file descriptors (eventfd, timerfd, signalfd, epoll, inotify, fanotify), timers,
// signals and credentials, each a workload answering the generic probe (checker.hpp).

#include "images/scenario/checker.hpp"
#include "images/scenario/modes.hpp"

namespace kcr::scenario {

void add_fd_modes(ModeTable& t) {
  (void)t;
}

}  // namespace kcr::scenario
