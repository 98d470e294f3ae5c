#pragma once

namespace kcr::core {

// A fault-injection point for the tests: with KCR_FAULT="POINT[:ACTION],..."
// in the environment, reaching POINT performs ACTION: "kill" (the default)
// sends this process SIGKILL, as a dropped ssh session or an OOM kill would;
// "fail" throws kcr::Error("injected fault at POINT"). Without KCR_FAULT it
// does nothing. Points are named "operation.step" (checkpoint.before-commit).
void fault_point(const char* point);

}  // namespace kcr::core
