#include "core/fault.hpp"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "core/error.hpp"

namespace kcr::core {

void fault_point(const char* point) {
  const char* spec = std::getenv("KCR_FAULT");
  if (!spec || !*spec) return;
  std::string all = spec;
  std::size_t start = 0;
  while (start <= all.size()) {
    std::size_t end = all.find(',', start);
    std::string item =
        all.substr(start, end == std::string::npos ? std::string::npos : end - start);
    std::string name = item.substr(0, item.find(':'));
    std::string action =
        item.find(':') == std::string::npos ? "kill" : item.substr(item.find(':') + 1);
    if (name == point) {
      if (action == "fail") throw Error(std::string("injected fault at ") + point);
      ::kill(::getpid(), SIGKILL);
      ::pause();
    }
    if (end == std::string::npos) break;
    start = end + 1;
  }
}

}  // namespace kcr::core
