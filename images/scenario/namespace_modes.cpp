// Scenarios of namespaces, cgroups and mounts, each a workload answering the generic probe
// (checker.hpp).

#include "images/scenario/checker.hpp"
#include "images/scenario/modes.hpp"

namespace kcr::scenario {

void add_namespace_modes(ModeTable& t) {
  (void)t;
}

}  // namespace kcr::scenario
