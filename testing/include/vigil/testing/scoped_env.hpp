// Test support: ScopedEnv sets or unsets one environment variable for the rest of a
// scope, then puts back what was there, so tests of the environment's readers neither leak
// settings into each other nor depend on the environment ctest was started with.
//
//   vigil::test_support::ScopedEnv sampler("OTEL_TRACES_SAMPLER", "always_off");
//   ScopedEnv arg("OTEL_TRACES_SAMPLER_ARG", nullptr);  // unset while in scope
//   EXPECT_EQ(Sampler::FromEnv().Description(), "AlwaysOffSampler");
//
// Thread-safety: none. setenv/getenv race with any other thread reading the
// environment, so test bodies that use this stay single-threaded while it is alive.
#pragma once

#include <stdlib.h>

#include <optional>
#include <string>

namespace vigil::test_support {

// NOLINTBEGIN(concurrency-mt-unsafe)
class ScopedEnv {
 public:
  // `value` nullptr unsets `name`.
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = getenv(name)) {
      old_ = old;
    }
    if (value != nullptr) {
      setenv(name, value, 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};
// NOLINTEND(concurrency-mt-unsafe)

}  // namespace vigil::test_support
