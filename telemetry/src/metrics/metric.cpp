// The out-of-line parts of Counter and Histogram: exemplars and reads over all arenas.
#include "metrics/arena.hpp"
#include "metrics/exemplar.hpp"
#include "vigil/telemetry/metrics.hpp"

namespace vigil::telemetry {

Counter::~Counter() { internal::FreeExemplars(exemplar_); }

void Counter::Inc(double v, const SpanContext& exemplar) noexcept {
  if (!(v >= 0)) {
    return;
  }
  Inc(v);
  internal::StoreExemplar(exemplar_, 1, 0, v, exemplar);
}

double Counter::Value() const noexcept {
  internal::ArenaReader reader;
  return reader.CounterTotal(slot_);
}

std::optional<Exemplar> Counter::LatestExemplar() const noexcept {
  return internal::LoadExemplar(exemplar_, 0);
}

Histogram::~Histogram() { internal::FreeExemplars(exemplars_); }

void Histogram::Observe(double v, const SpanContext& exemplar) noexcept {
  const std::uint32_t bucket = BucketFor(v);
  Record(v, bucket);
  internal::StoreExemplar(exemplars_, bound_count_ + 1u, bucket, v, exemplar);
}

HistogramSnapshot Histogram::Snapshot() const {
  HistogramSnapshot snap;
  snap.upper_bounds.assign(bounds_, bounds_ + bound_count_);
  snap.cumulative.assign(bound_count_ + 1u, 0);
  {
    internal::ArenaReader reader;
    reader.ForEach(base_slot_, [&](const internal::Slot* s) {
      snap.sum += std::bit_cast<double>(s[0].load(std::memory_order_relaxed));
      for (std::uint32_t i = 0; i <= bound_count_; ++i) {
        snap.cumulative[i] += s[1 + i].load(std::memory_order_relaxed);
      }
    });
  }
  for (std::size_t i = 1; i < snap.cumulative.size(); ++i) {
    snap.cumulative[i] += snap.cumulative[i - 1];
  }
  snap.count = snap.cumulative.back();
  return snap;
}

std::optional<Exemplar> Histogram::LatestExemplar(std::size_t bucket) const noexcept {
  if (bucket > bound_count_) {
    return std::nullopt;
  }
  return internal::LoadExemplar(exemplars_, bucket);
}

}  // namespace vigil::telemetry
