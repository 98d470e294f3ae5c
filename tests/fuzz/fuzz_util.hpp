#pragma once

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "core/error.hpp"

namespace kcr::fuzz {

// Stops the run: libFuzzer keeps the input as a crash file.
[[noreturn]] inline void fail(const std::string& what) {
  std::fprintf(stderr, "kcr fuzz: %s\n", what.c_str());
  std::abort();
}

// Runs STEP; a kcr::Error is how kcr refuses hostile input (returns false), anything else it
// throws is a bug. True when STEP returned normally.
template <class Step>
bool refused_or_ok(const char* what, Step&& step) {
  try {
    step();
    return true;
  } catch (const kcr::Error&) {
    return false;
  } catch (const std::exception& e) {
    fail(std::string(what) + " threw a non-kcr exception: " + e.what());
  } catch (...) {
    fail(std::string(what) + " threw something that is not an exception");
  }
}

}  // namespace kcr::fuzz
