// The catalog service's settings, read from the environment once at start-up; tests build
// the struct directly.
//
//   catalog::CatalogOptions options = catalog::CatalogOptions::FromEnv();
//
// Thread-safety: a value.
#pragma once

#include <cstddef>

namespace vigil::catalog {

struct CatalogOptions {
  // Items kept in the read cache; 0 turns it off.
  std::size_t cache_size = 10000;

  // VIGIL_CATALOG_CACHE_SIZE (0 .. 10000000, default 10000). Throws
  // telemetry::ConfigError naming the variable when it is malformed.
  static CatalogOptions FromEnv();
};

}  // namespace vigil::catalog
