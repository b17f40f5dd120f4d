#include "options.hpp"

#include <vigil/telemetry/env.hpp>

namespace vigil::catalog {

CatalogOptions CatalogOptions::FromEnv() {
  CatalogOptions o;
  o.cache_size = static_cast<std::size_t>(
      telemetry::env::Integer("VIGIL_CATALOG_CACHE_SIZE", 10000, 0, 10'000'000));
  return o;
}

}  // namespace vigil::catalog
